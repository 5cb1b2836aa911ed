"""What only the Lambda adapter does: event shapes (generated API Gateway events, the direct invoke), base64
bodies, the deadline from the remaining time, secrets through Powertools, logs, metrics and the DynamoDB store."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time

import pytest

from tests.endpoints.conftest import CLIENT_KEY, UPSTREAM_TOKEN
from tests.endpoints.drivers.lambda_driver import (
    CLIENT_KEY_SECRET,
    LM_TOKEN_SECRET,
    LambdaContext,
    proxy_event,
    response_of,
    sample_event,
)
from tests.support.openai_stub import text

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
CACHEABLE = {"instruction": "Summarise: cats are great pets", "tools": ["analyze_sentiment"]}


def body_of(result: dict) -> dict:
    return json.loads(result["body"])


# -------------------------------------------------------------------------------- generated API Gateway events


def test_generated_health_event_as_is(handler):
    result = handler.invoke(sample_event("health"))
    assert result["statusCode"] == 200
    assert body_of(result)["status"] == "healthy"


def test_generated_execute_event_with_a_key(handler, openai_stub):
    event = sample_event("execute")  # base64 body, exactly as `sam local generate-event` prints it
    assert event["isBase64Encoded"] is True
    event["headers"].update(AUTH)
    event["multiValueHeaders"]["Authorization"] = [AUTH["Authorization"]]
    openai_stub.enqueue(text("5"))
    response = response_of(handler.invoke(event))
    assert response.status == 200, response.text
    sent = json.loads(base64.b64decode(sample_event("execute")["body"]))
    assert openai_stub.chat_requests[0]["messages"][-1]["content"] == sent["instruction"]


def test_the_keyed_event_the_docs_give_to_sam_local_is_authorised(handler, openai_stub, tmp_path):
    # scripts/keyed_event.py, as docs/readme/lambda.md runs it: the key from CLIENT_KEY, the event on stdout.
    import os
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "keyed_event.py"
    done = subprocess.run([sys.executable, str(script), str(script.parents[1] / "lambda" / "events" / "execute.json")],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "CLIENT_KEY": CLIENT_KEY})
    assert done.returncode == 0, done.stderr
    assert CLIENT_KEY not in done.stderr
    openai_stub.enqueue(text("5"))
    response = response_of(handler.invoke(json.loads(done.stdout)))
    assert response.status == 200, response.text


def test_generated_execute_event_without_a_key_is_401(handler, openai_stub):
    response = response_of(handler.invoke(sample_event("execute")))
    assert response.status == 401 and response.json["code"] == "UNAUTHORIZED"
    assert response.headers["www-authenticate"] == "Bearer"
    assert openai_stub.chat_requests == []


def test_plain_text_body_event(handler, openai_stub):
    openai_stub.enqueue(text("plain"))
    event = proxy_event("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "hi"}), base64_body=False)
    assert response_of(handler.invoke(event)).status == 200


def test_body_flagged_base64_but_not_base64(handler):
    event = proxy_event("POST", "/execute", headers=AUTH, body="{}", base64_body=False)
    event["body"], event["isBase64Encoded"] = "%%% not base64 %%%", True
    response = response_of(handler.invoke(event))
    assert response.status == 400 and response.json["code"] == "INVALID_REQUEST"


def test_invalid_utf8_body(handler):
    event = proxy_event("POST", "/execute", headers=AUTH, body=b"\xff\xfe{\x00")
    response = response_of(handler.invoke(event))
    assert response.status == 400 and response.json["code"] == "INVALID_REQUEST"


def test_cors_preflight_and_origin(handler):
    preflight = handler.request("OPTIONS", "/execute", headers={"Origin": "https://app.example"})
    assert preflight.status == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "X-Api-Key".lower() in preflight.headers["access-control-allow-headers"].lower()
    health = handler.request("GET", "/health", headers={"Origin": "https://app.example"})
    assert health.headers["access-control-allow-origin"] == "*"


def test_head_health(handler):
    assert handler.request("HEAD", "/health").status == 200


def test_a_malformed_proxy_event_still_gets_the_contract_shape(handler):
    result = handler.invoke({"httpMethod": "POST"})  # no path, no headers: not what API Gateway sends
    assert result["statusCode"] == 500
    body = body_of(result)
    assert body["success"] is False and body["code"] == "INTERNAL_ERROR"
    assert "Traceback" not in result["body"]


# -------------------------------------------------------------------------------------------- direct invoke


def test_direct_invoke_needs_no_key_and_answers_in_the_reference_shape(handler, openai_stub):
    openai_stub.enqueue(text("Test done."))
    result = handler.invoke(json.loads((sample_event.__globals__["EVENTS_DIR"] / "direct-invoke.json").read_text()))
    assert result["statusCode"] == 200
    assert result["headers"]["Content-Type"] == "application/json"
    assert result["headers"]["Access-Control-Allow-Origin"] == "*"
    body = body_of(result)
    assert body["success"] is True and body["result"][-1]["content"] == "Test done."
    assert openai_stub.requests[-1]["headers"]["Authorization"] == f"Bearer {UPSTREAM_TOKEN}"


def test_direct_invoke_missing_instruction(handler):
    result = handler.invoke({"body": json.dumps({"tools": []})})
    assert result["statusCode"] == 400
    assert body_of(result)["error"] == "Missing instruction"  # the API reference's message
    assert body_of(result)["code"] == "INVALID_INSTRUCTION"


def test_direct_invoke_body_given_as_an_object(handler, openai_stub):
    openai_stub.enqueue(text("ok"))
    assert handler.invoke({"body": {"instruction": "hi"}})["statusCode"] == 200


@pytest.mark.parametrize("event", [None, "just a string", [1, 2], {"nobody": 1}])
def test_direct_invoke_bad_events(handler, event):
    result = handler.invoke(event)
    assert result["statusCode"] == 400
    assert body_of(result)["code"] in {"INVALID_REQUEST", "INVALID_INSTRUCTION"}


def test_direct_invoke_honours_no_cache(handler, openai_stub):
    openai_stub.enqueue(text("one"), text("two"))
    handler.invoke({"body": json.dumps(CACHEABLE)})
    hit = body_of(handler.invoke({"body": json.dumps(CACHEABLE)}))
    assert hit["cached"] is True
    fresh = body_of(handler.invoke({"body": json.dumps(CACHEABLE), "headers": {"Cache-Control": "no-cache"}}))
    assert fresh["cached"] is False and fresh["result"][-1]["content"] == "two"


# ---------------------------------------------------------------------------------------------- deadline


def test_deadline_follows_the_remaining_time(make_lambda, openai_stub):
    handler = make_lambda(deadline_seconds=25.0)
    openai_stub.default = text("late", delay=10.0)
    context = LambdaContext(timeout_seconds=5.0)  # 5 s left: the run gets 5 - 3 s margin, not 25 s
    started = time.monotonic()
    response = response_of(handler.invoke(proxy_event("POST", "/execute", headers=AUTH,
                                                      body=json.dumps({"instruction": "hi"})), context))
    assert response.status == 504 and response.json["code"] == "UPSTREAM_TIMEOUT"
    assert time.monotonic() - started < 5.0  # answered before the function itself would have timed out


# ----------------------------------------------------------------------------------------------- secrets


def test_secrets_are_cached_between_invocations(handler, openai_stub):
    openai_stub.enqueue(text("a"), text("b"))
    assert handler.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "a"})).status == 200
    handler.aws.secrets.put_secret_value(SecretId=CLIENT_KEY_SECRET, SecretString="rotated-key")
    # Within max_age the cached key still answers; Secrets Manager is not read per request.
    assert handler.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "b"})).status == 200


def test_rotated_secrets_take_effect_after_max_age(make_lambda, openai_stub):
    handler = make_lambda(extra_env={"SECRET_MAX_AGE_SECONDS": "0"})
    openai_stub.enqueue(text("a"), text("b"))
    assert handler.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "a"})).status == 200
    handler.aws.secrets.put_secret_value(SecretId=CLIENT_KEY_SECRET, SecretString="rotated-key")
    handler.aws.secrets.put_secret_value(SecretId=LM_TOKEN_SECRET, SecretString="sk-lm-rotated")
    openai_stub.token = "sk-lm-rotated"
    assert handler.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "b"})).status == 403
    new_auth = {"Authorization": "Bearer rotated-key"}
    response = handler.request("POST", "/execute", headers=new_auth, body=json.dumps({"instruction": "b"}))
    assert response.status == 200, response.text  # the backend was rebuilt with the rotated LM Studio token
    assert openai_stub.requests[-1]["headers"]["Authorization"] == "Bearer sk-lm-rotated"


def test_missing_secret_is_a_clean_500(handler):
    handler.aws.secrets.delete_secret(SecretId=CLIENT_KEY_SECRET, ForceDeleteWithoutRecovery=True)
    response = handler.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "a"}))
    assert response.status == 500 and response.json["code"] == "INTERNAL_ERROR"
    assert "misconfigured" in response.json["error"]
    assert CLIENT_KEY_SECRET not in response.text and "Traceback" not in response.text


def test_no_key_configured_fails_closed(make_lambda):
    handler = make_lambda(extra_env={"CLIENT_API_KEY_SECRET": ""})
    response = handler.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "a"}))
    assert response.status == 403 and response.json["code"] == "FORBIDDEN"


def test_unexpected_errors_never_show_a_traceback_even_in_dev_mode(make_lambda):
    handler = make_lambda(extra_env={"POWERTOOLS_DEV": "true"})

    def broken():
        raise RuntimeError("boom: internal detail /var/task/secret-path")

    handler.module._get_runtime = broken
    response = handler.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "a"}))
    assert response.status == 500 and response.json == {"success": False, "error": "Internal error",
                                                         "code": "INTERNAL_ERROR"}
    direct = handler.invoke({"body": json.dumps({"instruction": "a"})})
    assert direct["statusCode"] == 500 and "boom" not in direct["body"]


# ------------------------------------------------------------------------------------- logs and metrics


def test_logs_carry_the_correlation_id_and_no_secret(handler, openai_stub, capsys, powertools_logs):
    powertools_logs()
    openai_stub.enqueue(text("ok"))
    event = proxy_event("POST", "/execute", headers=AUTH, body=json.dumps(CACHEABLE))
    request_id = event["requestContext"]["requestId"]
    handler.invoke(event)
    handler.invoke(event)  # a cache hit
    handler.request("POST", "/execute", headers={"Authorization": "Bearer wrong-key-123"}, body="{}")
    handler.invoke(proxy_event("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "x", "tools": ["nope"]})))
    out = capsys.readouterr().out
    for secret in (CLIENT_KEY, UPSTREAM_TOKEN, "wrong-key-123"):
        assert secret not in out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert any(line.get("correlation_id") == request_id for line in lines)
    metrics = [line for line in lines if "_aws" in line]
    names = [m["Name"] for line in metrics for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    assert names.count("ExecuteSuccess") == 2 and names.count("CacheHit") == 1 and names.count("ExecuteError") == 2
    assert all(line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LMStudioAgent" for line in metrics)


def test_a_cors_preflight_is_not_counted_as_an_execute_error(handler, capsys, powertools_logs):
    """Schemathesis's OPTIONS /execute found the preflight's 204 counted as ExecuteError (error_code "None")."""
    powertools_logs()
    response = handler.request("OPTIONS", "/execute", headers={"Origin": "https://app.example",
                                                                "Access-Control-Request-Method": "POST"})
    assert response.status == 204
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    names = [m["Name"] for line in lines if "_aws" in line
             for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    assert "ExecuteError" not in names and "ExecuteSuccess" not in names


# ------------------------------------------------------------------------------------------- DynamoDB store


def test_cache_items_carry_the_ttl_attribute(make_lambda, openai_stub):
    handler = make_lambda(cache_ttl_seconds=600)
    openai_stub.enqueue(text("ok"))
    handler.request("POST", "/execute", headers=AUTH, body=json.dumps(CACHEABLE))
    (item,) = handler.aws.items()
    assert item["key"]["S"].startswith("execute:")
    assert abs(int(item["expires_at"]["N"]) - (time.time() + 600)) < 30
    assert json.loads(item["value"]["S"])["result"][-1]["content"] == "ok"  # cache.encode_entry: the one codec


def test_expired_items_are_not_served_before_dynamodb_deletes_them(handler):
    from dynamo_cache import DynamoCacheStore

    now = [1_000_000.0]
    store = DynamoCacheStore("lmstudio-agent-cache-test", client=handler.aws.dynamodb, clock=lambda: now[0])
    asyncio.run(store.put("k", '["v"]', 60))
    assert asyncio.run(store.get("k")) == '["v"]'
    now[0] += 61  # past expiry; the item is still in the table (TTL deletion is lazy)
    assert handler.aws.items()
    assert asyncio.run(store.get("k")) is None
    assert asyncio.run(store.get("missing")) is None


def test_runs_without_a_cache_table(make_lambda, openai_stub):
    handler = make_lambda(extra_env={"CACHE_TABLE": ""})
    openai_stub.enqueue(text("a"), text("b"))
    for _ in range(2):
        response = handler.request("POST", "/execute", headers=AUTH, body=json.dumps(CACHEABLE))
        assert response.status == 200 and response.json["cached"] is False


def test_a_broken_cache_does_not_fail_the_request(handler, openai_stub):
    handler.aws.dynamodb.delete_table(TableName="lmstudio-agent-cache-test")
    openai_stub.enqueue(text("still fine"))
    response = handler.request("POST", "/execute", headers=AUTH, body=json.dumps(CACHEABLE))
    assert response.status == 200 and response.json["result"][-1]["content"] == "still fine"


def test_invalid_settings_are_a_clean_500(make_lambda):
    handler = make_lambda(extra_env={"LM_TOOL_MODE": "telepathy"})
    response = handler.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "a"}))
    assert response.status == 500 and response.json["code"] == "INTERNAL_ERROR"
    # Core's policy, as on the Worker: the bad setting is named, never its value.
    assert response.json["error"] == "The endpoint is misconfigured: invalid tool_mode"
    assert handler.request("GET", "/health").status == 200  # health does not depend on the settings
    unauthenticated = handler.request("POST", "/execute", body=json.dumps({"instruction": "a"}))
    assert unauthenticated.status == 401  # the problem is told to authenticated clients only
