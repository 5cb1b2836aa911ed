"""A real MCP server for the tests, written with the SDK's own server side (FastMCP, mcp 1.30.0).

    python tools_server.py --transport stdio --name alpha
    python tools_server.py --transport http --name beta     # prints "PORT <n>" once it listens on 127.0.0.1

Over HTTP, when ``MCP_TEST_TOKEN`` is set, every request must carry ``Authorization: Bearer <token>`` (401
otherwise), so the tests see that configured headers reach the server. ``crash`` ends the process at once,
mid-call: the "server that exits mid-run".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

import anyio
from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations
from pydantic import BaseModel

READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True)


class Note(BaseModel):
    saved: str
    count: int


def build(name: str) -> FastMCP:
    app = FastMCP(name, log_level="WARNING")
    notes: list[str] = []

    @app.tool(annotations=READ_ONLY)
    def forecast(city: str) -> str:
        """Weather forecast for a city.

        Args:
            city: The city, e.g. Paris.
        """
        return f"Sunny and 21 C in {city}"

    @app.tool(annotations=READ_ONLY)
    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    @app.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True))
    def save_note(text: str) -> Note:
        """Save a note and say how many there are."""
        notes.append(text)
        return Note(saved=text, count=len(notes))

    @app.tool()
    def send_email(to: str, body: str) -> str:
        """Send an email (no annotations: counts as having side effects)."""
        return f"sent to {to}"

    @app.tool(annotations=ToolAnnotations(readOnlyHint=True, destructiveHint=True))
    def purge_cache() -> str:
        """Contradictory hints: read-only yet destructive."""
        return "purged"

    @app.tool(annotations=READ_ONLY)
    def fail(reason: str) -> str:
        """Always raises."""
        raise ValueError(f"cannot do it: {reason}")

    @app.tool()
    def crash() -> str:
        """Ends the server process in the middle of the call."""
        sys.stdout.flush()
        os._exit(3)

    @app.tool(annotations=READ_ONLY)
    async def slow(seconds: float) -> str:
        """Sleeps, then answers."""
        await anyio.sleep(seconds)
        return "finally"

    @app.tool(annotations=READ_ONLY)
    def lookup(key: str) -> str:
        """Look a key up on this server (every test server offers it: a duplicate name)."""
        return f"{name}:{key}"

    @app.tool(annotations=READ_ONLY)
    def pid() -> int:
        """The server's process id."""
        return os.getpid()

    @app.tool(annotations=READ_ONLY)
    def env_is_set(variable: str) -> bool:
        """Whether an environment variable is set in the server's process."""
        return bool(os.environ.get(variable))

    return app


class BearerAuth:
    """ASGI middleware: 401 unless the request carries the expected bearer token."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != self.expected:
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"error": "unauthorized"}'})
            return
        await self.app(scope, receive, send)


async def serve_http(app: FastMCP, port: int = 0) -> None:
    import uvicorn

    asgi = app.streamable_http_app()
    token = os.environ.get("MCP_TEST_TOKEN")
    if token:
        asgi = BearerAuth(asgi, token)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(asgi, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await server.serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--name", default="tools")
    parser.add_argument("--port", type=int, default=0, help="HTTP: the loopback port (0: a free one)")
    options = parser.parse_args()
    app = build(options.name)
    if options.transport == "stdio":
        app.run("stdio")
    else:
        asyncio.run(serve_http(app, options.port))


if __name__ == "__main__":
    main()
