"""A loopback HTTP server around an endpoint driver, for HTTP clients that need a socket (``schemathesis run``).

The Lambda and the Worker have no socket of their own here: their drivers hand each request to the adapter
in-process, in the platform's own shape (an API Gateway proxy event; a ``workers`` Request). :class:`DriverApp`
is the boundary: a plain ASGI app that turns each HTTP request into ``driver.request(method, path,
headers=[(name, value), ...], body=bytes)`` (run in a worker thread: the drivers are synchronous) and writes
the adapter's status, headers and body back. :class:`LoopbackServer` serves it with uvicorn on 127.0.0.1 in
a thread of its own.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import traceback
from typing import Any

import uvicorn

from .base import EndpointDriver

logger = logging.getLogger(__name__)

# Framing is the server's business (uvicorn's); the adapter's own values would describe the adapter's framing.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


class DriverApp:
    """ASGI app answering every HTTP request with ``driver.request(...)``.

    Args:
        driver: The endpoint driver (one adapter, already stood up).
        raw_path: Hand the driver the path as sent (percent-encoded, with the query string), as a URL carries it
            to a Worker; False: decoded and without the query string, as API Gateway's proxy event has ``path``.
    """

    def __init__(self, driver: EndpointDriver, *, raw_path: bool) -> None:
        self.driver = driver
        self.raw_path = raw_path
        self.errors: list[str] = []  # tracebacks of requests the adapter raised on (the client got a 502)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if self.raw_path:
            path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
            if scope.get("query_string"):
                path += "?" + scope["query_string"].decode("latin-1")
        else:
            path = scope["path"]
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        try:
            response = await asyncio.to_thread(
                self.driver.request, scope["method"], path, headers=headers, body=body if body else None)
        except Exception:  # an adapter that raises: the platform answers 502 (API Gateway) or 500 (workerd)
            self.errors.append(traceback.format_exc())
            logger.exception("the adapter raised on %s %s", scope["method"], scope["path"])
            await _answer(send, 502, [(b"content-type", b"text/plain")], b"the adapter raised")
            return
        out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
               if k.lower() not in _HOP_BY_HOP]
        await _answer(send, response.status, out, response.text.encode("utf-8"))


async def _answer(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class LoopbackServer:
    """uvicorn serving ``app`` on 127.0.0.1 (a free port) in a thread: ``url``, ``close()``.

    Args:
        app: The ASGI app to serve.
    """

    def __init__(self, app: Any) -> None:
        # proto=IPPROTO_TCP, as asyncio makes its own listeners: then asyncio sets TCP_NODELAY on each accepted
        # connection (with proto 0 it does not, and Nagle holds each response's body back 40 ms).
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, server_header=False,
                                timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="loopback-driver", daemon=True)
        self._thread.start()
        for _ in range(1000):
            if self._server.started or not self._thread.is_alive():
                break
            self._thread.join(0.01)
        if not self._server.started:
            raise RuntimeError("the loopback server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()
