"""The uvicorn limits every server here runs with (lmstudio_agent.endpoint.uvicorn_limits), on a real uvicorn over loopback:
a request head that trickles in is cut off, an oversized head is refused, and no query string reaches the
access log."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
import uvicorn

from lmstudio_agent.endpoint.uvicorn_limits import MAX_HEADER_BYTES, RedactQueryStrings, header_timeout_protocol, install_access_log_redaction

SECRET = "sk-gw-query-secret-0123456789"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def server():
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="info", access_log=True,
                            http=header_timeout_protocol(0.5), h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                            timeout_keep_alive=5)
    install_access_log_redaction()
    instance = uvicorn.Server(config)
    instance.capture_signals = lambda: __import__("contextlib").nullcontext()  # the test runner owns signals
    serving = asyncio.ensure_future(instance.serve())
    while not instance.started:
        await asyncio.sleep(0.01)
    port = instance.servers[0].sockets[0].getsockname()[1]
    yield port
    instance.should_exit = True
    await serving


def _exchange(port: int, data: bytes, *, pause: float = 0.0, tail: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        if pause:
            time.sleep(pause)
            try:
                sock.sendall(tail)
            except OSError:
                return b""
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\nok" in b"".join(chunks):
                break
        return b"".join(chunks)


async def test_a_request_head_that_trickles_in_is_cut_off(server):
    started = time.monotonic()
    # Half a head, then silence past the 0.5 s limit: the server closes without an answer.
    answer = await asyncio.to_thread(_exchange, server, b"GET / HTTP/1.1\r\nHost: x\r\n", pause=1.5,
                                     tail=b"X-Late: 1\r\n\r\n")
    assert answer == b""
    assert time.monotonic() - started < 5


async def test_a_prompt_request_is_served_and_keeps_the_connection(server):
    answer = await asyncio.to_thread(_exchange, server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")


async def test_an_oversized_head_is_refused(server):
    # A head still incomplete past the limit (h11 checks what it has buffered while waiting for the rest).
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES + 1024)
    answer = await asyncio.to_thread(_exchange, server, head, pause=0.2, tail=b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400") or answer == b""
    assert b"ok" not in answer


async def test_query_strings_never_reach_the_access_log(server, caplog):
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    answer = await asyncio.to_thread(_exchange, server, f"GET /v1/models?api_key={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200")
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/v1/models?<redacted>" in line for line in lines), lines
    assert all(SECRET not in line for line in lines)


def test_the_filter_on_its_own():
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:1", "GET", f"/x?key={SECRET}&a=1", "1.1", 200), None)
    RedactQueryStrings().filter(record)
    assert SECRET not in record.getMessage() and "/x?<redacted>" in record.getMessage()
