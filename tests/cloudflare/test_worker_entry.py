"""What only the Worker adds around the shared contract (the contract itself is checked for every adapter
in tests/endpoints/test_contract_scenarios.py).

BOUNDARY: entry.py, kv_cache.py and the core run for real against the real loopback upstream; the Workers
runtime around them (SDK Request/Response, ``self.env``, the KV binding) is the stand-in of
tests/cloudflare/runtime.py.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from lmstudio_agent.endpoint.cache import cache_key
from tests.cloudflare.runtime import ExecutionContext, KVNamespace, Request, WorkerEnv, load_entry
from tests.support.openai_stub import ScriptedOpenAIServer, text

entry = load_entry()
KEY = "worker-test-key"
ORIGIN = "https://lmstudio-agent.example.workers.dev"
SECRET_TOKEN = "lm-studio-token-never-shown"


def make_env(upstream: str, kv: KVNamespace | None = None, **vars_: Any) -> WorkerEnv:
    values = {"LM_STUDIO_URL": upstream, "LM_STUDIO_MODEL": "scripted-model", "LM_TOOL_MODE": "native",
              "EXECUTE_DEADLINE_SECONDS": "5", **vars_}
    return WorkerEnv(vars=values, secrets={"CLIENT_API_KEY": KEY, "LM_STUDIO_TOKEN": SECRET_TOKEN},
                     bindings={"CACHE": kv} if kv is not None else None)


async def fetch(env: WorkerEnv, method: str, path: str, *, headers: dict | None = None, body: Any = None):
    response = await entry.Default(ExecutionContext(), env).fetch(
        Request(ORIGIN + path, method=method, headers=headers or {}, body=body)
    )
    text_ = await response.text()
    return response.status, dict(response.headers.items()), (json.loads(text_) if text_ else None)


def execute_body(instruction: str = "What is 2 + 2?", tools: list[str] | None = None) -> str:
    return json.dumps({"instruction": instruction, "tools": tools if tools is not None else ["analyze_sentiment"]})


AUTH = {"Authorization": f"Bearer {KEY}"}


async def test_answers_are_cached_in_kv_under_the_cores_key_with_the_ttl(openai_stub: ScriptedOpenAIServer) -> None:
    kv = KVNamespace()
    env = make_env(openai_stub.base_url, kv, CACHE_TTL_SECONDS="600")
    openai_stub.enqueue(text("4"))
    status, _, body = await fetch(env, "POST", "/execute", headers=AUTH, body=execute_body())
    assert status == 200 and body["cached"] is False

    backend, _ = entry.build_backend(env)
    expected_key = cache_key(instruction="What is 2 + 2?", tools=["analyze_sentiment"], model="scripted-model",
                             scope=backend.cache_scope())
    assert [(p["key"], p["expirationTtl"]) for p in kv.puts] == [(expected_key, 600)]
    assert json.loads(kv.puts[0]["value"])["result"] == body["result"]  # cache.encode_entry: the one codec

    status, _, again = await fetch(env, "POST", "/execute", headers=AUTH, body=execute_body("What  is 2 + 2? "))
    assert status == 200 and again["cached"] is True and again["result"] == body["result"]
    assert len(openai_stub.chat_requests) == 1


async def test_without_a_kv_binding_the_worker_runs_uncached(openai_stub: ScriptedOpenAIServer) -> None:
    env = make_env(openai_stub.base_url, kv=None)
    openai_stub.enqueue(text("4"), text("4"))
    for _ in range(2):
        status, _, body = await fetch(env, "POST", "/execute", headers=AUTH, body=execute_body())
        assert status == 200 and body["cached"] is False
    assert len(openai_stub.chat_requests) == 2


async def test_the_upstream_token_secret_reaches_the_upstream(openai_stub: ScriptedOpenAIServer) -> None:
    openai_stub.enqueue(text("4"))
    status, _, _ = await fetch(make_env(openai_stub.base_url), "POST", "/execute", headers=AUTH, body=execute_body())
    assert status == 200
    chat = [r for r in openai_stub.requests if r["path"].endswith("/chat/completions")][0]
    assert {k.lower(): v for k, v in chat["headers"].items()}["authorization"] == f"Bearer {SECRET_TOKEN}"


async def test_the_deadline_is_capped_below_the_tunnels_100s_cut(dead_upstream_url: str) -> None:
    _, options = entry.build_backend(make_env(dead_upstream_url, EXECUTE_DEADLINE_SECONDS="600"))
    assert options.deadline_seconds == entry.MAX_DEADLINE_SECONDS < 100
    _, options = entry.build_backend(make_env(dead_upstream_url, EXECUTE_DEADLINE_SECONDS="12"))
    assert options.deadline_seconds == 12


async def test_vars_given_as_json_numbers_are_read(openai_stub: ScriptedOpenAIServer) -> None:
    # wrangler passes a [vars] number as a JS number, which reaches Python as int/float.
    _, options = entry.build_backend(make_env(openai_stub.base_url, EXECUTE_DEADLINE_SECONDS=7, CACHE_TTL_SECONDS=120))
    assert (options.deadline_seconds, options.cache_ttl_seconds) == (7, 120)


async def test_invalid_configuration_keeps_health_and_auth_and_names_no_secret(
    dead_upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = make_env(dead_upstream_url, EXECUTE_DEADLINE_SECONDS="soon", LM_TOOL_MODE="telepathy")
    caplog.set_level(logging.DEBUG)
    assert (await fetch(env, "GET", "/health"))[0] == 200
    status, _, body = await fetch(env, "POST", "/execute", body=execute_body())
    assert status == 401 and body["code"] == "UNAUTHORIZED"
    status, _, body = await fetch(env, "POST", "/execute", headers=AUTH, body=execute_body())
    assert status == 500 and body["code"] == "INTERNAL_ERROR"
    assert "deadline_seconds" in body["error"] and "tool_mode" in body["error"]
    for shown in (json.dumps(body), caplog.text):
        assert SECRET_TOKEN not in shown and KEY not in shown and "Traceback" not in json.dumps(body)


async def test_a_failure_inside_the_worker_is_an_internal_error_not_a_trace(dead_upstream_url: str) -> None:
    class BrokenRequest(Request):
        async def text(self) -> str:
            raise RuntimeError("stream broke at /srv/secret/path.py line 3")

        async def bytes(self) -> bytes:
            raise RuntimeError("stream broke at /srv/secret/path.py line 3")

    env = make_env(dead_upstream_url)
    response = await entry.Default(ExecutionContext(), env).fetch(
        BrokenRequest(ORIGIN + "/execute", method="POST", headers=AUTH, body="{}")
    )
    body = await response.json()
    assert response.status == 500
    assert body == {"success": False, "error": "Internal error in the Worker", "code": "INTERNAL_ERROR"}
    assert response.headers["access-control-allow-origin"] == "*"


async def test_fetch_never_raises_even_when_building_the_response_fails(dead_upstream_url, monkeypatch) -> None:
    def broken(result):
        raise UnicodeEncodeError("utf-8", "\udc00", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(entry, "to_response", broken)
    response = await entry.Default(ExecutionContext(), make_env(dead_upstream_url)).fetch(
        Request(ORIGIN + "/execute", method="POST", headers=AUTH, body='{"instruction": "x"}')
    )
    assert response.status == 500
    assert await response.json() == {"success": False, "error": "Internal error in the Worker", "code": "INTERNAL_ERROR"}


async def test_invalid_utf8_is_refused_not_replaced(dead_upstream_url) -> None:
    # JS's text() would turn the byte into U+FFFD and run the request; the Worker reads bytes and refuses.
    response = await entry.Default(ExecutionContext(), make_env(dead_upstream_url)).fetch(
        Request(ORIGIN + "/execute", method="POST", headers=AUTH, body=b'{"instruction": "caf\xe9"}')
    )
    assert response.status == 400 and (await response.json())["code"] == "INVALID_REQUEST"


async def test_preflight_is_a_bodyless_204_with_cors(dead_upstream_url: str) -> None:
    # JS throws on a 204 with any body, even "": the Worker must pass none.
    status, headers, body = await fetch(make_env(dead_upstream_url), "OPTIONS", "/execute",
                                        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert status == 204 and body is None
    assert headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert "content-type" not in headers


async def test_a_method_http_method_lacks_is_a_405(dead_upstream_url: str) -> None:
    status, headers, body = await fetch(make_env(dead_upstream_url), "PROPFIND", "/execute", headers=AUTH)
    assert status == 405 and body["code"] == "METHOD_NOT_ALLOWED" and headers["allow"] == "POST"


async def test_headers_from_a_raw_js_headers_object_are_read() -> None:
    # Older runtimes hand fetch() the JS Request itself, whose Headers iterate as [name, value] pairs.
    assert entry.header_dict([["x-api-key", "k"], ["content-type", "application/json"]]) == {
        "x-api-key": "k", "content-type": "application/json"}


async def test_the_isolate_keeps_the_service_and_detects_the_mode_once(openai_stub: ScriptedOpenAIServer) -> None:
    env = make_env(openai_stub.base_url, LM_TOOL_MODE="auto")
    openai_stub.enqueue(text("4"), text("5"))
    for instruction in ("What is 2 + 2?", "What is 2 + 3?"):
        status, _, _ = await fetch(env, "POST", "/execute", headers=AUTH, body=execute_body(instruction))
        assert status == 200
    listings = [r for r in openai_stub.requests if r["method"] == "GET" and "models" in r["path"]]
    assert len(listings) == 1
    first, _ = entry.build_backend(env)
    second, _ = entry.build_backend(env)
    assert first.service is second.service and first.client is not second.client
    changed, _ = entry.build_backend(make_env(openai_stub.base_url, LM_TOOL_MODE="native"))
    assert changed.service is not first.service


async def test_a_body_asking_for_a_stream_is_parsed_once_and_the_settings_are_validated_once_per_isolate(
    openai_stub: ScriptedOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21, item 4: the Worker's request crosses core's one router, which reads a body with "stream" in it
    once (it was parsed twice), and the isolate validates its settings once, not on every request."""
    from lmstudio_agent.endpoint import backend as service, contract

    parses: list[int] = []
    validations: list[int] = []
    loads, from_env = contract._safe_loads, service.EndpointSettings.from_env
    monkeypatch.setattr(contract, "_safe_loads", lambda raw: parses.append(1) or loads(raw))
    monkeypatch.setattr(service.EndpointSettings, "from_env",
                        classmethod(lambda cls, env, **over: validations.append(1) or from_env(env, **over)))
    monkeypatch.setattr(entry, "_settings", service.SettingsCache())  # a fresh isolate
    env = make_env(openai_stub.base_url)
    for _ in range(2):
        openai_stub.enqueue(text("Hello."))
        body = json.dumps({"instruction": "Say hello", "stream": True})
        response = await entry.Default(ExecutionContext(), env).fetch(
            Request(ORIGIN + "/execute", method="POST", headers=AUTH, body=body))
        assert response.status == 200 and '"success":true' in await response.text()
    assert (len(parses), len(validations)) == (2, 1)
    # A bad setting is still a clear error, on every request, and is validated once too.
    bad = make_env(openai_stub.base_url, MAX_ROUNDS="many")
    for _ in range(2):
        status, _, answer = await fetch(bad, "POST", "/execute", headers=AUTH, body=execute_body())
        assert status == 500 and answer["code"] == "INTERNAL_ERROR" and "max_rounds" in answer["error"]
    assert len(validations) == 2
