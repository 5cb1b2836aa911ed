"""The endpoint contract, written once and run against every adapter in DRIVER_MODULES.

Each adapter stands against the real loopback OpenAI-protocol server (``openai_stub``), which requires the
LM Studio token, so every success also proves the adapter carried it upstream.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import pytest

from tests.endpoints.conftest import CLIENT_KEY, UPSTREAM_TOKEN
from tests.endpoints.drivers import DriverResponse, EndpointDriver
from tests.support.openai_stub import garbage, http_error, json_content, text, tool_call

OK = {"instruction": "What is 2 + 3?", "tools": []}
CACHEABLE = {"instruction": "Summarise: cats are great pets", "tools": ["analyze_sentiment"]}


def execute(
    endpoint: EndpointDriver,
    payload: Any = None,
    *,
    key: Optional[str] = CLIENT_KEY,
    headers: Optional[dict[str, str]] = None,
    raw: Optional[str] = None,
) -> DriverResponse:
    sent = {"Content-Type": "application/json"}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    sent.update(headers or {})
    body = raw if raw is not None else json.dumps(payload)
    return endpoint.request("POST", "/execute", headers=sent, body=body)


def assert_clean(response: DriverResponse) -> None:
    """No stack trace and no secret ever reaches a client."""
    for leak in ("Traceback", 'File "', CLIENT_KEY, UPSTREAM_TOKEN):
        assert leak not in response.text, f"{leak!r} in the body: {response.text[:300]}"
        assert all(leak not in v for v in response.headers.values())


def assert_error(response: DriverResponse, status: int, code: str) -> None:
    assert response.status == status, response.text
    assert response.json["success"] is False
    assert response.json["code"] == code
    assert isinstance(response.json["error"], str) and response.json["error"].strip()
    assert response.headers["content-type"].startswith("application/json")
    assert_clean(response)


def chat_calls(stub) -> int:
    return len(stub.chat_requests)


# ------------------------------------------------------------------------------------------- health, routes


def test_health_is_open_and_well_formed(endpoint):
    before = int(time.time() * 1000)
    response = endpoint.request("GET", "/health")
    assert response.status == 200
    assert response.json["status"] == "healthy"
    assert before - 5000 <= response.json["timestamp"] <= int(time.time() * 1000) + 5000
    assert_clean(response)


def test_health_ignores_a_wrong_key(endpoint):
    assert endpoint.request("GET", "/health", headers={"Authorization": "Bearer nope"}).status == 200


def test_unknown_route_is_404(endpoint):
    assert_error(endpoint.request("GET", "/nope"), 404, "NOT_FOUND")


def test_wrong_method_is_405(endpoint):
    assert_error(endpoint.request("GET", "/execute"), 405, "METHOD_NOT_ALLOWED")


# -------------------------------------------------------------------------------------------------- success


def test_success_runs_the_agent_and_carries_the_upstream_token(endpoint, openai_stub):
    openai_stub.enqueue(text("2 + 3 = 5."))
    response = execute(endpoint, OK)
    assert response.status == 200, response.text
    assert response.json["success"] is True
    assert response.json["cached"] is False
    assert response.json["result"][-1] == {"type": "result", "content": "2 + 3 = 5."}
    assert response.headers["access-control-allow-origin"] == "*"
    assert_clean(response)
    upstream = openai_stub.requests[-1]
    assert upstream["headers"]["Authorization"] == f"Bearer {UPSTREAM_TOKEN}"
    assert upstream["body"]["messages"][-1] == {"role": "user", "content": OK["instruction"]}


def test_x_api_key_header_is_accepted(endpoint, openai_stub):
    openai_stub.enqueue(text("fine"))
    assert execute(endpoint, OK, key=None, headers={"X-Api-Key": CLIENT_KEY}).status == 200


def test_tool_calls_run_server_side(endpoint, openai_stub):
    openai_stub.enqueue(tool_call("terminate", {"message": "The total is 5."}))
    response = execute(endpoint, {"instruction": "Add 2 and 3, then finish.", "tools": []})
    assert response.status == 200, response.text
    kinds = [(m["type"], m.get("tool")) for m in response.json["result"]]
    assert ("action", "terminate") in kinds
    assert response.json["result"][-1]["content"] == "The total is 5."


# ---------------------------------------------------------------------------------------------------- cache


def test_cache_miss_then_hit(endpoint, openai_stub):
    openai_stub.enqueue(text("Positive about cats."))
    first = execute(endpoint, CACHEABLE)
    assert first.status == 200 and first.json["cached"] is False
    assert endpoint.cache_entries() == 1
    second = execute(endpoint, CACHEABLE)
    assert second.status == 200 and second.json["cached"] is True
    assert second.json["result"] == first.json["result"]
    assert chat_calls(openai_stub) == 1  # the hit never reached the model
    # The key is the normalised request: white space and tool order do not matter.
    third = execute(endpoint, {**CACHEABLE, "instruction": "  Summarise:   cats are great pets "})
    assert third.json["cached"] is True


def test_cache_is_keyed_by_model_and_tools(endpoint, openai_stub):
    openai_stub.enqueue(text("a"), text("b"), text("c"))
    execute(endpoint, CACHEABLE)
    assert execute(endpoint, {**CACHEABLE, "model": "another-model"}).json["cached"] is False
    assert execute(endpoint, {**CACHEABLE, "tools": ["extract_data"]}).json["cached"] is False
    assert chat_calls(openai_stub) == 3


def test_no_cache_header_skips_the_cache(endpoint, openai_stub):
    openai_stub.enqueue(text("first"), text("second"))
    execute(endpoint, CACHEABLE)
    fresh = execute(endpoint, CACHEABLE, headers={"Cache-Control": "no-cache"})
    assert fresh.status == 200 and fresh.json["cached"] is False
    assert fresh.json["result"][-1]["content"] == "second"
    assert chat_calls(openai_stub) == 2


def test_side_effect_tools_are_never_cached(endpoint, openai_stub):
    payload = {"instruction": "Store this invoice: #1, 10 EUR", "tools": ["store_invoice"]}
    openai_stub.enqueue(text("Not stored."), text("Not stored again."))
    assert execute(endpoint, payload).json["cached"] is False
    assert execute(endpoint, payload).json["cached"] is False
    assert endpoint.cache_entries() == 0
    assert chat_calls(openai_stub) == 2


def test_failures_are_not_cached(endpoint, openai_stub):
    openai_stub.default = http_error(400, "bad request")
    assert execute(endpoint, CACHEABLE).status == 500
    openai_stub.default = text("now it works")
    response = execute(endpoint, CACHEABLE)
    assert response.status == 200 and response.json["cached"] is False


# ------------------------------------------------------------------------------------------- client errors

CLIENT_ERRORS = [
    pytest.param({"payload": OK, "key": None}, 401, "UNAUTHORIZED", id="missing-key"),
    pytest.param({"payload": OK, "key": "not-the-key"}, 403, "FORBIDDEN", id="invalid-key"),
    pytest.param({"payload": OK, "key": None, "headers": {"Authorization": "Basic abc"}}, 401, "UNAUTHORIZED",
                 id="non-bearer-auth"),
    pytest.param({"raw": "{not json"}, 400, "INVALID_REQUEST", id="malformed-json"),
    pytest.param({"raw": ""}, 400, "INVALID_REQUEST", id="empty-body"),
    pytest.param({"raw": "[1, 2]"}, 400, "INVALID_REQUEST", id="body-not-object"),
    pytest.param({"payload": {"tools": []}}, 400, "INVALID_INSTRUCTION", id="missing-instruction"),
    pytest.param({"payload": {"instruction": "   "}}, 400, "INVALID_INSTRUCTION", id="blank-instruction"),
    pytest.param({"payload": {"instruction": 42}}, 400, "INVALID_INSTRUCTION", id="instruction-not-string"),
    pytest.param({"payload": {"instruction": "x", "temperature": 2}}, 400, "INVALID_REQUEST", id="unknown-field"),
    pytest.param({"payload": {"instruction": "x", "tools": "extract_data"}}, 400, "INVALID_REQUEST",
                 id="tools-not-list"),
    pytest.param({"payload": {"instruction": "x", "tools": ["rm_rf"]}}, 400, "UNKNOWN_TOOL", id="unknown-tool"),
    pytest.param({"payload": {"instruction": "x" * (70 * 1024)}}, 413, "PAYLOAD_TOO_LARGE", id="oversized-body"),
    pytest.param({"payload": {"instruction": "x", "documents": ["a"]}}, 400, "INVALID_REQUEST", id="documents-not-object"),
    pytest.param({"payload": {"instruction": "x", "documents": {"bad name!": "a"}}}, 400, "INVALID_REQUEST",
                 id="document-bad-name"),
    pytest.param({"payload": {"instruction": "x", "documents": {"a": 42}}}, 400, "INVALID_REQUEST",
                 id="document-not-string"),
    pytest.param({"payload": {"instruction": "x", "documents": {f"d{i}": "a" for i in range(9)}}}, 400,
                 "INVALID_REQUEST", id="too-many-documents"),
    pytest.param({"payload": {"instruction": "x", "documents": {"a": "y" * 60_001}}}, 400, "INVALID_REQUEST",
                 id="document-too-long"),
]


@pytest.mark.parametrize("request_kwargs, status, code", CLIENT_ERRORS)
def test_client_errors(endpoint, openai_stub, request_kwargs, status, code):
    assert_error(execute(endpoint, **request_kwargs), status, code)
    assert chat_calls(openai_stub) == 0  # refused before any model call


def test_auth_is_checked_before_the_body(endpoint):
    assert_error(execute(endpoint, raw="{not json", key=None), 401, "UNAUTHORIZED")


# ----------------------------------------------------------------------------------------- upstream errors


def test_upstream_down(make_endpoint, dead_upstream_url):
    endpoint = make_endpoint(upstream_url=dead_upstream_url)
    assert_error(execute(endpoint, OK), 500, "CONNECTION_FAILED")


def test_upstream_slow_hits_the_deadline(make_endpoint, openai_stub):
    endpoint = make_endpoint(deadline_seconds=1.0)
    openai_stub.default = text("too late", delay=8.0)
    started = time.monotonic()
    response = execute(endpoint, OK)
    assert_error(response, 504, "UPSTREAM_TIMEOUT")
    # Answered at the deadline, long before the model would have: the run did not wait for it.
    assert time.monotonic() - started < 6.0


def test_upstream_5xx(endpoint, openai_stub):
    openai_stub.default = http_error(503, "model crashed")
    assert_error(execute(endpoint, OK), 500, "UPSTREAM_ERROR")


def test_upstream_garbage(endpoint, openai_stub):
    openai_stub.default = garbage()
    assert_error(execute(endpoint, OK), 500, "UPSTREAM_ERROR")


def test_upstream_rejects_a_wrong_token(make_endpoint):
    endpoint = make_endpoint(upstream_token="sk-lm-wrong")
    assert_error(execute(endpoint, OK), 500, "UPSTREAM_ERROR")


# ------------------------------------------------------------------------------------ documents by reference

NOTE = "Ada Lovelace wrote the first program for the Analytical Engine in 1843. " * 4


def test_a_document_reaches_the_tool_by_reference(endpoint, openai_stub):
    openai_stub.enqueue(tool_call("extract_data", {"text": "@doc:note", "schema": {"name": "string"}}),
                        json_content({"name": "Ada Lovelace"}), text("The note is about Ada Lovelace."))
    payload = {"instruction": "Who is the note about?", "tools": ["extract_data"], "documents": {"note": NOTE}}
    response = execute(endpoint, payload)
    assert response.status == 200, response.text
    assert response.json["success"] is True
    result = response.json["result"]
    assert result[0] == {"type": "action", "tool": "extract_data", "args": {"text": "@doc:note", "schema": {"name": "string"}}}
    assert result[1]["tool"] == "extract_data" and "Ada Lovelace" in result[1]["content"]
    assert result[-1] == {"type": "result", "content": "The note is about Ada Lovelace."}
    first, extraction = openai_stub.chat_requests[0], openai_stub.chat_requests[1]
    # The model was told about the document and how to pass it, not given its text ...
    assert NOTE not in json.dumps(first["messages"])
    assert '"@doc:note"' in first["messages"][0]["content"]
    # ... and the tool received the full text.
    assert NOTE.strip() in extraction["messages"][-1]["content"]


def test_documents_are_part_of_the_cache_key(endpoint, openai_stub):
    openai_stub.enqueue(text("first"), text("second"), text("third"))
    payload = {**CACHEABLE, "documents": {"note": "one"}}
    assert execute(endpoint, payload).json["cached"] is False
    assert execute(endpoint, {**payload, "documents": {"note": "two"}}).json["cached"] is False
    assert execute(endpoint, CACHEABLE).json["cached"] is False
    assert execute(endpoint, payload).json["cached"] is True
    assert chat_calls(openai_stub) == 3


def test_unknown_document_is_a_tool_error_and_the_run_has_no_answer(endpoint, openai_stub):
    openai_stub.enqueue(tool_call("extract_data", {"text": "@doc:missing", "schema": {"name": "string"}}),
                        text("I could not read it."))
    payload = {"instruction": "Who is the note about?", "tools": ["extract_data"], "documents": {"note": NOTE}}
    response = execute(endpoint, payload)
    assert_error(response, 422, "NO_ANSWER")
    errors = [m for m in response.json["result"] if m["type"] == "error"]
    assert errors[0]["code"] == "TOOL_EXECUTION_FAILED" and "Unknown document '@doc:missing'" in errors[0]["content"]
    assert "@doc:note" in errors[0]["content"]  # the message names the documents the run has
    # The error went back to the model.
    assert "Unknown document" in json.dumps(openai_stub.chat_requests[1]["messages"][-1])


# ---------------------------------------------------------------------------------------- honest outcomes


def test_a_run_without_an_answer_is_not_a_success_and_never_cached(endpoint, openai_stub):
    # Every round asks for a tool that fails; the last round's reply is a call, not words.
    openai_stub.default = tool_call("extract_data", {"text": "x", "schema": {}})
    payload = {"instruction": "Extract the data from: x", "tools": ["extract_data"]}
    response = execute(endpoint, payload)
    assert_error(response, 422, "NO_ANSWER")
    assert response.json["result"][-1]["code"] == "NO_ANSWER"
    assert endpoint.cache_entries() == 0
    openai_stub.default = text("There is nothing to extract.")
    again = execute(endpoint, payload)
    assert again.status == 200 and again.json["cached"] is False and again.json["success"] is True
