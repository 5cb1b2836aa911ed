"""One MCP server's connection: its transport (a stdio process or a streamable HTTP session) and its SDK session,
held by a task of its own from :meth:`~MCPServerConnection.start` to :meth:`~MCPServerConnection.stop`, and
the calls of its tools (with the timeouts, and a server that went away told apart from one that refused).

:class:`~lmstudio_agent.mcp.servers.MCPServers` starts one per server of an ``mcp.json`` and wraps their tools;
``MCPServerConnection`` is importable from there too. Needs the ``mcp`` extra.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any, TextIO

from ..errors import AgentError, ErrorCode
from .config import MCPServerConfig


try:
    import httpx
    from mcp import ClientSession, McpError, StdioServerParameters
    from mcp import types as mcp_types
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client
except ModuleNotFoundError as exc:  # pragma: no cover - exercised only without the extra
    raise ModuleNotFoundError(
        "MCP servers need the official MCP SDK: pip install 'lmstudio-agent[mcp]'", name=exc.name
    ) from exc

logger = logging.getLogger("lmstudio_agent.mcp")

DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 10.0
# The GET stream of a streamable HTTP session stays open for server-sent messages; a call is bounded by its
# own timeout, not by this.
HTTP_READ_TIMEOUT = 300.0
MAX_ERROR_CHARS = 500
PROBE_INTERVAL = 2.0
SESSION_TERMINATED = 32600  # what the SDK's streamable HTTP client answers for a session the server forgot


def _describe(exc: BaseException | None) -> str:
    """The first leaf of an exception (group), as one short line."""
    if exc is None:
        return "it ended"
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx.HTTPStatusError):
        text = f"HTTP {exc.response.status_code} from {str(exc.request.url).split('?', 1)[0]}"
    elif isinstance(exc, McpError):
        text = exc.error.message
    elif isinstance(exc, FileNotFoundError):
        text = f"command not found: {exc.filename or exc}"
    else:
        text = str(exc).strip() or type(exc).__name__
        if not isinstance(exc, (OSError, TimeoutError)):
            text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


class MCPServerConnection:
    """One MCP server: started in a task of its own, which holds the transport and the session until stopped.

    Args:
        name: The server's name in ``mcpServers``.
        config: Its entry.
        connect_timeout: Seconds to start it (spawn or connect, initialize, list tools).
        stop_timeout: Seconds to stop it; a stdio process that outlives them is killed.
        errlog: Where a stdio server's stderr goes (default: this process's stderr).
    """

    def __init__(self, name: str, config: MCPServerConfig, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 stop_timeout: float = DEFAULT_STOP_TIMEOUT, errlog: TextIO | None = None) -> None:
        """Keep the settings; nothing starts until :meth:`start`."""
        self.name = name
        self.config = config
        self.connect_timeout = connect_timeout
        self.stop_timeout = stop_timeout
        self.errlog = errlog
        self.tools: list[Any] = []  # mcp.types.Tool, as listed at start
        self.server_info: Any = None
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._gone: str | None = None  # why the connection is unusable, once it is
        self._http_session_id: Any = None

    @property
    def session_id(self) -> str | None:
        """The streamable HTTP session's id (``Mcp-Session-Id``), while there is one."""
        return self._http_session_id() if self._http_session_id is not None else None

    def __repr__(self) -> str:
        return f"MCPServerConnection({self.name!r}, {self.config.describe()!r}, running={self.running})"

    @property
    def running(self) -> bool:
        """True while the server's task runs, its session is ready and it has not gone away."""
        return self._task is not None and not self._task.done() and self._ready.is_set() and self._gone is None

    async def _run(self) -> None:
        config = self.config
        async with AsyncExitStack() as stack:
            if config.transport == "stdio":
                params = StdioServerParameters(
                    command=config.command,  # type: ignore[arg-type]
                    args=list(config.args),
                    env={key: value.get_secret_value() for key, value in config.env.items()} or None,
                    cwd=config.cwd,
                )
                errlog = self.errlog if self.errlog is not None else sys.stderr
                read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
            else:
                client = httpx.AsyncClient(
                    headers={key: value.get_secret_value() for key, value in config.headers.items()},
                    timeout=httpx.Timeout(self.connect_timeout, read=HTTP_READ_TIMEOUT),
                    follow_redirects=False,
                )
                await stack.enter_async_context(client)
                read, write, self._http_session_id = await stack.enter_async_context(
                    streamable_http_client(config.url, http_client=client)  # type: ignore[arg-type]
                )
            session = await stack.enter_async_context(
                ClientSession(read, write, read_timeout_seconds=timedelta(seconds=self.connect_timeout))
            )
            initialized = await session.initialize()
            self.server_info = initialized.serverInfo
            tools: list[Any] = []
            cursor: str | None = None
            while True:
                page = await session.list_tools(cursor)
                tools.extend(page.tools)
                cursor = page.nextCursor
                if not cursor or len(tools) > 10_000:
                    break
            self.tools = tools
            self._session = session
            self._ready.set()
            await self._stop.wait()

    async def start(self) -> None:
        """Start the server and list its tools. Raises CONNECTION_FAILED saying why, within ``connect_timeout``."""
        if self._task is not None:
            raise RuntimeError(f"MCP server {self.name!r} was started already")
        logger.info("starting MCP server %s (%s)", self.name, self.config.describe())
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mcp-server:{self.name}")
        self._task.add_done_callback(self._ended)
        ready = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait({ready, self._task}, timeout=self.connect_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self._ready.is_set():
            logger.info("MCP server %s is up with %d tool(s)", self.name, len(self.tools))
            return
        if self._task.done():
            failure = None if self._task.cancelled() else self._task.exception()
            why = "cancelled" if self._task.cancelled() else _describe(failure) if failure else "ended"
        else:
            why = f"no answer within {self.connect_timeout:g}s"
        await self.stop()
        raise AgentError(ErrorCode.CONNECTION_FAILED, f"MCP server '{self.name}' ({self.config.describe()}) "
                                                      f"did not start: {why}")

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._stop.is_set():
            return
        failure = None if task.cancelled() else task.exception()
        why = "cancelled" if task.cancelled() else (_describe(failure) if failure else "ended")
        self._gone = self._gone or f"the connection ended ({why})"
        if self._ready.is_set():
            logger.warning("MCP server %s stopped unexpectedly: %s", self.name, why)

    async def call(self, remote_name: str, arguments: dict[str, Any], timeout: float) -> Any:
        """Call a tool; the ``CallToolResult``. Raises TOOL_EXECUTION_FAILED when the server cannot answer.

        Args:
            remote_name: The tool's name on the server.
            arguments: The call's arguments.
            timeout: Seconds the server has to answer.
        """
        where = f"MCP server '{self.name}'"
        if self._gone is not None or self._session is None or self._task is None or self._task.done():
            raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED,
                             f"{where} is not available: {self._gone or 'it is not running'}")
        call = asyncio.ensure_future(
            self._session.call_tool(remote_name, arguments, read_timeout_seconds=timedelta(seconds=timeout))
        )
        try:
            done = await self._wait(call, timeout + 1.0)
        except BaseException:  # the run was cancelled (its deadline, a hub's task:cancel): so is the call
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
            raise
        if call in done:
            try:
                return call.result()
            except McpError as exc:
                if exc.error.code == SESSION_TERMINATED:
                    self._gone = "the server ended the session (did it restart?)"
                    raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED,
                                     f"{where} refused '{remote_name}': {self._gone}") from None
                if exc.error.code == mcp_types.CONNECTION_CLOSED:
                    self._gone = "the server closed the connection (did it exit?)"
                    raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED,
                                     f"{where} went away during '{remote_name}': {self._gone}") from None
                if exc.error.code == httpx.codes.REQUEST_TIMEOUT:
                    raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED,
                                     f"{where} did not answer '{remote_name}' within {timeout:g}s") from None
                raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED,
                                 f"{where} refused '{remote_name}': {_describe(exc)}") from None
            except (OSError, httpx.HTTPError) as exc:
                self._gone = _describe(exc)
                raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED,
                                 f"{where} failed during '{remote_name}': {self._gone}") from None
            except Exception as exc:  # anyio's closed or broken streams: the session is over
                self._gone = _describe(exc)
                raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED,
                                 f"{where} failed during '{remote_name}': {self._gone}") from None
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        if self._task.done():
            raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED,
                             f"{where} went away during '{remote_name}': {self._gone or 'the connection ended'}")
        raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED, f"{where} did not answer '{remote_name}' within {timeout:g}s")

    async def _wait(self, call: asyncio.Future[Any], timeout: float) -> set[asyncio.Future[Any]]:
        """Wait for ``call``, or for the connection's task to end (the server went away), or ``timeout``.

        A streamable HTTP server that dies mid-call leaves the SDK's pending request waiting for its whole
        timeout; so while a call waits, the server is pinged every ``PROBE_INTERVAL`` seconds. A ping to a
        server that is gone fails to connect, which ends the connection's task, which ends this wait.
        """
        assert self._task is not None and self._session is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        probe: asyncio.Future[Any] | None = None
        try:
            while True:
                left = end - loop.time()
                if left <= 0:
                    return set()
                done, _ = await asyncio.wait({call, self._task}, timeout=min(PROBE_INTERVAL, left),
                                             return_when=asyncio.FIRST_COMPLETED)
                if done:
                    return done
                if self.config.transport == "http" and (probe is None or probe.done()):
                    if probe is not None and not probe.cancelled():
                        probe.exception()  # retrieved: a failed ping only matters through the task ending
                    probe = asyncio.ensure_future(self._session.send_ping())
        finally:
            if probe is not None:
                probe.cancel()
                await asyncio.gather(probe, return_exceptions=True)

    async def stop(self) -> None:
        """End the session and the process (or HTTP session); waits at most ``stop_timeout``, then cancels."""
        self._stop.set()
        task = self._task
        if task is None or task.done():
            self._session = None
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.stop_timeout)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception as exc:  # the server failed while closing: it is stopped all the same
            logger.info("MCP server %s closed with an error: %s", self.name, _describe(exc))
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        finally:
            self._session = None
            logger.info("MCP server %s stopped", self.name)
