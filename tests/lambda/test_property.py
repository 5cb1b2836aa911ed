"""Generated and malformed requests thrown at the handler: every answer is the contract's shape, no 5xx
but the documented upstream ones, and never a traceback."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from lmstudio_agent.endpoint.contract import ErrorResponse, ExecuteResponse, HealthResponse
from tests.endpoints.conftest import CLIENT_KEY
from tests.endpoints.drivers.lambda_driver import proxy_event, response_of
from tests.support.openai_stub import text

UPSTREAM_CODES = {"CONNECTION_FAILED", "UPSTREAM_ERROR", "UPSTREAM_TIMEOUT", "MODEL_OUTPUT_INVALID"}
TOOL_NAMES = ["extract_data", "analyze_sentiment", "store_invoice", "prompt_expert", "rm_rf", ""]
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
execute_like = st.fixed_dictionaries(
    {"instruction": st.one_of(st.text(max_size=300), st.integers(), st.none(), st.lists(st.text(max_size=5)))},
    optional={
        "tools": st.one_of(st.lists(st.sampled_from(TOOL_NAMES), max_size=4), st.text(max_size=8),
                           st.lists(st.text(max_size=80), max_size=3)),
        "model": st.one_of(st.none(), st.text(max_size=300), st.integers()),
        "temperature": st.floats(allow_nan=False),
    },
)
valid_execute = st.fixed_dictionaries(
    {"instruction": st.text(min_size=1, max_size=200).filter(str.strip)},
    optional={"tools": st.lists(st.sampled_from(TOOL_NAMES[:4]), max_size=3),
              "model": st.text(min_size=1, max_size=40)},
)
bodies = st.one_of(
    valid_execute.map(json.dumps),
    st.binary(max_size=400),
    st.text(max_size=400),
    json_values.map(json.dumps),
    execute_like.map(json.dumps),
    execute_like.map(lambda d: json.dumps(d)[:-1]),  # truncated JSON
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.sampled_from([f"Bearer {CLIENT_KEY}", f"bearer  {CLIENT_KEY} ", "Bearer wrong", "Bearer",
                                          "", "Basic dXNlcjpwYXNz"]),
        "X-Api-Key": st.sampled_from([CLIENT_KEY, "nope", ""]),
        "Cache-Control": st.sampled_from(["no-cache", "max-age=0", "no-store, no-cache", ""]),
        "Content-Type": st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
    },
)


def check(status: int, raw_body: str) -> None:
    event(f"HTTP {status}")
    assert "Traceback" not in raw_body and 'File "' not in raw_body
    if status == 204:
        return
    body = json.loads(raw_body)
    if status == 200:
        if "status" in body:
            HealthResponse.model_validate(body)
        else:
            ExecuteResponse.model_validate(body)
        return
    error = ErrorResponse.model_validate(body)
    assert error.code.http_status == status
    if status >= 500:
        assert error.code.value in UPSTREAM_CODES, body


@pytest.fixture
def fine_upstream(openai_stub):
    openai_stub.default = text("fine")
    return openai_stub


@SETTINGS
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
       path=st.sampled_from(["/execute", "/health", "/", "/execute/", "/health/", "/nope", "/execute/x"]),
       sent_headers=headers, body=st.none() | bodies, base64_body=st.booleans())
def test_generated_proxy_requests(handler, fine_upstream, method, path, sent_headers, body, base64_body):
    result = handler.invoke(proxy_event(method, path, headers=sent_headers, body=body, base64_body=base64_body))
    response = response_of(result)
    try:
        check(response.status, response.text)
    except (AssertionError, ValidationError, ValueError) as exc:
        raise AssertionError(f"{method} {path} {sent_headers} {body!r} -> {response.status} {response.text}") from exc


@SETTINGS
@given(sent_headers=headers, body=bodies, base64_body=st.booleans())
def test_generated_bodies_with_a_valid_key(handler, fine_upstream, sent_headers, body, base64_body):
    sent_headers = {**sent_headers, "X-Api-Key": CLIENT_KEY}
    sent_headers.pop("Authorization", None)
    result = handler.invoke(proxy_event("POST", "/execute", headers=sent_headers, body=body, base64_body=base64_body))
    response = response_of(result)
    try:
        check(response.status, response.text)
    except (AssertionError, ValidationError, ValueError) as exc:
        raise AssertionError(f"{sent_headers} {body!r} -> {response.status} {response.text}") from exc


@SETTINGS
@given(invoke_event=st.one_of(json_values, st.fixed_dictionaries({"body": st.one_of(bodies, json_values)},
                                                          optional={"isBase64Encoded": st.booleans(),
                                                                    "headers": st.one_of(headers, json_values)})))
def test_generated_direct_invokes(handler, fine_upstream, invoke_event):
    result = handler.invoke(invoke_event)
    assert set(result) == {"statusCode", "headers", "body"}
    try:
        check(result["statusCode"], result["body"])
    except (AssertionError, ValidationError, ValueError) as exc:
        raise AssertionError(f"{invoke_event!r} -> {result}") from exc
