"""The contract's and the bridge's parsers under hostile input, the deadline's backstop, and the few rules a
deliberate bug would otherwise slip past (nested constrained objects closed, methods case-sensitive).

The property tests (hypothesis) feed arbitrary bytes, text and JSON to ``parse_execute_request``,
``handle_execute`` and ``parse_frame``: the answer is always an error in the contract's shape (or a valid
request), never another exception, never a 5xx, and always encodable.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmstudio_agent.bridge.protocol import error_frame, parse_frame
from lmstudio_agent.model.grammar_bounds import bounded
from lmstudio_agent.model.smallmodel import call_schema
from lmstudio_agent.endpoint.contract import (
    ExecuteOptions, HttpResponse, ToolSelection, handle_execute, handle_request, header_map, parse_execute_request,
)
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.jsonsafe import MAX_JSON_DEPTH, check, loads
from lmstudio_agent.agent.messages import AgentMessage
from lmstudio_agent.model.schema import validate
from lmstudio_agent.agent.tools import Tool

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


class EchoBackend:
    """A backend that answers at once (the fuzz checks the parsing, not the agent)."""

    default_model = "m"

    def cache_scope(self) -> str:
        return "test"

    def select_tools(self, names: list[str]) -> ToolSelection:
        unknown = [n for n in names if n != "known"]
        if unknown:
            raise AgentError(ErrorCode.UNKNOWN_TOOL, f"Unknown tool(s): {', '.join(unknown)}")
        return ToolSelection(tuple(names), False)

    async def run(self, instruction, tools, model, deadline):
        return [AgentMessage(type="result", content=instruction)]


def _check_response(response: HttpResponse) -> None:
    assert response.status < 500, response.body
    response.json().encode("utf-8")  # always writable
    if response.status != 200:
        assert response.body["success"] is False and ErrorCode(response.body["code"])


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes_get_the_contracts_answer(raw):
    _check_response(asyncio.run(handle_execute(raw, {}, EchoBackend())))


@FUZZ
@given(st.text(max_size=256))
def test_arbitrary_text_gets_the_contracts_answer(raw):  # text() may hold lone surrogates: an event's str body
    _check_response(asyncio.run(handle_execute(raw, {}, EchoBackend())))


@FUZZ
@given(json_values)
def test_arbitrary_json_gets_the_contracts_answer(value):
    _check_response(asyncio.run(handle_execute(json.dumps(value), {}, EchoBackend())))


@FUZZ
@given(st.fixed_dictionaries({"instruction": st.text(max_size=64)},
                             optional={"tools": st.lists(st.text(max_size=70), max_size=3), "model": st.text(max_size=8)}))
def test_request_shaped_json_gets_the_contracts_answer(value):
    _check_response(asyncio.run(handle_execute(json.dumps(value), {}, EchoBackend())))


@FUZZ
@given(st.binary(max_size=512) | st.text(max_size=256).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_arbitrary_frames_are_parsed_or_refused_with_an_agent_error(raw):
    for frame in (raw, raw.decode("utf-8", "replace")):
        try:
            parse_frame(frame)
        except AgentError as exc:
            assert exc.code in (ErrorCode.INVALID_REQUEST, ErrorCode.PAYLOAD_TOO_LARGE)
            error_frame(exc.code, exc.message, task_id=exc.details.get("task_id"),
                        message_type=exc.details.get("type")).encode("utf-8")


@FUZZ
@given(st.sampled_from(["agent:register", "task:result", "heartbeat", "x"]), json_values)
def test_frame_shaped_json_is_parsed_or_refused_with_an_agent_error(kind, data):
    try:
        parse_frame(json.dumps({"type": kind, "data": data}))
    except AgentError as exc:
        error_frame(exc.code, exc.message, task_id=exc.details.get("task_id"),
                    message_type=exc.details.get("type")).encode("utf-8")


# --------------------------------------------------------------------------------------- the parser itself


@pytest.mark.parametrize("raw", ["[" * 100_000 + "]" * 100_000, '{"a":' * 3000 + "1" + "}" * 3000,
                                 "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)])
def test_deep_json_is_an_invalid_request(raw):
    with pytest.raises(AgentError) as info:
        loads(raw)
    assert info.value.code is ErrorCode.INVALID_REQUEST and "nested too deeply" in info.value.message


def test_depth_at_the_limit_is_fine_and_check_is_iterative():
    assert loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    deep: list = []
    for _ in range(100_000):  # deeper than the interpreter's recursion limit: check() must not recurse
        deep = [deep]
    with pytest.raises(AgentError, match="nested too deeply"):
        check(deep)


def test_a_lone_surrogate_anywhere_is_refused_without_echoing_it():
    for raw in ['{"a": "\\ud800"}', '{"\\udc00": 1}', '["ok", {"b": ["\\udfff"]}]', '"\\ud83d"']:
        with pytest.raises(AgentError) as info:
            loads(raw)
        assert "not valid Unicode" in info.value.message
        info.value.message.encode("utf-8")
    assert loads('"\\ud83d\\ude00"') == "\U0001F600"  # a proper pair is a character, and fine


def test_a_str_body_holding_a_surrogate_is_an_invalid_request():
    with pytest.raises(AgentError) as info:
        parse_execute_request('{"instruction": "\udc00"}')
    assert info.value.code is ErrorCode.INVALID_REQUEST


def test_the_response_is_always_encodable():
    response = HttpResponse(400, {"error": "tool \udc00"})
    assert "\\udc00" in response.json()  # escaped, not a crash


# ------------------------------------------------------------------------------------- routing and headers


async def test_methods_are_case_sensitive():
    for method in ("post", "Post", "get"):
        path = "/execute" if method.lower() == "post" else "/health"
        response = await handle_request(method, path, {}, b"{}", backend=EchoBackend(), api_key="k" * 16)
        assert response.status == 405 and response.body["code"] == "METHOD_NOT_ALLOWED"


def test_header_map_joins_repeats():
    assert header_map([("A", "1"), ("a", "2"), ("B", "3")]) == {"a": "1, 2", "b": "3"}


# ---------------------------------------------------------------------------------------------- deadline


class DeafBackend(EchoBackend):
    """Ignores the deadline it is given: only the contract's backstop can end it."""

    async def run(self, instruction, tools, model, deadline):
        await asyncio.sleep(30)
        return []


async def test_the_backstop_ends_a_backend_that_ignores_the_deadline():
    started = time.monotonic()
    response = await handle_execute(json.dumps({"instruction": "x"}), {}, DeafBackend(),
                                    options=ExecuteOptions(deadline_seconds=0.5))
    elapsed = time.monotonic() - started
    assert response.status == 504 and response.body["code"] == "UPSTREAM_TIMEOUT"
    assert elapsed < 5.0  # the deadline plus the backstop's second, not the backend's 30 s


# ------------------------------------------------------------------------------------ constrained schemas


NESTED = {
    "type": "object",
    "properties": {
        "customer": {"type": "object", "properties": {"name": {"type": "string"},
                                                       "address": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}},
        "either": {"anyOf": [{"type": "object", "properties": {"x": {"type": "integer"}}}, {"type": "string"}]},
    },
}


def test_every_nested_object_of_a_constrained_schema_is_closed():
    closed = bounded(NESTED)
    assert closed["additionalProperties"] is False
    customer = closed["properties"]["customer"]
    assert customer["additionalProperties"] is False
    assert customer["properties"]["address"]["additionalProperties"] is False
    assert closed["properties"]["lines"]["items"]["additionalProperties"] is False
    assert closed["properties"]["either"]["anyOf"][0]["additionalProperties"] is False
    extra = {"customer": {"name": "A", "address": {"city": "B", "zip": "1"}}, "lines": [{"sku": "s", "qty": 2}]}
    errors = validate(extra, closed)
    assert any("zip" in e for e in errors) and any("qty" in e for e in errors), errors


def test_a_constrained_call_cannot_carry_a_nested_extra_key():
    async def order(customer: dict, lines: list, either: object = None) -> str:
        return "ok"

    tool = Tool(name="order", description="Place an order.", parameters=NESTED, function=order)
    schema = call_schema([tool], answer=False)  # the one call branch, without the answer branch
    arguments = schema["properties"]["arguments"]
    assert arguments["properties"]["customer"]["properties"]["address"]["additionalProperties"] is False
