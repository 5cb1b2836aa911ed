"""The Lambda with MCP servers over streamable HTTP, configured by MCP_CONFIG_SECRET (an mcp.json held in
Secrets Manager, moto's here); a real FastMCP server on loopback. Stdio servers are refused."""

from __future__ import annotations

import json
import logging
import sys

import pytest

pytest.importorskip("mcp", reason="the mcp extra (make core installs it)")

from tests.endpoints.conftest import CLIENT_KEY  # noqa: E402
from tests.mcp.conftest import HTTP_TOKEN, start_http_server, stdio_entry  # noqa: E402
from tests.support.openai_stub import text, tool_call  # noqa: E402

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
                                                                           capsys):
    for log_handler in logging.getLogger("lmstudio-agent").handlers:
        log_handler.setStream(sys.stdout)
    driver = lambda_with_mcp(make_lambda, {"mcpServers": {"remote": http_server.entry(allowedTools=["forecast"])}},
                             allowed_tools=["forecast", "extract_data"])
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
    assert HTTP_TOKEN not in capsys.readouterr().out


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
