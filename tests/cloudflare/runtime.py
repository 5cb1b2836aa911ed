"""Stand-ins for the Cloudflare Workers runtime, for running the Worker in-process under CPython.

BOUNDARY: workerd cannot start a Python Worker on these machines (it downloads its Pyodide runtime at
start), and the real ``workers`` SDK imports ``js``/``pyodide``, which exist only inside that runtime. So
everything *outside* ``cloudflare/src`` is stood in for here, mirroring the real APIs:

- ``workers`` module: ``Response(body, status=, status_text=, headers=, web_socket=)`` and
  ``WorkerEntrypoint(ctx, env)``, as in workers-runtime-sdk (``test_runtime_fidelity`` checks the
  signatures against the installed SDK's source);
- :class:`Request`: the SDK's ``workers.Request`` over a JS Request (``method`` as ``http.HTTPMethod``,
  ``url``, ``headers`` as an ``http.client.HTTPMessage`` mapping with lower-case names, ``await text()``
  once, the JS rule that GET/HEAD carry no body);
- :class:`KVNamespace`: a KV binding as Python sees it (string values, ``await get(key)`` -> None when
  missing or expired, ``await put(key, value, expirationTtl=...)`` refusing a TTL under 60 s, KV's key rules);
- :class:`WorkerEnv`: ``self.env``, vars and secrets as attributes, unset names raise AttributeError;
- Durable Objects: ``workers.DurableObject(ctx, env)``, a namespace binding (``idFromName``, ``get`` -> a stub
  whose ``fetch(url, method=, headers=, body=)`` is the SDK's fetcher form), one live object per id, and its
  ``ctx.storage`` (``get``/``put`` of strings, ``deleteAll``, ``setAlarm(epoch ms)``, which calls the object's
  ``alarm()`` on the running event loop at that time);
- the WebSocket Hibernation API of a Durable Object: ``js.WebSocketPair`` (``Object.values(WebSocketPair.new())``
  -> ``[client, server]``), ``ctx.acceptWebSocket(ws)``, ``ctx.getWebSockets()``,
  ``ctx.setWebSocketAutoResponse(WebSocketRequestResponsePair.new(request, response))``, each socket's
  ``send``/``close``/``serializeAttachment``/``deserializeAttachment``, and the handlers the runtime calls
  (``webSocketMessage(ws, message)``, ``webSocketClose(ws, code, reason, wasClean)``). Hibernation is
  :meth:`DurableObjectNamespace.hibernate`: the object's instance is dropped while its sockets stay open, and
  the next event constructs a new one that must rebuild its state from ``getWebSockets()`` and attachments.
  An auto-response frame is answered without constructing or calling the object;
- :class:`WorkerFront`: a loopback WebSocket server standing in for Cloudflare's edge: a real client's
  handshake becomes a ``Request`` with ``Upgrade: websocket`` to the Worker's ``fetch``; a 101 answer with a
  ``web_socket`` accepts the connection and its frames go to the object that accepted the server end, any
  other answer is the handshake's HTTP response;
- ``js`` module: ``TransformStream`` (a ``readable`` ReadableStream and a ``writable`` whose ``getWriter()``
  writes Uint8Arrays), ``TextEncoder``, with the Streams spec's rules the Worker meets (a closed writer refuses
  writes; a cancelled readable makes the writer's next write reject).

Everything inside ``cloudflare/src`` (entry.py, kv_cache.py) and the core package runs for real.
"""

from __future__ import annotations

import http.client
import importlib
import json
import sys
import time
import types
from collections.abc import Mapping
from http import HTTPMethod, HTTPStatus
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER_SRC = REPO_ROOT / "cloudflare" / "src"

KV_MIN_TTL_SECONDS = 60
KV_MAX_KEY_BYTES = 512
KV_MAX_VALUE_BYTES = 25 * 1024 * 1024
NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})


class JsException(Exception):
    """What Python sees when a JS call throws or its promise rejects (pyodide.ffi.JsException)."""


class HTTPMessageMapping(http.client.HTTPMessage, Mapping):
    """The SDK's header type (workers/utils.py): an HTTPMessage that is also a Mapping."""


def _js_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> dict[str, str]:
    """What a JS ``Headers`` holds: lower-case names, repeated names joined with ', ', strings only."""
    combined: dict[str, str] = {}
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or [])
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("Headers names and values must be strings")
        key = name.lower()
        combined[key] = f"{combined[key]}, {value.strip()}" if key in combined else value.strip()
    return combined


def _http_message(headers: Mapping[str, str]) -> HTTPMessageMapping:
    message = HTTPMessageMapping()
    for key, value in headers.items():
        message[key] = value
    return message


# ---------------------------------------------------------------------------------------------- request


class Request:
    """``workers.Request`` as the runtime hands it to ``fetch`` (a JS Request underneath)."""

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: str | bytes | None = None,
    ) -> None:
        # The Fetch standard's "normalize a method": only these six are upper-cased; any other keeps its case.
        if method.upper() in ("DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"):
            method = method.upper()
        if method in ("GET", "HEAD") and body is not None:
            raise TypeError("Request with a GET or HEAD method cannot have a body.")
        self._method = method
        self._url = url
        self._headers = _js_headers(headers)
        self._body = body.encode() if isinstance(body, str) else body
        self._body_used = False

    @property
    def method(self) -> HTTPMethod:
        return HTTPMethod[self._method]  # as the SDK does: a KeyError for a method HTTPMethod lacks

    @property
    def js_object(self) -> types.SimpleNamespace:
        """The underlying JS Request (only the plain attributes the Worker may read)."""
        return types.SimpleNamespace(method=self._method, url=self._url)

    @property
    def url(self) -> str:
        return self._url

    @property
    def headers(self) -> HTTPMessageMapping:
        return _http_message(self._headers)

    @property
    def body_used(self) -> bool:
        return self._body_used

    async def text(self) -> str:
        if self._body_used:
            raise OSError("Body already used")
        self._body_used = True
        # JS decodes the body as UTF-8, replacing invalid sequences with U+FFFD.
        return (self._body or b"").decode("utf-8", errors="replace")

    async def bytes(self) -> bytes:
        """``await request.bytes()``: the SDK's ``(await self.js_object.arrayBuffer()).to_bytes()``."""
        if self._body_used:
            raise OSError("Body already used")
        self._body_used = True
        return bytes(self._body or b"")

    async def json(self) -> Any:
        return json.loads(await self.text())


# --------------------------------------------------------------------------------------- workers module


class Response:
    """``workers.Response(body, status, status_text, headers, web_socket)`` with the JS constructor's rules."""

    def __init__(
        self,
        body: str | bytes | None = None,
        status: HTTPStatus | int | None = None,
        status_text: str = "",
        headers: Mapping[str, str] | None = None,
        web_socket: Any = None,
    ) -> None:
        js_type = getattr(getattr(body, "constructor", None), "name", None)
        if js_type is not None:
            if js_type not in ("ReadableStream", "Uint8Array", "ArrayBuffer"):
                raise TypeError(f"Unsupported type in Response: {js_type}")
        elif body is not None and not isinstance(body, (str, bytes)):
            raise TypeError(f"Unsupported type in Response: {type(body).__name__}")
        code = int(status) if status else 200
        if code == 101 and web_socket is None:
            raise JsException("RangeError: Responses may only be constructed with status codes in the range 200 to 599, inclusive.")
        if not 200 <= code <= 599 and code != 101:
            raise JsException("RangeError: Responses may only be constructed with status codes in the range 200 to 599, inclusive.")
        if code in NULL_BODY_STATUSES and body is not None:
            raise JsException(f"TypeError: Response with null body status ({code}) cannot have body.")
        self.status = code
        self.status_text = status_text
        self._headers = _js_headers(headers)
        self._stream = body if isinstance(body, ReadableStream) else None
        if web_socket is not None and code != 101:
            raise JsException("RangeError: a Response with a webSocket must have status 101")
        self._web_socket = web_socket
        self._body = body.encode() if isinstance(body, str) else (b"" if self._stream is not None else (body or b""))

    @property
    def body(self) -> ReadableStream | None:
        """The body as JS gives it: a ReadableStream (null for no body)."""
        if self._stream is None and self._body:
            self._stream = ReadableStream()
            self._stream._queue.put_nowait(Uint8Array(self._body))
            self._stream._queue.put_nowait(None)
        return self._stream

    @property
    def headers(self) -> HTTPMessageMapping:
        return _http_message(self._headers)

    async def text(self) -> str:
        if self._stream is not None:
            chunks = []
            reader = self._stream.getReader()
            while True:
                result = await reader.read()
                if result.done:
                    break
                chunks.append(bytes(result.value))
            return b"".join(chunks).decode("utf-8", errors="replace")
        return self._body.decode("utf-8", errors="replace")

    async def json(self) -> Any:
        return json.loads(await self.text())


# ------------------------------------------------------------------------------------------ js streams


class _Constructor:
    def __init__(self, name: str) -> None:
        self.name = name


class Uint8Array(bytes):
    """A JS Uint8Array as Python holds it (bytes-like; ``constructor.name`` as the SDK checks it)."""

    constructor = _Constructor("Uint8Array")


class _ReadResult:
    def __init__(self, value: Any, done: bool) -> None:
        self.value = value
        self.done = done


class ReadableStream:
    """The readable side of a :class:`TransformStream`: ``getReader().read()`` resolves with
    ``{value, done}`` as chunks are written; ``cancel()`` (a client that went away) errors the writable."""

    constructor = _Constructor("ReadableStream")

    def __init__(self) -> None:
        import asyncio

        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = False
        self.locked = False

    def getReader(self) -> ReadableStream:  # noqa: N802 - the JS name
        if self.locked:
            raise JsException("TypeError: ReadableStream is locked")
        self.locked = True
        return self

    async def read(self) -> _ReadResult:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)
            return _ReadResult(None, True)
        return _ReadResult(item, False)

    async def cancel(self, reason: Any = None) -> None:
        self.cancelled = True


class WritableStreamDefaultWriter:
    def __init__(self, readable: ReadableStream) -> None:
        self._readable = readable
        self.closed = False

    async def write(self, chunk: Any) -> None:
        if self.closed:
            raise JsException("TypeError: This writable stream has been closed.")
        if self._readable.cancelled:
            raise JsException("TypeError: The readable side was cancelled.")
        if not isinstance(chunk, Uint8Array):
            raise JsException("TypeError: This TransformStream is being used as a byte stream, but received a "
                              "value that is not a BufferSource.")
        self._readable._queue.put_nowait(chunk)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._readable._queue.put_nowait(None)


class _Writable:
    def __init__(self, readable: ReadableStream) -> None:
        self._writer = WritableStreamDefaultWriter(readable)

    def getWriter(self) -> WritableStreamDefaultWriter:  # noqa: N802 - the JS name
        return self._writer


class TransformStream:
    """``new TransformStream()``: the identity transform, ``readable`` and ``writable``."""

    def __init__(self) -> None:
        self.readable = ReadableStream()
        self.writable = _Writable(self.readable)

    @classmethod
    def new(cls) -> TransformStream:
        return cls()


class TextEncoder:
    @classmethod
    def new(cls) -> TextEncoder:
        return cls()

    def encode(self, text: str) -> Uint8Array:
        if not isinstance(text, str):
            raise JsException("TypeError: TextEncoder.encode takes a string")
        return Uint8Array(text.encode("utf-8"))


# --------------------------------------------------------------------------------- WebSocket (hibernation)

WS_OPEN, WS_CLOSING, WS_CLOSED = 1, 2, 3
ATTACHMENT_MAX_BYTES = 2048  # serializeAttachment's limit (structured clone of at most 2,048 bytes)


class WebSocket:
    """One end of a ``WebSocketPair``. The server end, once accepted by a Durable Object, is what the object's
    handlers receive; what it sends goes to the real client socket the :class:`WorkerFront` linked to it."""

    def __init__(self) -> None:
        import asyncio

        self.peer: WebSocket | None = None
        self.readyState = WS_OPEN  # noqa: N815 - the JS name
        self._attachment: str | None = None
        self.owner: tuple[DurableObjectNamespace, str] | None = None  # (namespace, object id) once accepted
        self.sent: list[str] = []  # every frame the object sent, for assertions
        self._outbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def accept(self) -> None:
        raise JsException("TypeError: Can't call accept() on a WebSocket accepted with acceptWebSocket()")

    def send(self, message: Any) -> None:
        if self.readyState != WS_OPEN:
            raise JsException("TypeError: Can't call WebSocket send() after close().")
        if not isinstance(message, (str, bytes)):
            raise JsException("TypeError: WebSocket send() takes a string or an ArrayBuffer")
        self.sent.append(message if isinstance(message, str) else message.decode("utf-8", "replace"))
        self._outbox.put_nowait(("send", message))

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.readyState == WS_CLOSED:
            return
        if not (code == 1000 or 3000 <= code <= 4999 or code in (1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011)):
            raise JsException(f"TypeError: Invalid WebSocket close code: {code}.")
        self.readyState = WS_CLOSED
        self._outbox.put_nowait(("close", (code, reason)))

    def serializeAttachment(self, value: Any) -> None:  # noqa: N802 - the JS name
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise JsException("DataCloneError: the attachment could not be cloned")
        text = json.dumps(value)
        if len(text.encode()) > ATTACHMENT_MAX_BYTES:
            raise JsException(f"Error: serialized attachment exceeds the {ATTACHMENT_MAX_BYTES}-byte limit")
        self._attachment = text

    def deserializeAttachment(self) -> Any:  # noqa: N802 - the JS name
        return None if self._attachment is None else json.loads(self._attachment)


class WebSocketPair:
    """``new WebSocketPair()``: an object whose two values are the client and the server end."""

    def __init__(self) -> None:
        self.client = WebSocket()
        self.server = WebSocket()
        self.client.peer, self.server.peer = self.server, self.client

    @classmethod
    def new(cls) -> WebSocketPair:
        return cls()


class JsObject:
    """``Object``: only ``Object.values`` (of a WebSocketPair, as Workers code reads it)."""

    @staticmethod
    def values(value: Any) -> list[Any]:
        if isinstance(value, WebSocketPair):
            return [value.client, value.server]
        return list(vars(value).values())


class WebSocketRequestResponsePair:
    """``new WebSocketRequestResponsePair(request, response)``: the auto-response of a hibernatable object."""

    def __init__(self, request: str, response: str) -> None:
        if not isinstance(request, str) or not isinstance(response, str):
            raise JsException("TypeError: WebSocketRequestResponsePair takes two strings")
        self.request = request
        self.response = response

    @classmethod
    def new(cls, request: str, response: str) -> WebSocketRequestResponsePair:
        return cls(request, response)


def js_module() -> types.ModuleType:
    module = types.ModuleType("js", "Stand-in for Pyodide's js module (tests/cloudflare/runtime.py).")
    module.TransformStream = TransformStream
    module.TextEncoder = TextEncoder
    module.WebSocketPair = WebSocketPair
    module.WebSocketRequestResponsePair = WebSocketRequestResponsePair
    module.Object = JsObject
    module.__standin__ = True
    return module


# -------------------------------------------------------------------------------------- Durable Objects


class DurableObject:
    """``workers.DurableObject``: the runtime constructs one per id with ``(ctx, env)``."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


class DurableObjectStorage:
    def __init__(self) -> None:
        self.items: dict[str, Any] = {}
        self.alarm_at: float | None = None
        self._owner: Any = None
        self._timer: Any = None

    async def get(self, key: str) -> Any:
        return self.items.get(key)

    async def put(self, key: str, value: Any) -> None:
        if not isinstance(value, (str, int, float, bool)):
            raise JsException("DataCloneError: the value could not be cloned")
        self.items[key] = value

    async def deleteAll(self) -> None:  # noqa: N802 - the JS name
        self.items.clear()

    async def setAlarm(self, when_ms: int) -> None:  # noqa: N802 - the JS name
        import asyncio

        if not isinstance(when_ms, (int, float)):
            raise JsException("TypeError: setAlarm() takes a time in milliseconds")
        if self._timer is not None:
            self._timer.cancel()  # one alarm per object: a new one replaces it
        self.alarm_at = when_ms / 1000.0
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.alarm_at - time.time())
        self._timer = loop.call_later(delay, lambda: loop.create_task(self._fire()))

    async def _fire(self) -> None:
        self._timer = None
        self.alarm_at = None
        await self._owner.alarm()


class DurableObjectState:
    """``ctx``: the object's id, storage and the sockets it accepted (which outlive its instance)."""

    def __init__(self, object_id: str, namespace: DurableObjectNamespace | None = None) -> None:
        self.id = object_id
        self.storage = DurableObjectStorage()
        self._namespace = namespace
        self._sockets: list[WebSocket] = []
        self._auto_response: WebSocketRequestResponsePair | None = None

    def acceptWebSocket(self, ws: WebSocket, tags: list[str] | None = None) -> None:  # noqa: N802 - the JS name
        if not isinstance(ws, WebSocket) or ws.owner is not None:
            raise JsException("TypeError: acceptWebSocket() takes a WebSocket that was not accepted yet")
        if len([s for s in self._sockets if s.readyState == WS_OPEN]) >= 32768:
            raise JsException("Error: too many hibernatable WebSockets")
        ws.owner = (self._namespace, self.id) if self._namespace is not None else None
        self._sockets.append(ws)

    def getWebSockets(self, tag: str | None = None) -> list[WebSocket]:  # noqa: N802 - the JS name
        """The accepted sockets not yet closed (a closed one is gone once its webSocketClose has run)."""
        self._sockets = [s for s in self._sockets if s.readyState != WS_CLOSED]
        return list(self._sockets)

    def setWebSocketAutoResponse(self, pair: WebSocketRequestResponsePair | None = None) -> None:  # noqa: N802
        if pair is not None and not isinstance(pair, WebSocketRequestResponsePair):
            raise JsException("TypeError: setWebSocketAutoResponse() takes a WebSocketRequestResponsePair")
        self._auto_response = pair

    def getWebSocketAutoResponse(self) -> WebSocketRequestResponsePair | None:  # noqa: N802 - the JS name
        return self._auto_response


class _DurableObjectStub:
    def __init__(self, namespace: DurableObjectNamespace, object_id: str) -> None:
        self._namespace = namespace
        self._id = object_id

    async def fetch(self, url: str | Request, method: str = "GET", headers: Mapping[str, str] | None = None,
                    body: str | bytes | None = None) -> Any:
        """The SDK's fetcher: a URL with options, or a whole ``Request`` passed on (an upgrade included)."""
        request = url if isinstance(url, Request) else Request(url, method=method, headers=headers or {}, body=body)
        return await self._namespace.instance(self._id).fetch(request)


class DurableObjectNamespace:
    """A Durable Object namespace binding: one live object per id, made on first use, rebuilt after
    :meth:`hibernate` from the same ``ctx`` (storage and accepted sockets)."""

    def __init__(self, cls: Any, env: Any = None) -> None:
        self.cls = cls
        self.env = env
        self.objects: dict[str, Any] = {}
        self.states: dict[str, DurableObjectState] = {}
        self.constructed = 0  # instances built, a rebuild after hibernation included
        self.auto_responses = 0  # frames answered by the auto-response, with no instance involved

    def idFromName(self, name: str) -> str:  # noqa: N802 - the JS name
        return f"do-id:{name}"

    def get(self, object_id: str) -> _DurableObjectStub:
        return _DurableObjectStub(self, object_id)

    def instance(self, object_id: str) -> Any:
        """The live instance of ``object_id``, constructed (again, after hibernation) when there is none."""
        if object_id not in self.objects:
            state = self.states.get(object_id)
            if state is None:
                state = self.states[object_id] = DurableObjectState(object_id, self)
            instance = self.cls(state, self.env)
            state.storage._owner = instance
            self.objects[object_id] = instance
            self.constructed += 1
        return self.objects[object_id]

    def hibernate(self, object_id: str) -> bool:
        """Evict the object's instance (its in-memory state is lost); its sockets stay open. False when it has
        no instance."""
        return self.objects.pop(object_id, None) is not None

    async def deliver(self, ws: WebSocket, message: str | bytes) -> None:
        """A frame from the client of ``ws``: the auto-response when it matches, else ``webSocketMessage``."""
        if ws.owner is None or ws.readyState != WS_OPEN:
            return
        state = self.states[ws.owner[1]]
        auto = state._auto_response
        if auto is not None and isinstance(message, str) and message == auto.request:
            self.auto_responses += 1
            ws._outbox.put_nowait(("send", auto.response))
            return
        await self.instance(ws.owner[1]).webSocketMessage(ws, message)

    async def deliver_close(self, ws: WebSocket, code: int, reason: str, was_clean: bool) -> None:
        """The client's side closed (or its connection broke): ``webSocketClose``, then the socket is gone."""
        if ws.owner is None:
            return
        instance = self.instance(ws.owner[1])
        if ws.readyState == WS_OPEN:
            ws.readyState = WS_CLOSING
        try:
            await instance.webSocketClose(ws, code, reason, was_clean)
        finally:
            ws.readyState = WS_CLOSED


class WorkerEntrypoint:
    """``workers.WorkerEntrypoint``: the runtime constructs it with ``(ctx, env)`` for each event."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


class ExecutionContext:
    """``ctx``: ``waitUntil`` keeps the request alive for a promise; nothing here uses it."""

    def __init__(self) -> None:
        self.waited: list[Any] = []

    def waitUntil(self, awaitable: Any) -> None:  # noqa: N802 - the JS name
        self.waited.append(awaitable)

    def passThroughOnException(self) -> None:  # noqa: N802 - the JS name
        pass


def workers_module() -> types.ModuleType:
    """A module named ``workers`` exposing the stand-ins under the SDK's names."""
    module = types.ModuleType("workers", "Stand-in for the Workers Python SDK (tests/cloudflare/runtime.py).")
    module.Response = Response
    module.Request = Request
    module.WorkerEntrypoint = WorkerEntrypoint
    module.DurableObject = DurableObject
    module.__standin__ = True
    return module


def load_entry() -> types.ModuleType:
    """Import ``cloudflare/src/entry.py`` as the runtime does (src/ is the module root) over the stand-ins."""
    current = sys.modules.get("workers")
    if current is None or not getattr(current, "__standin__", False):
        sys.modules["workers"] = workers_module()
    if not getattr(sys.modules.get("js"), "__standin__", False):
        sys.modules["js"] = js_module()
    if str(WORKER_SRC) not in sys.path:
        sys.path.insert(0, str(WORKER_SRC))
    return importlib.import_module("entry")


# -------------------------------------------------------------------------------------------------- KV


class KVNamespace:
    """A KV namespace binding as Python code in a Worker calls it (through the SDK's binding wrapper)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._items: dict[str, tuple[str, float | None]] = {}
        self.puts: list[dict[str, Any]] = []  # every accepted put, for assertions

    @staticmethod
    def _check_key(key: Any) -> str:
        if not isinstance(key, str):
            raise JsException("TypeError: KV keys must be strings")
        if key in ("", ".", ".."):
            raise JsException(f'TypeError: Illegal key name "{key}". Please use a different name.')
        if len(key.encode()) > KV_MAX_KEY_BYTES:
            raise JsException(f"Error: KV GET/PUT failed: 414 UTF-8 encoded length of {len(key.encode())} exceeds key length limit of {KV_MAX_KEY_BYTES}.")
        return key

    async def get(self, key: str) -> str | None:
        key = self._check_key(key)
        item = self._items.get(key)
        if item is None:
            return None
        value, expires_at = item
        if expires_at is not None and expires_at <= self._clock():
            del self._items[key]
            return None
        return value

    async def put(
        self,
        key: str,
        value: str,
        expirationTtl: int | None = None,  # noqa: N803 - the JS option name, passed as a keyword from Python
        expiration: int | None = None,
        metadata: Any = None,
    ) -> None:
        key = self._check_key(key)
        if not isinstance(value, str):
            raise JsException(
                "TypeError: KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values."
            )
        if len(value.encode()) > KV_MAX_VALUE_BYTES:
            raise JsException("Error: KV PUT failed: 413 Value length exceeds limit.")
        expires_at = None
        if expirationTtl is not None:
            if int(expirationTtl) != expirationTtl or expirationTtl < KV_MIN_TTL_SECONDS:
                raise JsException(
                    f"Error: KV PUT failed: 400 Invalid expiration_ttl of {expirationTtl}. "
                    f"Expiration TTL must be at least {KV_MIN_TTL_SECONDS}."
                )
            expires_at = self._clock() + int(expirationTtl)
        elif expiration is not None:
            if expiration < self._clock() + KV_MIN_TTL_SECONDS:
                raise JsException(f"Error: KV PUT failed: 400 Invalid expiration of {expiration}.")
            expires_at = float(expiration)
        self._items[key] = (value, expires_at)
        self.puts.append({"key": key, "value": value, "expirationTtl": expirationTtl, "expiration": expiration})

    def live_keys(self) -> list[str]:
        now = self._clock()
        return [k for k, (_, exp) in self._items.items() if exp is None or exp > now]

    def __len__(self) -> int:
        return len(self.live_keys())


# ------------------------------------------------------------------------------------------------- env


class WorkerEnv:
    """``self.env``: each var, secret and binding an attribute; an unset name raises AttributeError."""

    def __init__(
        self,
        vars: Mapping[str, str | int | float | bool] | None = None,
        secrets: Mapping[str, str] | None = None,
        bindings: Mapping[str, Any] | None = None,
    ) -> None:
        for name, value in {**(vars or {}), **(secrets or {}), **(bindings or {})}.items():
            if value is not None:
                setattr(self, name, value)


# --------------------------------------------------------------------------------- loopback WebSocket front


class WorkerFront:
    """Cloudflare's edge in front of the Worker, for WebSocket clients: a real loopback WebSocket server.

    BOUNDARY: the edge and workerd's socket plumbing cannot run here. A client's handshake becomes a
    ``Request`` (its path, its headers, ``Upgrade: websocket``) to ``Default.fetch``; a 101 answer carrying a
    ``web_socket`` accepts the connection, and any other answer (401, 403, 400...) is sent as the handshake's
    HTTP response, status and JSON body. Then each frame from the client goes to the Durable Object that
    accepted the pair's server end (its ``webSocketMessage``, or the auto-response), what the object sends goes
    to the client, and the client's close (or a broken connection, code 1006) reaches ``webSocketClose``.

    Args:
        entry: The loaded Worker module (``load_entry()``).
        env: The Worker's env (its Durable Object namespaces among the bindings).
        namespaces: The namespaces whose objects may accept sockets.
    """

    def __init__(self, entry: types.ModuleType, env: Any, namespaces: Iterable[DurableObjectNamespace]) -> None:
        self.entry = entry
        self.env = env
        self.namespaces = list(namespaces)
        self._server: Any = None
        self._pumps: set[Any] = set()

    async def start(self) -> WorkerFront:
        from websockets.asyncio.server import serve

        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._handshake, compression=None,
                                   max_size=32 * 1024 * 1024, ping_interval=None)
        return self

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None
        for pump in list(self._pumps):
            pump.cancel()

    async def _handshake(self, connection: Any, request: Any) -> Any:
        headers = [(name, value) for name, value in request.headers.raw_items()]
        js_request = Request(f"https://worker.test{request.path}", method="GET", headers=headers)
        response = await self.entry.Default(ExecutionContext(), self.env).fetch(js_request)
        client = getattr(response, "_web_socket", None)
        if response.status == 101 and isinstance(client, WebSocket):
            connection.cf_client = client
            return None
        refused = connection.respond(response.status if response.status != 101 else 500, await response.text())
        del refused.headers["Content-Type"]
        for name, value in response.headers.items():
            refused.headers[name] = value
        return refused

    async def _handle(self, connection: Any) -> None:
        import asyncio

        from websockets.exceptions import ConnectionClosed

        client: WebSocket = connection.cf_client
        server = client.peer
        assert server is not None and server.owner is not None, "the Worker answered 101 but no object accepted the socket"
        namespace = server.owner[0]
        pump = asyncio.ensure_future(self._pump(server, connection))
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)
        try:
            async for raw in connection:
                await namespace.deliver(server, raw)
        except ConnectionClosed:
            pass
        finally:
            if server.readyState != WS_CLOSED:
                rcvd = connection.protocol.close_rcvd
                code = rcvd.code if rcvd is not None else 1006
                reason = rcvd.reason if rcvd is not None else ""
                await namespace.deliver_close(server, code, reason, rcvd is not None)
            server._outbox.put_nowait(("stop", None))
            await asyncio.gather(pump, return_exceptions=True)

    async def _pump(self, server: WebSocket, connection: Any) -> None:
        """What the object sends, in order, to the real socket; its close() closes the real socket."""
        from websockets.exceptions import ConnectionClosed

        while True:
            kind, value = await server._outbox.get()
            try:
                if kind == "send":
                    await connection.send(value)
                elif kind == "close":
                    await connection.close(*value)
                    return
                else:
                    return
            except ConnectionClosed:
                return
