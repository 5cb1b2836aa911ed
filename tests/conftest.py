"""Shared fixtures: the scripted loopback upstream, a dead upstream, and the real embedded model server."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.openai_stub import ScriptedOpenAIServer


@pytest.fixture(autouse=True)
def _no_running_server_file(tmp_path_factory, monkeypatch) -> None:
    """Tests never pick up the server file of a `make serve-model` the developer has running."""
    from lmstudio_agent.model.connection import ENV_SERVER_FILE

    monkeypatch.setenv(ENV_SERVER_FILE, str(tmp_path_factory.getbasetemp() / "no-server.env"))


@pytest.fixture
def openai_stub() -> Iterator[ScriptedOpenAIServer]:
    """A started scripted OpenAI-protocol server on 127.0.0.1 (no token required)."""
    with ScriptedOpenAIServer() as server:
        yield server


@pytest.fixture
def dead_upstream_url() -> str:
    """A loopback URL on which nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="session")
def embedded_model():
    """The real gateway-model server on the embedded SmolLM2-135M-Instruct GGUF, for the whole session."""
    from lmstudio_gateway.process import run_in_background

    with run_in_background() as server:
        yield server
