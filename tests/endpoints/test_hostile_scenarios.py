"""Hostile input and the promises that a deliberate bug would break, run against every adapter (the Lambda,
the Worker, the bridge hub) like the rest of the shared contract scenarios.

Each scenario names what it guards: a deep or non-Unicode body is a 400 in the contract's shape (never a
5xx, never an echo that cannot be encoded), near-miss keys and a credential sent twice are refused, a
deployment without a key refuses a real one with exactly 403, and the cache and allow-list rules hold.
"""

from __future__ import annotations

import json


from tests.endpoints.conftest import CLIENT_KEY
from tests.endpoints.test_contract_scenarios import CACHEABLE, OK, assert_error, chat_calls, execute
from tests.support.openai_stub import text

# ------------------------------------------------------------------------------------------ hostile bodies

DEEP = "[" * 10_000 + "]" * 10_000
# (id, raw body, what the error says). One endpoint serves them all: standing an adapter up is the slow part.
HOSTILE_BODIES = [
    ("deep-array", DEEP, "nested too deeply"),
    ("deep-field", '{"instruction": "x", "tools": ' + "[" * 200 + "]" * 200 + "}", "nested too deeply"),
    ("deep-object", '{"instruction": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}", "nested too deeply"),
    ("surrogate-tool-name", '{"instruction": "x", "tools": ["\\udc00"]}', "not valid Unicode"),
    ("surrogate-instruction", '{"instruction": "x\\ud800y"}', "not valid Unicode"),
    ("surrogate-model", '{"instruction": "x", "model": "\\udfff"}', "not valid Unicode"),
    ("surrogate-key", '{"instruction": "x", "\\ud83d": 1}', "not valid Unicode"),
    ("invalid-utf8", b'{"instruction": "caf\xe9 au lait"}', "not valid UTF-8"),
    ("utf8-encoded-surrogate", b'{"instruction": "\xed\xa0\x80"}', "not valid"),
]


def test_hostile_bodies_are_a_400_in_the_contracts_shape(endpoint, openai_stub):
    sent = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}
    for name, raw, fragment in HOSTILE_BODIES:
        response = endpoint.request("POST", "/execute", headers=sent, body=raw)
        try:
            assert_error(response, 400, "INVALID_REQUEST")
            assert fragment in response.json["error"]
            response.text.encode("utf-8")  # the answer itself is valid Unicode
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    assert chat_calls(openai_stub) == 0


# ------------------------------------------------------------------------------------------------- keys

NEAR_MISSES = [
    ("prefix", {"Authorization": f"Bearer {CLIENT_KEY[:8]}"}, 403, "FORBIDDEN"),
    ("key-minus-one-char", {"Authorization": f"Bearer {CLIENT_KEY[:-1]}"}, 403, "FORBIDDEN"),
    ("key-plus-one-char", {"Authorization": f"Bearer {CLIENT_KEY}0"}, 403, "FORBIDDEN"),
    ("key-other-case", {"Authorization": f"Bearer {CLIENT_KEY.upper()}"}, 403, "FORBIDDEN"),
    ("x-api-key-minus-one-char", {"X-Api-Key": CLIENT_KEY[:-1]}, 403, "FORBIDDEN"),
    ("x-api-key-prefix", {"X-Api-Key": CLIENT_KEY[:1]}, 403, "FORBIDDEN"),
    ("empty-bearer", {"Authorization": "Bearer"}, 401, "UNAUTHORIZED"),
    ("empty-x-api-key", {"X-Api-Key": ""}, 401, "UNAUTHORIZED"),
    ("no-scheme", {"Authorization": CLIENT_KEY}, 401, "UNAUTHORIZED"),
    ("authorization-twice", [("Authorization", f"Bearer {CLIENT_KEY}"), ("Authorization", "Bearer someone-else")],
     401, "UNAUTHORIZED"),
    ("authorization-twice-same-key", [("Authorization", f"Bearer {CLIENT_KEY}"), ("Authorization", f"Bearer {CLIENT_KEY}")],
     401, "UNAUTHORIZED"),
    ("authorization-list", {"Authorization": f"Bearer {CLIENT_KEY}, Bearer x"}, 401, "UNAUTHORIZED"),
    ("x-api-key-twice", [("X-Api-Key", CLIENT_KEY), ("X-Api-Key", "other")], 401, "UNAUTHORIZED"),
    ("bearer-and-other-x-api-key", [("Authorization", f"Bearer {CLIENT_KEY}"), ("X-Api-Key", "other")],
     401, "UNAUTHORIZED"),
    ("x-api-key-and-other-bearer", [("Authorization", "Bearer other"), ("X-Api-Key", CLIENT_KEY)],
     401, "UNAUTHORIZED"),
]


def test_near_miss_keys_are_refused(endpoint, openai_stub):
    for name, headers, status, code in NEAR_MISSES:
        pairs = list(headers.items()) if isinstance(headers, dict) else headers
        response = endpoint.request("POST", "/execute", headers=[("Content-Type", "application/json"), *pairs],
                                    body=json.dumps(OK))
        try:
            assert_error(response, status, code)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
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


FRESH = [{"Cache-Control": "no-store"}, {"Cache-Control": "no-cache"}, {"Cache-Control": "max-age=0, no-store"},
         {"Pragma": "no-cache"}]


def test_fresh_requests_neither_read_nor_write_the_cache(endpoint, openai_stub):
    openai_stub.default = text("answer")
    for i, fresh in enumerate(FRESH):
        payload = {**CACHEABLE, "instruction": f"{CACHEABLE['instruction']} ({i})"}
        entries = endpoint.cache_entries()
        assert execute(endpoint, payload, headers=fresh).json["cached"] is False, fresh
        assert endpoint.cache_entries() == entries, f"{fresh} wrote the cache"
        assert execute(endpoint, payload).json["cached"] is False  # so the plain request misses, and writes
        assert endpoint.cache_entries() == entries + 1
        assert execute(endpoint, payload, headers=fresh).json["cached"] is False, f"{fresh} read the cache"
    assert chat_calls(openai_stub) == 3 * len(FRESH)


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
