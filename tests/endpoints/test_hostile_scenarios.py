"""Hostile input and the promises that a deliberate bug would break, run against every adapter (the Lambda,
the Worker, the bridge hub) like the rest of the shared contract scenarios.

Each scenario names what it guards: a deep or non-Unicode body is a 400 in the contract's shape (never a
5xx, never an echo that cannot be encoded), near-miss keys and a credential sent twice are refused, a
deployment without a key refuses a real one with exactly 403, and the cache and allow-list rules hold.
"""

from __future__ import annotations

import json

import pytest

from tests.endpoints.conftest import CLIENT_KEY
from tests.endpoints.test_contract_scenarios import CACHEABLE, OK, assert_error, chat_calls, execute
from tests.support.openai_stub import text

# ------------------------------------------------------------------------------------------ hostile bodies

DEEP = "[" * 10_000 + "]" * 10_000
HOSTILE_BODIES = [
    pytest.param(DEEP, "nested too deeply", id="deep-array"),
    pytest.param('{"instruction": "x", "tools": ' + "[" * 200 + "]" * 200 + "}", "nested too deeply", id="deep-field"),
    pytest.param('{"instruction": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}", "nested too deeply", id="deep-object"),
    pytest.param('{"instruction": "x", "tools": ["\\udc00"]}', "not valid Unicode", id="surrogate-tool-name"),
    pytest.param('{"instruction": "x\\ud800y"}', "not valid Unicode", id="surrogate-instruction"),
    pytest.param('{"instruction": "x", "model": "\\udfff"}', "not valid Unicode", id="surrogate-model"),
    pytest.param('{"instruction": "x", "\\ud83d": 1}', "not valid Unicode", id="surrogate-key"),
    pytest.param(b'{"instruction": "caf\xe9 au lait"}', "not valid UTF-8", id="invalid-utf8"),
    pytest.param(b'{"instruction": "\xed\xa0\x80"}', "not valid", id="utf8-encoded-surrogate"),
]


@pytest.mark.parametrize("raw, fragment", HOSTILE_BODIES)
def test_hostile_bodies_are_a_400_in_the_contracts_shape(endpoint, openai_stub, raw, fragment):
    sent = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}
    response = endpoint.request("POST", "/execute", headers=sent, body=raw)
    assert_error(response, 400, "INVALID_REQUEST")
    assert fragment in response.json["error"]
    response.text.encode("utf-8")  # the answer itself is valid Unicode
    assert chat_calls(openai_stub) == 0


# ------------------------------------------------------------------------------------------------- keys

NEAR_MISSES = [
    pytest.param({"Authorization": f"Bearer {CLIENT_KEY[:8]}"}, 403, "FORBIDDEN", id="prefix"),
    pytest.param({"Authorization": f"Bearer {CLIENT_KEY[:-1]}"}, 403, "FORBIDDEN", id="key-minus-one-char"),
    pytest.param({"Authorization": f"Bearer {CLIENT_KEY}0"}, 403, "FORBIDDEN", id="key-plus-one-char"),
    pytest.param({"Authorization": f"Bearer {CLIENT_KEY.upper()}"}, 403, "FORBIDDEN", id="key-other-case"),
    pytest.param({"X-Api-Key": CLIENT_KEY[:-1]}, 403, "FORBIDDEN", id="x-api-key-minus-one-char"),
    pytest.param({"Authorization": "Bearer"}, 401, "UNAUTHORIZED", id="empty-bearer"),
    pytest.param({"X-Api-Key": ""}, 401, "UNAUTHORIZED", id="empty-x-api-key"),
    pytest.param({"Authorization": CLIENT_KEY}, 401, "UNAUTHORIZED", id="no-scheme"),
    pytest.param([("Authorization", f"Bearer {CLIENT_KEY}"), ("Authorization", "Bearer someone-else")], 401,
                 "UNAUTHORIZED", id="authorization-twice"),
    pytest.param([("Authorization", f"Bearer {CLIENT_KEY}"), ("Authorization", f"Bearer {CLIENT_KEY}")], 401,
                 "UNAUTHORIZED", id="authorization-twice-same-key"),
    pytest.param({"Authorization": f"Bearer {CLIENT_KEY}, Bearer x"}, 401, "UNAUTHORIZED", id="authorization-list"),
    pytest.param([("X-Api-Key", CLIENT_KEY), ("X-Api-Key", "other")], 401, "UNAUTHORIZED", id="x-api-key-twice"),
]


@pytest.mark.parametrize("headers, status, code", NEAR_MISSES)
def test_near_miss_keys_are_refused(endpoint, openai_stub, headers, status, code):
    pairs = list(headers.items()) if isinstance(headers, dict) else headers
    response = endpoint.request("POST", "/execute", headers=[("Content-Type", "application/json"), *pairs],
                                body=json.dumps(OK))
    assert_error(response, status, code)
    assert chat_calls(openai_stub) == 0


def test_no_key_configured_refuses_the_real_key_with_403(make_endpoint, openai_stub):
    endpoint = make_endpoint(client_key="")
    assert_error(execute(endpoint, OK, key=CLIENT_KEY), 403, "FORBIDDEN")
    assert_error(execute(endpoint, OK, key=None), 401, "UNAUTHORIZED")
    assert chat_calls(openai_stub) == 0


# ------------------------------------------------------------------------------------------------ cache


def test_tools_empty_selects_a_side_effect_tool_so_it_is_never_cached(endpoint, openai_stub):
    # tools: [] means every tool on the allow-list, store_invoice (side effects) among them.
    openai_stub.enqueue(text("first"), text("second"))
    assert execute(endpoint, OK).json["cached"] is False
    second = execute(endpoint, OK)
    assert second.status == 200 and second.json["cached"] is False
    assert second.json["result"][-1]["content"] == "second"
    assert endpoint.cache_entries() == 0 and chat_calls(openai_stub) == 2


@pytest.mark.parametrize("fresh", [{"Cache-Control": "no-store"}, {"Cache-Control": "no-cache"},
                                   {"Cache-Control": "max-age=0, no-store"}, {"Pragma": "no-cache"}],
                         ids=["no-store", "no-cache", "no-store-in-a-list", "pragma-no-cache"])
def test_fresh_requests_neither_read_nor_write_the_cache(endpoint, openai_stub, fresh):
    openai_stub.enqueue(text("fresh 1"), text("plain"), text("fresh 2"))
    assert execute(endpoint, CACHEABLE, headers=fresh).json["cached"] is False
    assert endpoint.cache_entries() == 0  # not written
    assert execute(endpoint, CACHEABLE).json["cached"] is False  # so the plain request misses
    assert endpoint.cache_entries() == 1
    again = execute(endpoint, CACHEABLE, headers=fresh)
    assert again.json["cached"] is False and again.json["result"][-1]["content"] == "fresh 2"  # not read
    assert chat_calls(openai_stub) == 3


# ------------------------------------------------------------------------------------------- allow-list


def test_allowed_tools_limits_what_a_request_may_select(make_endpoint, openai_stub):
    endpoint = make_endpoint(allowed_tools=["analyze_sentiment"])
    refused = execute(endpoint, {"instruction": "Pull the data out", "tools": ["extract_data"]})
    assert_error(refused, 400, "UNKNOWN_TOOL")
    assert chat_calls(openai_stub) == 0
    openai_stub.enqueue(text("done"))
    assert execute(endpoint, OK).status == 200  # tools: [] is the allow-list, no more
    offered = {tool["function"]["name"] for tool in openai_stub.chat_requests[-1].get("tools", [])}
    assert "analyze_sentiment" in offered and "extract_data" not in offered and "store_invoice" not in offered
