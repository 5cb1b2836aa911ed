"""Schemathesis against the Lambda and the Worker, driven by the committed contract (core/openapi.json).

The ``schemathesis run`` CLI with every check, positive and negative data, over real loopback HTTP, as the hub's
run (tests/bridge/test_schemathesis.py) does. BOUNDARY: neither adapter has a socket here. The Lambda runs
behind API Gateway, which cannot run here (``sam local`` needs Docker), and the Worker inside workerd, which
cannot start a Python Worker offline. So each runs in-process under its endpoint driver (API Gateway proxy
events with moto's AWS; the ``workers`` runtime stand-ins), and a loopback uvicorn server around the driver
(tests/endpoints/drivers/loopback.py) turns each HTTP request into ``driver.request(...)`` and writes the
adapter's status, headers and body back. The upstream model server is the scripted loopback OpenAI server the
shared scenarios use. Bounded (``MAX_EXAMPLES`` per operation, a fixed seed) to keep each run to seconds.
The checks left out, and why, are in schemathesis.toml next to this file.

Running it showed that the Lambda counted a CORS preflight (``OPTIONS /execute``, 204) as an ExecuteError metric
(fixed, tested in tests/lambda/test_handler.py).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.endpoints.conftest import CLIENT_KEY, UPSTREAM_TOKEN
from tests.endpoints.drivers import DRIVER_MODULES, EndpointConfig
from tests.endpoints.drivers.loopback import DriverApp, LoopbackServer
from tests.support.openai_stub import MODEL_ID, ScriptedOpenAIServer

OPENAPI = Path(__file__).resolve().parents[2] / "core" / "openapi.json"
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"  # each left-out check, and why
MAX_EXAMPLES = 30
# A URL carries the path to a Worker percent-encoded; API Gateway's proxy event has it decoded.
RAW_PATH = {"lambda": False, "worker": True}


@pytest.fixture(params=["lambda", "worker"])
def adapter_url(request):
    """The adapter behind a loopback HTTP server, with the scripted upstream."""
    with ScriptedOpenAIServer(token=UPSTREAM_TOKEN) as upstream:
        config = EndpointConfig(upstream_url=upstream.base_url, upstream_token=UPSTREAM_TOKEN, client_key=CLIENT_KEY,
                                model=MODEL_ID, deadline_seconds=5.0, tool_mode="native")
        driver = importlib.import_module(DRIVER_MODULES[request.param]).make_driver(config)
        app = DriverApp(driver, raw_path=RAW_PATH[request.param])
        server = LoopbackServer(app)
        try:
            yield server.url, app
        finally:
            server.close()
            driver.close()


def test_the_adapter_conforms_to_the_contract(adapter_url, tmp_path):
    """``schemathesis run`` (its CLI, every check, positive and negative data, every phase) against the adapter."""
    url, app = adapter_url
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", str(OPENAPI),
        "--url", url, "--exclude-checks", "positive_data_acceptance,use_after_free",
        "--header", f"Authorization: Bearer {CLIENT_KEY}", "--checks", "all", "--mode", "all",
        "--max-examples", str(MAX_EXAMPLES), "--request-timeout", "15", "--seed", "1",
        "--generation-database", "none", "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    report = run.stdout + run.stderr
    assert not app.errors, app.errors[0]  # the adapter raised (a traceback the platform would turn into a 5xx)
    assert run.returncode == 0, report[-8000:]
    assert "No issues found" in report or "passed" in report, report[-3000:]
    assert CLIENT_KEY not in report.replace(f"Bearer {CLIENT_KEY}", "")  # only where we put it (the command echo)
