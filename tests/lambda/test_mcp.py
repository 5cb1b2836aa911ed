"""The Lambda with MCP servers over streamable HTTP, configured by MCP_CONFIG_SECRET (an mcp.json held in
Secrets Manager, moto's here); a real FastMCP server on loopback. Stdio servers are refused."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the mcp extra (make core installs it)")

from tests.endpoints.conftest import CLIENT_KEY  # noqa: E402
from tests.mcp.conftest import HTTP_TOKEN, start_http_server, stdio_entry  # noqa: E402
from tests.support.openai_stub import text, tool_call  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
MCP_SECRET = "lmstudio-agent/mcp-config"


@pytest.fixture
def http_server():
    server = start_http_server("remote")
    yield server
    server.process.terminate()
    server.process.wait(10)
    server.process.stdout.close()


def lambda_with_mcp(make_lambda, mcp_json: dict, **overrides):
    driver = make_lambda(extra_env={"MCP_CONFIG_SECRET": MCP_SECRET}, **overrides)
    driver.aws.secrets.create_secret(Name=MCP_SECRET, SecretString=json.dumps(mcp_json))
    return driver


def test_the_lambda_reaches_an_http_mcp_tool_and_caches_by_its_annotations(make_lambda, openai_stub, http_server,
                                                                           capsys, powertools_logs):
    powertools_logs()
    driver = lambda_with_mcp(make_lambda, {"mcpServers": {"remote": http_server.entry(allowedTools=["forecast"])}},
                             allowed_tools=["forecast", "extract_data"])
    # The function's JSON logs, read from a buffer (Powertools' handlers keep the stream they were made with).
    logs = io.StringIO()
    handlers = list(logging.getLogger("lmstudio-agent").handlers)
    streams = [log_handler.stream for log_handler in handlers]
    for log_handler in handlers:  # assigned, not setStream: that would flush a stream an earlier test closed
        log_handler.stream = logs
    try:
        openai_stub.enqueue(tool_call("forecast", {"city": "Turin"}), text("Sunny in Turin."))
        body = json.dumps({"instruction": "Weather in Turin?", "tools": ["forecast"]})
        response = driver.request("POST", "/execute", headers=AUTH, body=body)
        assert response.status == 200, response.text
        assert response.json["result"][1] == {"type": "result", "tool": "forecast", "content": "Sunny and 21 C in Turin"}
        again = driver.request("POST", "/execute", headers=AUTH, body=body)
        assert again.json["cached"] is True  # readOnlyHint: cacheable
    finally:
        driver.module._run(driver.module._runtime.backend.aclose())
        for log_handler, stream in zip(handlers, streams, strict=True):
            log_handler.stream = stream
    assert "execute answered" in logs.getvalue() and HTTP_TOKEN not in logs.getvalue()


def test_stdio_servers_are_refused_as_misconfiguration(make_lambda, openai_stub):
    driver = lambda_with_mcp(make_lambda, {"mcpServers": {"local": stdio_entry()}})
    response = driver.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "hi"}))
    assert response.status == 500 and response.json["code"] == "INTERNAL_ERROR"
    assert "MCP configuration" in response.json["error"]


def test_an_unreachable_mcp_server_is_a_clean_500(make_lambda, openai_stub):
    driver = lambda_with_mcp(make_lambda, {"mcpServers": {"gone": {"url": "http://127.0.0.1:9/mcp"}}})
    response = driver.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "hi"}))
    assert response.status == 500 and response.json["code"] == "CONNECTION_FAILED"
    assert "MCP server 'gone'" in response.json["error"]


def test_an_artifact_without_the_mcp_sdk_says_so(make_lambda, openai_stub, monkeypatch):
    driver = lambda_with_mcp(make_lambda, {"mcpServers": {"remote": {"url": "http://127.0.0.1:9/mcp"}}})
    import lmstudio_agent.mcp

    sdk_side = ("mcp.", "lmstudio_agent.mcp.servers", "lmstudio_agent.mcp.server_connection")
    for name in [n for n in sys.modules if n == "mcp" or n.startswith(sdk_side)]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(lmstudio_agent.mcp, "servers", raising=False)
    monkeypatch.delattr(lmstudio_agent.mcp, "server_connection", raising=False)
    monkeypatch.setitem(sys.modules, "mcp", None)  # the default build (LAMBDA_MCP=0) carries no SDK
    response = driver.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "hi"}))
    assert response.status == 500 and response.json["code"] == "INTERNAL_ERROR"
    assert "not in this build" in response.json["error"]


LEAN_PROBE = """
import asyncio, importlib.abc, json, sys
LEFT_OUT = {"jwt", "cryptography", "cffi", "_cffi_backend", "multipart", "python_multipart"}

class Guard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in LEFT_OUT:
            raise ModuleNotFoundError(f"{name} is not in the artifact", name=name)

sys.meta_path.insert(0, Guard())
from lmstudio_agent.mcp import MCPServers

async def main():
    config = {"mcpServers": {"r": {"url": sys.argv[1], "headers": {"Authorization": "Bearer " + sys.argv[2]}}}}
    async with MCPServers(config, allow_stdio=False) as servers:
        return await servers.tools.get("add").call({"a": 20, "b": 22})

print(json.dumps(asyncio.run(main())))
"""


def test_the_lean_mcp_build_is_enough_for_a_client_session(http_server):
    """lambda/requirements-mcp.txt leaves PyJWT, cryptography, cffi and python-multipart out: a real session and
    call over streamable HTTP must work without them."""
    import subprocess

    proc = subprocess.run([sys.executable, "-c", LEAN_PROBE, http_server.url, HTTP_TOKEN], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "42"
    wanted = (ROOT / "lambda" / "requirements-mcp.txt").read_text()
    assert "mcp==1.30.0" in wanted and "cryptography" not in wanted.split("# tests/lambda")[-1].split("\n", 1)[-1]
