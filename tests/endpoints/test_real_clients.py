"""The clients people already use, unmodified, against every adapter: the official ``openai`` Python SDK, the
AI SDK 5's chat engine (the one ``useChat`` wraps) with its default transport, and the AI SDK's
OpenAI-compatible provider, the last two run by Node (tests/clients/ai_sdk.mjs; ``make clients`` installs
their pinned packages). Each test asserts what the client parsed: the text, tool parts with object outputs,
the error codes.

The hub is served by its own uvicorn. BOUNDARY: the Lambda and the Worker have no socket here (see
tests/endpoints/drivers/loopback.py), so each is put behind a loopback HTTP server that hands every request to
its driver; that server sends a streamed answer once it is written, as API Gateway does for the Lambda.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest

from tests.endpoints.conftest import CLIENT_KEY
from tests.endpoints.drivers.loopback import DriverApp, LoopbackServer
from tests.support.openai_stub import MODEL_ID, http_error, json_content, streamed_text, text, tool_call

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
SCRIPT = CLIENTS / "ai_sdk.mjs"
RAW_PATH = {"lambda": False, "worker": True}  # how each platform hands the path on (see test_schemathesis.py)


@pytest.fixture
def url(make_endpoint, driver_name) -> Iterator[str]:
    """The adapter's base URL, over real loopback HTTP: the hub, the Lambda and the Worker (the serverless bridge
    rows serve the same routes through the same core code, and pass no model through: test_openai_scenarios)."""
    if driver_name != "hub" and driver_name not in RAW_PATH:
        pytest.skip(f"{driver_name}: the real clients run against the hub, the Lambda and the Worker")
    driver: Any = make_endpoint()
    if driver_name == "hub":
        yield driver.server.url
        return
    app = DriverApp(driver, raw_path=RAW_PATH[driver_name])
    server = LoopbackServer(app)
    try:
        yield server.url
    finally:
        server.close()
    assert not app.errors, app.errors[0]


def node(scenario: str, base_url: str, text: str, model: str = "agent") -> dict[str, Any]:
    """Run one scenario of tests/clients/ai_sdk.mjs with Node; its JSON result."""
    if shutil.which("node") is None:
        pytest.fail("Node is not on PATH: the AI SDK clients need it (node v20 or later)")
    if not (CLIENTS / "node_modules" / "ai").is_dir():
        pytest.fail("the AI SDK packages are not installed: run `make clients` (npm ci in tests/clients)")
    run = subprocess.run(["node", str(SCRIPT), scenario, base_url, CLIENT_KEY, text, model],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------- the openai SDK


def openai_client(base_url: str) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=f"{base_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=30)


def test_openai_sdk_plain_and_streamed(url, openai_stub):
    client = openai_client(url)
    assert "agent" in [m.id for m in client.models.list()]
    openai_stub.enqueue(text("Five."), text("Five it is."))
    plain = client.chat.completions.create(model="agent", messages=[{"role": "user", "content": "What is 2 + 3?"}])
    assert plain.choices[0].message.content == "Five." and plain.choices[0].message.role == "assistant"
    stream = client.chat.completions.create(model="agent", messages=[{"role": "user", "content": "And 2 + 3?"}],
                                            stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "".join(pieces) == "Five it is."


def test_openai_sdk_errors_carry_the_code(url, openai_stub):
    import openai

    client = openai_client(url)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.code == "NOT_FOUND" and unknown.value.param == "model"
    with pytest.raises(openai.BadRequestError) as tools:
        client.chat.completions.create(model="agent", messages=[{"role": "user", "content": "hi"}],
                                       tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    assert tools.value.code == "INVALID_REQUEST" and tools.value.param == "tools"
    from openai import OpenAI

    with pytest.raises(openai.PermissionDeniedError) as wrong:
        OpenAI(base_url=f"{url}/v1", api_key="not-the-key", max_retries=0).models.list()
    assert wrong.value.code == "FORBIDDEN"
    openai_stub.enqueue(*[http_error(502, "bad gateway")] * 3)
    with pytest.raises(openai.APIError) as failed:  # a run that fails mid-stream: the SDK raises its error event
        list(client.chat.completions.create(model="agent", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "bad gateway" in str(failed.value) or "UPSTREAM_ERROR" in str(failed.value.body)


def test_openai_sdk_passes_through_to_a_model_behind_it(url, openai_stub):
    client = openai_client(url)
    assert MODEL_ID in [m.id for m in client.models.list()]
    openai_stub.enqueue(tool_call("get_weather", {"city": "Paris"}), streamed_text("Sunny."))
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    answer = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Paris?"}],
                                            tools=[weather])
    call = answer.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    stream = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Sky?"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Sunny."


# ------------------------------------------------------------------------------ the AI SDK (run by Node)


def parts_of(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    assistant = [m for m in result["messages"] if m["role"] == "assistant"]
    return [p for p in assistant[-1]["parts"] if p["type"] == kind or p["type"].startswith(kind)]


def test_use_chat_engine_with_its_default_body(url, openai_stub):
    openai_stub.enqueue(
        tool_call("analyze_sentiment", {"text": "I love it"}),
        *[json_content({"sentiment": "positive"})] * 5,  # the tool's own model calls (no logprobs: it votes)
        text("It is positive."),
        text("C'est positif."),
    )
    result = node("chat", url, "Is 'I love it' positive?\nSay it in French.")
    assert result.get("thrown") is None, result
    assert result["status"] == "ready" and result["error"] is None, result
    assert [m["role"] for m in result["messages"]] == ["user", "assistant", "user", "assistant"]
    first = [m for m in result["messages"] if m["role"] == "assistant"][0]
    tool = [p for p in first["parts"] if p["type"] == "tool-analyze_sentiment"]
    assert tool and tool[0]["state"] == "output-available"
    assert tool[0]["output"] == {"sentiment": "positive", "confidence": 1.0}  # an object, not a JSON string
    assert "".join(p["text"] for p in first["parts"] if p["type"] == "text") == "It is positive."
    second = parts_of(result, "text")
    assert "".join(p["text"] for p in second) == "C'est positif."
    assert result["messages"][-1]["metadata"] == {"success": True, "cached": False}
    # The second turn's run saw the first: useChat sent the whole conversation, with no mapping.
    assert "Is 'I love it' positive?" in json.dumps(openai_stub.chat_requests[-1]["messages"])


def test_use_chat_keeps_a_failed_runs_code(url, openai_stub):
    openai_stub.enqueue(*[http_error(502, "bad gateway")] * 3)
    result = node("chat", url, "hello")
    assert result["status"] == "error" and result["error"].startswith("UPSTREAM_ERROR: "), result
    assistant = result["messages"][-1]
    assert assistant["role"] == "assistant"
    assert assistant["metadata"] == {"success": False, "code": "UPSTREAM_ERROR"}  # kept on the message
    assert [p for p in assistant["parts"] if p["type"] == "step-start"] == []  # no empty step


def test_ai_sdk_openai_compatible_provider(url, openai_stub):
    openai_stub.enqueue(text("Five."), text("Five it is."))
    result = node("generate", url, "What is 2 + 3?")
    assert result.get("thrown") is None, result
    assert result["text"] == "Five." and result["finishReason"] == "stop"
    assert result["streamedText"] == "Five it is."
    openai_stub.enqueue(tool_call("get_weather", {"city": "Paris"}))
    tools = node("tools", url, "Weather in Paris?", MODEL_ID)
    assert tools.get("thrown") is None, tools
    assert tools["toolCalls"] == [{"toolName": "get_weather", "input": {"city": "Paris"}}]
    assert tools["finishReason"] == "tool-calls"
