"""The Lambda's async runs: DynamoDB (moto) holds the state, the runner function (a second import of app.py
in a thread, see lambda_driver.py) runs them past what one API invocation may live."""

from __future__ import annotations

import json
import time

from tests.endpoints.conftest import CLIENT_KEY
from tests.endpoints.drivers.lambda_driver import LambdaContext, RUNS_TABLE_NAME, proxy_event, response_of
from tests.support.openai_stub import streamed_text, tool_call

KEYED = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}


def sse_events(text: str) -> list:
    out = []
    for block in text.split("\n\n"):
        data = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
        if data:
            out.append(data[0] if data[0] == "[DONE]" else json.loads(data[0]))
    return out


def test_a_run_outlives_the_api_invocation_that_queued_it(handler, openai_stub):
    # The API function's invocation may live 2 s here (28 s deployed, under API Gateway's 29 s); the model
    # takes about 3 s to write its answer. The API answers 202 at once; the runner function, with its own
    # 900 s, finishes the run long after that invocation is over.
    openai_stub.enqueue(streamed_text("A long answer from a slow model, word by word.", chunk_delay=0.25))
    api_context = LambdaContext(timeout_seconds=2.0)
    started = time.monotonic()
    created = response_of(handler.invoke(
        proxy_event("POST", "/runs", headers=KEYED, body=json.dumps({"instruction": "Talk", "tools": []})),
        api_context))
    assert created.status == 202, created.text
    assert time.monotonic() - started < api_context.timeout_seconds
    run_id = created.json["run_id"]
    assert handler.invoked == [{"run_id": run_id}]  # the async invoke of the runner function
    handler.deliver_runs(wait=True)
    assert api_context.get_remaining_time_in_millis() == 0  # the API invocation's time ran out meanwhile
    assert handler.runner_results == [{"run_id": run_id, "status": "succeeded"}]
    done = handler.request("GET", f"/runs/{run_id}", headers=KEYED)
    assert done.json["status"] == "succeeded"
    assert done.json["result"]["result"][-1]["content"] == "A long answer from a slow model, word by word."
    item = handler.aws.dynamodb.get_item(TableName=RUNS_TABLE_NAME, Key={"run_id": {"S": run_id}})["Item"]
    assert item["status"]["S"] == "succeeded" and int(item["expires_at"]["N"]) > time.time() + 3000
    assert CLIENT_KEY not in json.dumps(item)


def test_a_second_delivery_of_the_same_run_does_nothing(handler, openai_stub):
    openai_stub.enqueue(tool_call("terminate", {"message": "done"}))
    run_id = handler.request("POST", "/runs", headers=KEYED, body=json.dumps({"instruction": "finish"})).json["run_id"]
    handler.invoked.append({"run_id": run_id})  # Lambda delivers an async event at least once
    handler.deliver_runs(wait=True)
    assert len(handler.runner_results) == 2
    assert len(openai_stub.chat_requests) == 1  # the conditional write let one delivery take the run


def test_the_events_route_answers_what_there_is_and_resumes_from_last_event_id(handler, openai_stub):
    openai_stub.enqueue(tool_call("terminate", {"message": "All done."}))
    run_id = handler.request("POST", "/runs", headers=KEYED, body=json.dumps({"instruction": "finish"})).json["run_id"]
    before = handler.request("GET", f"/runs/{run_id}/events", headers=KEYED)
    assert before.status == 200 and before.headers["content-type"].startswith("text/event-stream")
    assert "retry: 1000" in before.text and "[DONE]" not in before.text  # queued: come back later
    handler.deliver_runs(wait=True)
    after = handler.request("GET", f"/runs/{run_id}/events", headers=KEYED)
    events = sse_events(after.text)
    assert events[-1] == "[DONE]" and events[0]["type"] == "start" and events[-2]["type"] == "finish"
    assert {"type": "tool-input-available", "toolCallId": "call-1", "toolName": "terminate",
            "input": {"message": "All done."}} in events
    resumed = handler.request("GET", f"/runs/{run_id}/events", headers={**KEYED, "Last-Event-ID": "1"})
    assert sse_events(resumed.text) == events[2:]
