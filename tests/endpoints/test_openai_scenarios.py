"""The OpenAI-compatible face (``GET /v1/models``, ``POST /v1/chat/completions``), written once and run on
every adapter in DRIVER_MODULES, against the real loopback OpenAI-protocol upstream (``openai_stub``).

The agent model (``"agent"``) runs the loop on the deployment's tools on every adapter. A model behind the
deployment is passed through: by the Worker's and the Lambda's ``AgentBackend`` to its upstream, by the hub
over the bridge (``chat:forward``) to a connected agent that serves the model, which sends it to its own.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest

from lmstudio_agent.errors import ErrorCode
from tests.endpoints.conftest import CLIENT_KEY, UPSTREAM_TOKEN
from tests.endpoints.drivers import DriverResponse, EndpointDriver
from tests.support.openai_stub import MODEL_ID, http_error, streamed_text, text, tool_call

KEYED = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                                "required": ["city"]}}}


def completions(endpoint: EndpointDriver, payload: Any, *, key: Optional[str] = CLIENT_KEY,
                headers: Optional[dict[str, str]] = None, raw: Optional[str] = None) -> DriverResponse:
    sent = {"Content-Type": "application/json"}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    sent.update(headers or {})
    return endpoint.request("POST", "/v1/chat/completions", headers=sent, body=raw if raw is not None else json.dumps(payload))


def ask(content: str, model: str = "agent", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def assert_openai_error(response: DriverResponse, status: int, code: str, param: Optional[str] = None) -> None:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}, no trace, no secret."""
    assert response.status == status, response.text
    error = response.json["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["param"] == param
    assert isinstance(error["message"], str) and error["message"].strip()
    assert isinstance(error["type"], str) and error["type"]
    assert response.headers["content-type"].startswith("application/json")
    for leak in ("Traceback", CLIENT_KEY, UPSTREAM_TOKEN):
        assert leak not in response.text


def stream_text(events: list[Any]) -> str:
    chunks = [e for e in events if isinstance(e, dict)]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


# ------------------------------------------------------------------------------------------------- models


def needs_pass_through(endpoint) -> None:
    """The serverless bridge hubs relay agent tasks only: a model behind them is not passed through (the process
    hub's chat:forward frames are not relayed by the Worker's Durable Objects or the Lambda's WebSocket API)."""
    if endpoint.name.endswith("-bridge"):
        pytest.skip(f"{endpoint.name}: no model pass-through over the serverless bridge")


def test_models_lists_the_agent_and_the_models_behind_it(endpoint):
    needs_pass_through(endpoint)
    response = endpoint.request("GET", "/v1/models", headers=KEYED)
    assert response.status == 200, response.text
    assert response.json["object"] == "list"
    ids = [m["id"] for m in response.json["data"]]
    assert ids[0] == "agent"
    assert all(m["object"] == "model" and isinstance(m["owned_by"], str) for m in response.json["data"])
    assert MODEL_ID in ids


def test_the_key_is_asked_for_in_openais_shape(endpoint):
    assert_openai_error(endpoint.request("GET", "/v1/models"), 401, "UNAUTHORIZED")
    wrong = endpoint.request("GET", "/v1/models", headers={"Authorization": "Bearer nope"})
    assert_openai_error(wrong, 403, "FORBIDDEN")
    assert_openai_error(completions(endpoint, ask("hi"), key=None), 401, "UNAUTHORIZED")
    assert_openai_error(endpoint.request("GET", "/v1/nothing", headers=KEYED), 404, "NOT_FOUND")
    assert_openai_error(endpoint.request("GET", "/v1/chat/completions", headers=KEYED), 405, "METHOD_NOT_ALLOWED")


# -------------------------------------------------------------------------------------------------- agent


def test_the_agent_answers_as_one_assistant_message(endpoint, openai_stub):
    openai_stub.enqueue(text("Five."))
    response = completions(endpoint, ask("What is 2 + 3?"))
    assert response.status == 200, response.text
    body = response.json
    assert body["object"] == "chat.completion" and body["model"] == "agent"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Five."}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "What is 2 + 3?" in json.dumps(openai_stub.chat_requests[0]["messages"])


def test_the_agent_runs_the_deployments_tools(endpoint, openai_stub):
    expert = {"description_of_expert": "a vet", "prompt": "Are cats good pets?"}
    openai_stub.enqueue(tool_call("prompt_expert", expert), text("Yes."), tool_call("terminate", {"message": "They are."}))
    response = completions(endpoint, ask("Ask a vet whether cats are good pets"), headers={"Cache-Control": "no-cache"})
    assert response.status == 200, response.text
    assert response.json["choices"][0]["message"]["content"] == "They are."
    offered = [t["function"]["name"] for t in openai_stub.chat_requests[0]["tools"]]
    assert "prompt_expert" in offered


def test_the_agent_streams_openai_chunks(endpoint, openai_stub):
    if not hasattr(endpoint, "stream"):
        pytest.skip(f"{endpoint.name} does not stream")
    openai_stub.enqueue(text("Five it is."))
    result = endpoint.stream("POST", "/v1/chat/completions", headers=KEYED, body=json.dumps(ask("2 + 3?", stream=True)))
    assert result.status == 200, result.text
    assert result.headers["content-type"].startswith("text/event-stream")
    assert "x-vercel-ai-ui-message-stream" not in result.headers
    assert result.events[-1] == "[DONE]"
    chunks = [e for e in result.events if isinstance(e, dict)]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert stream_text(result.events) == "Five it is."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_failed_streamed_run_sends_an_openai_error_event(endpoint, openai_stub):
    if not hasattr(endpoint, "stream"):
        pytest.skip(f"{endpoint.name} does not stream")
    openai_stub.enqueue(*[http_error(502, "bad gateway")] * 3)
    result = endpoint.stream("POST", "/v1/chat/completions", headers=KEYED, body=json.dumps(ask("hi", stream=True)))
    assert result.status == 200 and result.events[-1] == "[DONE]"
    errors = [e["error"] for e in result.events if isinstance(e, dict) and "error" in e]
    assert len(errors) == 1 and errors[0]["code"] == "UPSTREAM_ERROR" and errors[0]["type"] == "server_error"


def test_the_agents_answer_is_cached_by_the_contracts_rules(make_endpoint, openai_stub):
    endpoint = make_endpoint(allowed_tools=["analyze_sentiment"])  # no side-effect tool on the allow-list
    openai_stub.enqueue(text("Cats make great pets."))
    first = completions(endpoint, ask("Summarise: cats are great pets"))
    second = completions(endpoint, ask("Summarise: cats are great pets"))
    assert first.status == second.status == 200, second.text
    assert second.json["choices"][0]["message"]["content"] == "Cats make great pets."
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert len(openai_stub.chat_requests) == 1
    openai_stub.enqueue(text("Fresh."))
    fresh = completions(endpoint, ask("Summarise: cats are great pets"), headers={"Cache-Control": "no-cache"})
    assert fresh.json["choices"][0]["message"]["content"] == "Fresh."


def test_bad_input_is_a_4xx_in_openais_shape(endpoint, openai_stub):
    tools = completions(endpoint, ask("hi", tools=[WEATHER_TOOL]))
    assert_openai_error(tools, 400, "INVALID_REQUEST", "tools")
    unknown = completions(endpoint, ask("hi", model="no-such-model"))
    assert_openai_error(unknown, 404, "NOT_FOUND", "model")
    assert_openai_error(completions(endpoint, None, raw="x" * 70_000), 413, "PAYLOAD_TOO_LARGE")
    assert_openai_error(completions(endpoint, None, raw="{not json"), 400, "INVALID_REQUEST")
    assert_openai_error(completions(endpoint, {"model": "agent", "messages": []}), 400, "INVALID_REQUEST")
    assistant_last = {"model": "agent", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    assert_openai_error(completions(endpoint, assistant_last), 400, "INVALID_INSTRUCTION")
    assert openai_stub.chat_requests == []


# -------------------------------------------------------------------------------------- a model behind it


def test_a_model_behind_it_passes_through_with_tool_calls(endpoint, openai_stub):
    needs_pass_through(endpoint)
    openai_stub.enqueue(tool_call("get_weather", {"city": "Paris"}))
    payload = ask("Weather in Paris?", model=MODEL_ID, tools=[WEATHER_TOOL], temperature=0.2)
    response = completions(endpoint, payload)
    assert response.status == 200, response.text
    call = response.json["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    sent = openai_stub.chat_requests[0]
    assert sent["tools"] == [WEATHER_TOOL] and sent["model"] == MODEL_ID and sent["temperature"] == 0.2
    # Cached as the contract says: the same body again is answered from the cache, a fresh one goes upstream.
    again = completions(endpoint, payload)
    assert again.json == response.json and again.headers["x-cache"] == "HIT"
    assert len(openai_stub.chat_requests) == 1
    openai_stub.enqueue(text("Sunny."))
    fresh = completions(endpoint, payload, headers={"Cache-Control": "no-cache"})
    assert fresh.json["choices"][0]["message"]["content"] == "Sunny."


def test_a_model_behind_it_streams_through(endpoint, openai_stub):
    needs_pass_through(endpoint)
    if not hasattr(endpoint, "stream"):
        pytest.skip(f"{endpoint.name} does not stream")
    openai_stub.enqueue(streamed_text("Sunny all day."))
    result = endpoint.stream("POST", "/v1/chat/completions", headers=KEYED,
                             body=json.dumps(ask("Weather?", model=MODEL_ID, stream=True)))
    assert result.status == 200, result.text
    assert result.events[-1] == "[DONE]"
    assert stream_text(result.events) == "Sunny all day."
    assert openai_stub.chat_requests[0]["stream"] is True


def test_an_upstream_refusal_passes_as_an_openai_error(endpoint, openai_stub):
    needs_pass_through(endpoint)
    openai_stub.enqueue(*[http_error(503, "overloaded")] * 3)
    response = completions(endpoint, ask("hi", model=MODEL_ID), headers={"Cache-Control": "no-cache"})
    assert_openai_error(response, ErrorCode.UPSTREAM_ERROR.http_status, "UPSTREAM_ERROR")  # the contract's status
