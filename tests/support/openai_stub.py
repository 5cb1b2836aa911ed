"""A real HTTP server on loopback that speaks the OpenAI chat-completions protocol with scripted replies.

It is the upstream for the fast tests: the client, the loop and the endpoints talk to it over real TCP, so
timeouts, retries, status codes and malformed bodies are exercised exactly as against LM Studio. Replies are
queued per test; when the queue is empty, ``default`` answers (a plain text reply unless set otherwise).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_ID = "scripted-model"


@dataclass
class Reply:
    """One scripted HTTP reply."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0  # between the chunks of a streamed answer (``stream: true`` requests)


def _completion(message: dict[str, Any], finish_reason: str, usage: dict | None = None, logprobs=None) -> dict:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": logprobs}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _json_reply(payload: Any, delay: float = 0.0, status: int = 200, headers: dict | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}, delay)


def text(content: str, *, delay: float = 0.0, logprobs: dict | None = None) -> Reply:
    """An assistant message with plain content."""
    return _json_reply(_completion({"role": "assistant", "content": content}, "stop", logprobs=logprobs), delay)


def json_content(obj: Any, *, delay: float = 0.0, logprobs: dict | None = None) -> Reply:
    """An assistant message whose content is ``obj`` as JSON (what a grammar-constrained reply looks like)."""
    return text(json.dumps(obj), delay=delay, logprobs=logprobs)


def tool_call(name: str, args: dict[str, Any], *, content: str = "", delay: float = 0.0, calls: list | None = None) -> Reply:
    """An assistant message with native ``tool_calls`` (one, or ``calls=[(name, args), ...]``)."""
    pairs = calls or [(name, args)]
    tool_calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
        for i, (n, a) in enumerate(pairs)
    ]
    message = {"role": "assistant", "content": content or None, "tool_calls": tool_calls}
    return _json_reply(_completion(message, "tool_calls"), delay)


def http_error(status: int, message: str = "upstream error", *, retry_after: float | None = None, delay: float = 0.0) -> Reply:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return _json_reply({"error": {"message": message, "type": "server_error"}}, delay, status, headers)


def garbage(*, delay: float = 0.0) -> Reply:
    """A 200 whose body is not JSON at all."""
    return Reply(200, b"<html>Bad gateway from a confused proxy</html>", {"Content-Type": "text/html"}, delay)


def stream_chunks(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunks an OpenAI server streams for ``completion``: the role, the content a few characters at a
    time, each tool call (id and name first, then its arguments in two pieces), the finish reason, the usage."""
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": completion.get("id"), "object": "chat.completion.chunk", "created": completion.get("created"),
                "model": completion.get("model"), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    content = message.get("content") or ""
    for start in range(0, len(content), 4):
        chunks.append(chunk({"content": content[start:start + 4]}))
    for index, call in enumerate(message.get("tool_calls") or []):
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        chunks.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": ""}}]}))
        for piece in (arguments[:half], arguments[half:]):
            chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    chunks.append(chunk({}, choice.get("finish_reason") or "stop"))
    if completion.get("usage"):
        chunks.append({**chunk({}), "choices": [], "usage": completion["usage"]})
    return chunks


def streamed_text(content: str, *, chunk_delay: float = 0.0, delay: float = 0.0) -> Reply:
    """A plain text reply whose streamed chunks are ``chunk_delay`` apart (for watching deltas arrive)."""
    reply = text(content, delay=delay)
    reply.chunk_delay = chunk_delay
    return reply


class ScriptedOpenAIServer:
    """See the module docstring. ``token``: when set, requests must carry ``Authorization: Bearer <token>``."""

    def __init__(self, *, token: str | None = None, capabilities: list[str] | None = None) -> None:
        self.token = token
        self.capabilities = capabilities if capabilities is not None else []
        self.requests: list[dict[str, Any]] = []
        self.streams_finished: list[float] = []  # monotonic time each streamed answer's last chunk went out
        self.default: Reply = text("Done.")
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="openai-stub", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"].endswith("/chat/completions")]

    def start(self) -> ScriptedOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    def _handler_class(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms wait between them

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _send(self, reply: Reply) -> None:
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to do

            def _send_stream(self, reply: Reply) -> None:
                """A JSON completion as OpenAI's ``stream: true`` chunks (text in pieces, call arguments in two)."""
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    for chunk in stream_chunks(json.loads(reply.body)):
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        if reply.chunk_delay:
                            time.sleep(reply.chunk_delay)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    stub.streams_finished.append(time.monotonic())
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _authorised(self) -> bool:
                if stub.token is None:
                    return True
                if self.headers.get("Authorization") == f"Bearer {stub.token}":
                    return True
                self._send(_json_reply({"error": {"message": "invalid token"}}, status=401))
                return False

            def do_GET(self) -> None:
                stub.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers), "body": None})
                if not self._authorised():
                    return
                if self.path.rstrip("/") == "/v1/models":
                    self._send(_json_reply({"object": "list", "data": [{"id": MODEL_ID, "object": "model"}]}))
                elif self.path.rstrip("/") == "/api/v0/models":
                    model = {"id": MODEL_ID, "object": "model", "type": "llm", "state": "loaded",
                             "capabilities": stub.capabilities}
                    self._send(_json_reply({"object": "list", "data": [model]}))
                else:
                    self._send(_json_reply({"error": {"message": "not found"}}, status=404))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = {"_unparsable": raw.decode(errors="replace")}
                stub.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body})
                if not self._authorised():
                    return
                reply = stub._next_reply()
                streamable = reply.status == 200 and reply.headers.get("Content-Type") == "application/json"
                if isinstance(body, dict) and body.get("stream") is True and streamable:
                    self._send_stream(reply)
                else:
                    self._send(reply)

        return Handler
