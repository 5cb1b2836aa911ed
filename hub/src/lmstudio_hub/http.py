"""The hub's HTTP side: ``GET /health`` and ``POST /execute`` of the shared contract, dispatched to agents.

websockets reads only the head of an HTTP request (its ``process_request`` hook never sees a body), so
``POST /execute`` gets its own listener: uvicorn (the standard ASGI server) running a bare ASGI callable.
Everything a request means (auth, body limits, validation, the cache, the error shapes) is
:func:`lmstudio_agent.endpoint.contract.handle_request`; this module only moves bytes and adds ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping

import uvicorn

from lmstudio_agent.endpoint.cache import CacheStore
from lmstudio_agent.endpoint.contract import ExecuteOptions, HttpResponse, ToolSelection, authorize, error_response
from lmstudio_agent.endpoint.router import route
from lmstudio_agent.endpoint.runs import MemoryRunStore, RunService
from lmstudio_agent.endpoint.uvicorn_limits import install_access_log_redaction, uvicorn_limits
from lmstudio_agent.endpoint.streaming import HEARTBEAT_SECONDS, StreamResponse
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.agent.events import RunEvent
from lmstudio_agent.agent.messages import AgentMessage
from .hub import BridgeHub
from .streams import hub_events, send_stream
from .playground import send_playground

logger = logging.getLogger("lmstudio_hub.http")

DEFAULT_HTTP_PORT = 65029
BODY_READ_TIMEOUT = 10.0
_RETRYABLE = {ErrorCode.HUB_BUSY.value, ErrorCode.NO_AGENT_AVAILABLE.value}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class HubBackend:
    """:class:`lmstudio_agent.endpoint.contract.ExecuteBackend` over a hub: the tools are those agents registered.

    Args:
        hub: The hub whose connected agents run the tasks.
    """

    def __init__(self, hub: BridgeHub) -> None:
        self.hub = hub

    @property
    def default_model(self) -> str:
        return self.hub.default_model

    def cache_scope(self) -> str:
        return "bridge-hub"

    def select_tools(self, names: list[str]) -> ToolSelection:
        if not self.hub.agents():
            raise AgentError(ErrorCode.NO_AGENT_AVAILABLE, "No agent is connected to the hub")
        names = list(dict.fromkeys(names))
        unknown = [name for name in names if name not in self.hub.known_tools]
        if unknown:
            offered = ", ".join(sorted(self.hub.connected_tools())) or "none"
            raise AgentError(
                ErrorCode.UNKNOWN_TOOL, f"Unknown tool(s): {', '.join(unknown)}; the connected agents offer: {offered}"
            )
        return ToolSelection(tuple(names), self.hub.has_side_effects(names), owner=self.hub.owner_of(names))

    async def run(self, instruction: str, tools: ToolSelection, model: str, deadline: Deadline,
                  documents: dict[str, str] | None = None) -> list[AgentMessage]:
        return await self.hub.submit(instruction, tools.names, model, deadline, documents=documents)

    def openai_models(self) -> list[str]:
        """The models ``/v1/chat/completions`` passes through to: those a connected agent forwards to."""
        return self.hub.chat_models()

    def forward_owner(self) -> str:
        """Who may answer a passed-through request (the identities allowed a task that names no tool): part of
        its cache key, so an answer is served again only while the same agents may give it."""
        return self.hub.owner_of(())

    async def forward_chat(self, body: dict[str, Any], deadline: Deadline, *, stream: bool) -> Any:
        """A chat-completions request for a model behind the hub, over the bridge to an agent that serves it
        (:meth:`BridgeHub.forward_chat`).

        Args:
            body: The request body.
            deadline: The request's deadline.
            stream: Whether the body asks for a stream.
        """
        return await self.hub.forward_chat(body, deadline, stream=stream)

    async def stream(self, instruction: str, tools: ToolSelection, model: str, deadline: Deadline,
                     documents: dict[str, str] | None = None) -> AsyncIterator[RunEvent]:
        """The agent's events as its ``task:event`` frames arrive (from the transcript, for an agent that sends
        none); raises the task's AgentError at the end of a failed run."""
        async for event in hub_events(self.hub, instruction, tools.names, model, deadline, documents):
            yield event


class HubHttpApp:
    """A bare ASGI app: the request's method, path, headers and body go to :func:`lmstudio_agent.endpoint.router.route`
    (the contract's ``handle_request``, the stream and the runs); ``GET /`` is the playground.

    Args:
        hub: The hub whose agents run ``POST /execute``.
        api_key: The client key ``POST /execute`` and ``/runs`` require (None: every request is refused).
        cache: Where answers are cached (None: no cache).
        options: The execute route's limits (deadline, cache TTL, body size).
        runs: The async runs' service (default: runs kept in this process's memory).
        heartbeat_seconds: Silence after which a stream sends a comment line, so proxies keep it open.
    """

    def __init__(
        self,
        hub: BridgeHub,
        *,
        api_key: str | None,
        cache: CacheStore | None = None,
        options: ExecuteOptions | None = None,
        runs: RunService | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.backend = HubBackend(hub)
        self.hub = hub
        self.api_key = api_key
        self.cache = cache
        self.options = options or ExecuteOptions()
        # Async runs live in this process's memory: the hub is one long-lived process, and a run's agent
        # is connected to it, so a run cannot outlive the hub anyway.
        self.runs = runs if runs is not None else RunService(MemoryRunStore(), self.backend, options=self.options)
        self.heartbeat_seconds = heartbeat_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        # (name, value) pairs, not a dict: the contract refuses a credential header sent twice.
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        if scope["path"] in ("/", "/index.html") and scope["method"] in ("GET", "HEAD"):
            await send_playground(send, head=scope["method"] == "HEAD")
            return
        if scope["path"] == "/tools" and scope["method"] in ("GET", "HEAD"):
            # The playground's list of tools on offer: those the connected agents registered (keyed).
            refused = authorize(headers, self.api_key)
            answer = refused or HttpResponse(200, {"tools": sorted(self.hub.connected_tools())}, {"Cache-Control": "no-store"})
            await _send_response(send, answer, head=scope["method"] == "HEAD")
            return
        try:
            body = await asyncio.wait_for(_read_body(receive, self.options.max_body_bytes), BODY_READ_TIMEOUT)
        except TimeoutError:
            response = error_response(ErrorCode.INVALID_REQUEST, f"Request body not received within {BODY_READ_TIMEOUT:g}s")
        except _Disconnected:
            return
        else:
            answered = await self._respond(scope, headers, body, receive)
            if answered is None:
                return
            if isinstance(answered, StreamResponse):
                await send_stream(send, receive, answered.status, answered.all_headers(), answered.body,
                                  head=scope["method"] == "HEAD")
                return
            response = answered
        await _send_response(send, response, head=scope["method"] == "HEAD")

    async def _respond(self, scope: Scope, headers: list[tuple[str, str]], body: bytes,
                       receive: Receive) -> HttpResponse | StreamResponse | None:
        """The contract's answer, or None when the client went away first (its task is then cancelled)."""
        handling = asyncio.ensure_future(
            route(
                scope["method"],
                scope["path"],
                headers,
                body,
                backend=self.backend,
                api_key=self.api_key,
                cache=self.cache,
                options=self.options,
                runs=self.runs,
                heartbeat_seconds=self.heartbeat_seconds,
            )
        )
        watching = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait({handling, watching}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server is shutting down: nobody will read the answer
            handling.cancel()
            raise
        finally:
            watching.cancel()
        if not handling.done():
            logger.info("client left before %s %s finished; cancelling its task", scope["method"], scope["path"])
            handling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await handling
            return None
        response = handling.result()
        if isinstance(response, StreamResponse):
            return response
        if response.body.get("code") in _RETRYABLE:
            response.headers["Retry-After"] = str(self.hub.retry_after_seconds)
        return response


class _Disconnected(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The body, cut off just past ``limit`` (the contract then answers PAYLOAD_TOO_LARGE)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or not message.get("more_body", False):
            return b"".join(chunks)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_response(send: Send, response: HttpResponse, *, head: bool) -> None:
    payload = b"" if response.status == 204 or head else response.json().encode()
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.all_headers().items()]
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the process that embeds the hub owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HubHttpServer:
    """The HTTP listener of a hub: ``await start(host, port)`` (port 0: any free port), ``await stop()``.

    Args:
        app: The ASGI app to serve.
    """

    def __init__(self, app: HubHttpApp) -> None:
        self.app = app
        self._server: _EmbeddedServer | None = None
        self._serving: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_HTTP_PORT) -> None:
        """Listen on ``host:port``; a port in use raises OSError here."""
        sock = _listen(host, port)
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
            **uvicorn_limits(),  # slow request heads are cut off, heads are size-limited
        )
        install_access_log_redaction()  # should anyone turn the access log on: never a query string in it
        self._server = _EmbeddedServer(config)
        self._serving = asyncio.ensure_future(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._serving.done():
                sock.close()
                self._serving.result()
                raise RuntimeError("the hub's HTTP listener stopped during startup")
            await asyncio.sleep(0.01)
        self._socket = sock
        logger.info("bridge hub HTTP API on http://%s:%s", host, self.port)

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the HTTP listener is not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._server is None or self._serving is None:
            return
        await self.app.runs.aclose()  # runs in flight end as cancelled: their agents go with the hub
        self._server.should_exit = True
        await self._serving
        self._server = None
        self._serving = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket made as asyncio makes its own: with ``proto=IPPROTO_TCP``, so asyncio sets
    TCP_NODELAY on every accepted connection (with proto 0 it does not, and Nagle adds 40 ms a response)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock
