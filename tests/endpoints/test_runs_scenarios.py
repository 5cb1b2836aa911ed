"""Async runs (``POST /runs`` and friends), written once and run on every adapter that keeps runs.

Each adapter has its own store and its own way of running a queued run: the hub keeps runs in memory and
runs them as tasks; the Lambda writes them to DynamoDB and invokes its runner function asynchronously (the
driver delivers that invocation, see lambda_driver.py). ``deliver_runs()`` is that hook; on the hub runs go
on by themselves.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import pytest

from tests.endpoints.conftest import CLIENT_KEY
from tests.support.openai_stub import http_error, streamed_text, text, tool_call

KEYED = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}


def needs_runs(endpoint) -> None:
    if not getattr(endpoint, "supports_runs", False):
        pytest.skip(f"{endpoint.name} keeps no async runs in this checkout")


def create(endpoint, payload: Any, headers: Optional[dict] = None):
    response = endpoint.request("POST", "/runs", headers={**KEYED, **(headers or {})}, body=json.dumps(payload))
    deliver = getattr(endpoint, "deliver_runs", None)
    if deliver is not None:
        deliver()
    return response


def wait_for(endpoint, run_id: str, statuses=("succeeded", "failed", "cancelled"), timeout: float = 15.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        body = endpoint.request("GET", f"/runs/{run_id}", headers=KEYED).json
        if body.get("status") in statuses or time.monotonic() > end:
            return body
        time.sleep(0.05)


def test_a_run_answers_202_at_once_and_ends_with_execute_shaped_result(endpoint, openai_stub):
    needs_runs(endpoint)
    openai_stub.enqueue(tool_call("terminate", {"message": "The total is 5."}))
    created = create(endpoint, {"instruction": "Add 2 and 3, then finish.", "tools": []})
    assert created.status == 202, created.text
    assert created.json["status"] == "queued" and created.json["run_id"].startswith("run_")
    assert created.headers["location"] == f"/runs/{created.json['run_id']}"
    done = wait_for(endpoint, created.json["run_id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["success"] is True and done["result"]["cached"] is False
    assert done["result"]["result"][-1] == {"type": "result", "content": "The total is 5."}
    kinds = [e["type"] for e in done["events"]]
    assert kinds[0] == "step-start" and "message" in kinds


def test_a_failed_run_keeps_the_contracts_error(endpoint, openai_stub):
    needs_runs(endpoint)
    openai_stub.enqueue(*[http_error(502, "bad gateway")] * 3)
    created = create(endpoint, {"instruction": "hello", "tools": []})
    done = wait_for(endpoint, created.json["run_id"])
    assert done["status"] == "failed"
    assert done["result"]["success"] is False and done["result"]["code"] == "UPSTREAM_ERROR"


def test_runs_are_scoped_to_their_key_and_need_one(make_endpoint, openai_stub):
    endpoint = make_endpoint()
    needs_runs(endpoint)
    openai_stub.enqueue(text("hi"))
    run_id = create(endpoint, {"instruction": "hello", "tools": []}).json["run_id"]
    assert endpoint.request("GET", f"/runs/{run_id}").status == 401
    other = {"Authorization": "Bearer someone-else-entirely"}
    assert endpoint.request("GET", f"/runs/{run_id}", headers=other).status == 403  # a wrong key never gets in
    assert endpoint.request("GET", "/runs/run_" + "0" * 32, headers=KEYED).json["code"] == "NOT_FOUND"
    assert endpoint.request("GET", "/runs/../execute", headers=KEYED).status in (404, 405)


def test_bad_run_requests_are_refused_before_queueing(endpoint):
    needs_runs(endpoint)
    assert create(endpoint, {"instruction": " ", "tools": []}).json["code"] == "INVALID_INSTRUCTION"
    assert create(endpoint, {"instruction": "x", "tools": ["no_such_tool"]}).json["code"] == "UNKNOWN_TOOL"
    assert endpoint.request("PUT", "/runs", headers=KEYED, body="{}").json["code"] == "METHOD_NOT_ALLOWED"


def test_events_stream_from_the_start_or_after_last_event_id(endpoint, openai_stub):
    needs_runs(endpoint)
    if not hasattr(endpoint, "stream") or not getattr(endpoint, "live_stream", True):
        pytest.skip(f"{endpoint.name} does not stream")
    openai_stub.enqueue(streamed_text("Five it is.", chunk_delay=0.05))
    run_id = create(endpoint, {"instruction": "What is 2 + 3?", "tools": []}).json["run_id"]
    full = endpoint.stream("GET", f"/runs/{run_id}/events", headers=KEYED)
    assert full.status == 200 and full.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert full.events[-1] == "[DONE]" and full.types[0] == "start" and full.types[-1] == "finish"
    assert "".join(c["delta"] for c in full.chunks if c["type"] == "text-delta") == "Five it is."
    assert full.ids[:len(full.chunks)] == [str(i) for i in range(len(full.chunks))]
    resumed = endpoint.stream("GET", f"/runs/{run_id}/events", headers={**KEYED, "Last-Event-ID": "2"})
    assert resumed.chunks == full.chunks[3:]


def test_delete_cancels_a_running_run(endpoint, openai_stub):
    needs_runs(endpoint)
    if getattr(endpoint, "runs_run_inline", False):
        pytest.skip(f"{endpoint.name} runs a delivered run to its end inside the invocation")
    openai_stub.enqueue(streamed_text("a slow answer " * 8, chunk_delay=0.2))
    run_id = create(endpoint, {"instruction": "talk slowly", "tools": []}).json["run_id"]
    wait_for(endpoint, run_id, statuses=("running",))
    cancelled = endpoint.request("DELETE", f"/runs/{run_id}", headers=KEYED)
    assert cancelled.status == 200 and cancelled.json == {"run_id": run_id, "status": "cancelled"}
    time.sleep(0.5)
    body = wait_for(endpoint, run_id)
    assert body["status"] == "cancelled" and "result" not in body
    time.sleep(1.0)
    assert openai_stub.streams_finished == []  # the model's answer was cut off, not waited for
