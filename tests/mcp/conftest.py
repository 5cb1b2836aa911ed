"""Real MCP servers for the tests, written with the SDK's server side (FastMCP): ``servers/tools_server.py``
over stdio (a child process the client starts) and over streamable HTTP on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest

pytest.importorskip("mcp", reason="the mcp extra (make core installs it)")

SERVER = Path(__file__).resolve().parent / "servers" / "tools_server.py"
HTTP_TOKEN = "http-secret-token-4f9a1c"  # a header secret: must never show up in a log line
ENV_SECRET = "env-secret-value-7d3e22"  # an env secret: likewise


def stdio_entry(name: str = "alpha", **extra: Any) -> dict[str, Any]:
    """An mcp.json entry that starts the test server over stdio."""
    return {"command": sys.executable, "args": [str(SERVER), "--transport", "stdio", "--name", name], **extra}


@dataclass
class HttpServer:
    url: str
    process: subprocess.Popen

    def entry(self, **extra: Any) -> dict[str, Any]:
        """An mcp.json entry for this server, with its bearer token as a header."""
        return {"url": self.url, "headers": {"Authorization": f"Bearer {HTTP_TOKEN}"}, **extra}


def start_http_server(name: str = "beta", port: int = 0) -> HttpServer:
    env = {**os.environ, "MCP_TEST_TOKEN": HTTP_TOKEN}
    process = subprocess.Popen([sys.executable, str(SERVER), "--transport", "http", "--name", name,
                                "--port", str(port)],
                               stdout=subprocess.PIPE, env=env, text=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(30)
    if not line or not line[0].startswith("PORT "):
        process.kill()
        raise RuntimeError(f"the HTTP MCP server did not start: {line!r}")
    return HttpServer(f"http://127.0.0.1:{int(line[0].split()[1])}/mcp", process)


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """The test server over streamable HTTP on 127.0.0.1 (a free port), requiring a bearer token."""
    server = start_http_server()
    yield server
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
    server.process.stdout.close()
