"""MCP servers' tools as project :class:`~lmstudio_agent.agent.tools.Tool` objects, through the official MCP SDK.

:class:`MCPServers` starts every server of an ``mcp.json`` (stdio processes, streamable HTTP sessions), lists
their tools and wraps each one as an :class:`MCPTool`: its JSON schema is the server's ``inputSchema`` (so the
native, parsed and constrained modes all work for it), a call goes to the server, and the result comes back
(structured content when the tool declares it, else its text). A failed call, an ``isError`` result, a
timeout or a server that went away raise ``AgentError(TOOL_EXECUTION_FAILED)``, which the agent loop feeds
back to the model like any tool error. Every connection lives in a task of its own, so the servers can be
started and stopped from different tasks; :meth:`MCPServers.stop` ends the processes and closes the sessions.

Needs the ``mcp`` extra (``pip install 'lmstudio-agent[mcp]'``). Tested with mcp 1.30.0, the version pinned.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TextIO, cast
from collections.abc import Iterable, Mapping, Sequence

from ..agent.loop import TERMINATE
from ..deadline import Deadline
from ..errors import AgentError, ErrorCode
from ..model.schema import inline_refs
from ..agent.tools import NO_DESCRIPTION, ActionContext, Tool, ToolRegistry
from .config import ConfigSource, MCPConfig, MCPConfigError, MCPServerConfig, load_mcp_config

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

__all__ = ["MCPServers", "MCPServerConnection", "MCPTool", "side_effects_from_annotations", "tool_result"]

logger = logging.getLogger("lmstudio_agent.mcp")

DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 10.0
# The GET stream of a streamable HTTP session stays open for server-sent messages; a call is bounded by its
# own timeout, not by this.
HTTP_READ_TIMEOUT = 300.0
MAX_ERROR_CHARS = 500
PROBE_INTERVAL = 2.0
SESSION_TERMINATED = 32600  # what the SDK's streamable HTTP client answers for a session the server forgot
_NAME_OK = re.compile(r"[^A-Za-z0-9_-]")
MAX_TOOL_NAME = 64


def side_effects_from_annotations(annotations: Any) -> bool:
    """Whether a tool with these MCP annotations has side effects (and so is never cached).

    Only a tool that declares ``readOnlyHint: true`` (and not ``destructiveHint: true``) is free of them; no
    annotations at all count as side effects. ``idempotentHint`` does not make a writing tool cacheable: a
    cached answer would skip the write.

    Args:
        annotations: The tool's MCP ``annotations`` (None: it has none).
    """
    if annotations is None:
        return True
    read_only = getattr(annotations, "readOnlyHint", None)
    destructive = getattr(annotations, "destructiveHint", None)
    return not (read_only is True and destructive is not True)


def _hint_tags(annotations: Any) -> list[str]:
    if annotations is None:
        return []
    tags = []
    for hint, tag in (("readOnlyHint", "read-only"), ("destructiveHint", "destructive"),
                      ("idempotentHint", "idempotent"), ("openWorldHint", "open-world")):
        if getattr(annotations, hint, None) is True:
            tags.append(tag)
    return tags


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


def _content_text(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return cast(str, block.text)
    if kind in ("image", "audio"):
        return f"[{kind} {block.mimeType}, {len(block.data)} base64 characters]"
    if kind == "resource_link":
        return f"[resource {block.uri}]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        return text if text is not None else f"[resource {resource.uri} ({resource.mimeType or 'binary'})]"
    return f"[{kind} content]"


def tool_result(result: Any, output_schema: Mapping[str, Any] | None = None) -> Any:
    """What an MCP ``CallToolResult`` gives the model: its structured content when present (unwrapped from
    ``{"result": x}`` when the tool's output schema is just that wrapper), else its text.

    Args:
        result: The MCP ``CallToolResult``.
        output_schema: The tool's declared output schema, if any.
    """
    structured = getattr(result, "structuredContent", None)
    if structured is not None:
        properties = (output_schema or {}).get("properties")
        if isinstance(properties, dict) and list(properties) == ["result"] and list(structured) == ["result"]:
            return structured["result"]
        return structured
    parts = [_content_text(block) for block in result.content]
    return parts[0] if len(parts) == 1 else "\n".join(parts)


@dataclass
class MCPTool(Tool):
    """A tool that lives on an MCP server. ``name`` is what the model sees; ``remote_name`` the server's."""

    server: str = ""
    remote_name: str = ""
    output_schema: dict[str, Any] | None = field(default=None, repr=False, compare=False)


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


def _exposed(name: str) -> str:
    return _NAME_OK.sub("_", name)[:MAX_TOOL_NAME] or "tool"


class MCPServers:
    """The servers of an ``mcp.json``, started and stopped together; their tools in :attr:`tools`.

    Use ``async with MCPServers("mcp.json") as servers: Agent(client=..., tools=servers.tools)``, or pass the
    config to ``LMStudioAgent(mcp_config=...)``, which does this for you.

    Args:
        config: A path to an ``mcp.json``, its parsed JSON, or an :class:`MCPConfig`.
        allow: Per-server allow-lists (``{"server": ["tool", ...]}``); they replace the file's ``allowedTools``.
        reserved: Tool names already taken (the agent's Python tools; ``terminate`` always is); an MCP tool
            with one gets a prefix.
        allow_stdio: False refuses stdio servers (hosts that cannot start processes: only HTTP servers).
        connect_timeout: Seconds one server may take to start.
        stop_timeout: Seconds one server may take to stop.
        errlog: Where stdio servers' stderr goes (default: this process's stderr).
    """

    def __init__(
        self,
        config: ConfigSource,
        *,
        allow: Mapping[str, Sequence[str]] | None = None,
        reserved: Iterable[str] = (),
        allow_stdio: bool = True,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        errlog: TextIO | None = None,
    ) -> None:
        """Read and check the config; no server starts until :meth:`start` (or ``async with``)."""
        self.config: MCPConfig = load_mcp_config(config)
        self.allow = {name: list(tools) for name, tools in (allow or {}).items()}
        unknown = sorted(set(self.allow) - set(self.config.servers))
        if unknown:
            raise MCPConfigError(f"allow-list for unknown MCP server(s): {', '.join(unknown)}")
        if not allow_stdio:
            stdio = [name for name, server in self.config.enabled().items() if server.transport == "stdio"]
            if stdio:
                raise MCPConfigError(f"stdio MCP servers cannot run here (only streamable HTTP): {', '.join(stdio)}")
        self.reserved = set(reserved) | {TERMINATE.name}  # the loop's own tool keeps its name
        self.connect_timeout = connect_timeout
        self.stop_timeout = stop_timeout
        self.errlog = errlog
        self.connections: dict[str, MCPServerConnection] = {}
        self.tools = ToolRegistry()
        self._started = False
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"MCPServers({list(self.config.servers)!r}, running={self.running})"

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._started

    @property
    def healthy(self) -> bool:
        """Running, and no server has gone away since the start."""
        return self._started and all(c.running for c in self.connections.values())

    async def restart_if_unhealthy(self, reserved: Iterable[str] = ()) -> ToolRegistry:
        """Start the servers, or stop and start them again when one has gone away (a long-lived agent or
        endpoint outlives a crashed server).

        Args:
            reserved: More tool names already taken, as :meth:`start`.
        """
        return await self.start(reserved, restart_unhealthy=True)

    async def __aenter__(self) -> MCPServers:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def start(self, reserved: Iterable[str] = (), *, restart_unhealthy: bool = False) -> ToolRegistry:
        """Start every enabled server at once and build :attr:`tools`; idempotent while running.

        ``reserved`` adds taken names to the constructor's; ``restart_unhealthy`` stops and starts them again
        when one has gone away. If any server fails to start, the others are
        stopped and the first failure is raised (CONNECTION_FAILED; UNKNOWN_TOOL for an allow-list naming a
        tool the server does not offer).

        Args:
            reserved: Tool names already taken, added to the constructor's.
            restart_unhealthy: Stop and start the servers again when one has gone away.
        """
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:  # the sync API runs each call in a new loop
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:  # concurrent runs of one agent start (or restart) the servers once
            if self._started and (self.healthy or not restart_unhealthy):
                return self.tools
            if self._started:
                gone = [name for name, c in self.connections.items() if not c.running]
                logger.warning("restarting MCP servers; gone: %s", ", ".join(gone))
                await self.stop()
            self.connections = {
                name: MCPServerConnection(name, server, connect_timeout=self.connect_timeout,
                                          stop_timeout=self.stop_timeout, errlog=self.errlog)
                for name, server in self.config.enabled().items()
            }
            try:
                results = await asyncio.gather(*(c.start() for c in self.connections.values()),
                                               return_exceptions=True)
                failures = [r for r in results if isinstance(r, BaseException)]
                if failures:
                    raise failures[0]
                self.tools = self._build_tools(self.reserved | set(reserved))
            except BaseException:
                await self.stop()
                raise
            self._started = True
            return self.tools

    async def stop(self) -> None:
        """Stop every server (stdio processes ended, HTTP sessions closed). Safe to call more than once."""
        connections = list(self.connections.values())
        self._started = False
        self.tools = ToolRegistry()
        if connections:
            await asyncio.gather(*(c.stop() for c in connections), return_exceptions=True)

    def _build_tools(self, reserved: set[str]) -> ToolRegistry:
        chosen: list[tuple[MCPServerConnection, Any]] = []
        for name, connection in self.connections.items():
            offered = {tool.name: tool for tool in connection.tools}
            allowed = self.allow.get(name, connection.config.allowed_tools)
            if allowed is None:
                chosen.extend((connection, tool) for tool in connection.tools)
                continue
            missing = [tool for tool in allowed if tool not in offered]
            if missing:
                raise AgentError(ErrorCode.UNKNOWN_TOOL,
                                 f"The allow-list of MCP server '{name}' names tools it does not offer: "
                                 f"{', '.join(missing)} (it offers: {', '.join(offered) or 'none'})")
            chosen.extend((connection, offered[tool]) for tool in dict.fromkeys(allowed))
        # A name offered twice (by two servers, or by a server and a Python tool) is prefixed with the server.
        counts: dict[str, int] = {}
        for _, tool in chosen:
            counts[_exposed(tool.name)] = counts.get(_exposed(tool.name), 0) + 1
        registry = ToolRegistry()
        for connection, tool in chosen:
            base = _exposed(tool.name)
            prefix = connection.config.prefix
            if prefix is None and (counts[base] > 1 or base in reserved):
                prefix = _exposed(connection.name)
            exposed = _exposed(f"{prefix}_{base}") if prefix else base
            if exposed in registry or exposed in reserved:
                raise MCPConfigError(f"MCP tool name '{exposed}' (server '{connection.name}') is still taken after "
                                     "prefixing: set a distinct 'prefix' for that server")
            registry.register(self._wrap(connection, tool, exposed))
        return registry

    @staticmethod
    def _wrap(connection: MCPServerConnection, tool: Any, exposed: str) -> MCPTool:
        try:
            schema = inline_refs(dict(tool.inputSchema))
        except ValueError:  # a recursive or remote $ref: validated as it is; the core resolves local refs
            schema = dict(tool.inputSchema)
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        remote = tool.name
        timeout = connection.config.timeout
        output_schema = dict(tool.outputSchema) if tool.outputSchema else None

        async def call_mcp_tool(action_context: ActionContext | None = None, **arguments: Any) -> Any:
            deadline = getattr(getattr(action_context, "llm", None), "deadline", None)
            limit = deadline.clamp(timeout) if isinstance(deadline, Deadline) else timeout
            result = await connection.call(remote, arguments, limit)
            if result.isError:
                text = "\n".join(_content_text(block) for block in result.content).strip() or "the tool reported an error"
                if len(text) > MAX_ERROR_CHARS:
                    text = text[: MAX_ERROR_CHARS - 3] + "..."
                raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED, text)
            return tool_result(result, output_schema)

        call_mcp_tool.__name__ = exposed
        description = (tool.description or getattr(tool, "title", None) or NO_DESCRIPTION).strip()
        tags = ["mcp", f"mcp:{connection.name}", *_hint_tags(tool.annotations)]
        return MCPTool(
            name=exposed, description=description, parameters=schema, function=call_mcp_tool,
            side_effects=side_effects_from_annotations(tool.annotations), tags=tags, args_model=None,
            injected={"action_context": "context"}, server=connection.name, remote_name=remote,
            output_schema=output_schema,
        )
