"""What only the Worker adds to async runs: each run lives in a Durable Object of its own, queued runs are
run by the object's alarm, and the alarm at a run's expiry deletes it. (The runs' contract is checked for
every adapter in tests/endpoints/test_runs_scenarios.py.)"""

from __future__ import annotations

import json
import time

import pytest

from tests.endpoints.conftest import CLIENT_KEY, UPSTREAM_TOKEN
from tests.endpoints.drivers import EndpointConfig
from tests.endpoints.drivers.worker_driver import WorkerDriver
from tests.support.openai_stub import MODEL_ID, tool_call

KEYED = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}


@pytest.fixture
def worker(openai_stub):
    openai_stub.token = UPSTREAM_TOKEN
    driver = WorkerDriver(EndpointConfig(upstream_url=openai_stub.base_url, upstream_token=UPSTREAM_TOKEN,
                                         client_key=CLIENT_KEY, model=MODEL_ID, deadline_seconds=5.0,
                                         tool_mode="native"))
    yield driver
    driver.close()


def test_each_run_has_its_own_object_and_its_expiry_alarm_deletes_it(worker, openai_stub):
    openai_stub.enqueue(tool_call("terminate", {"message": "one"}), tool_call("terminate", {"message": "two"}))
    ids = [worker.request("POST", "/runs", headers=KEYED, body=json.dumps({"instruction": f"run {i}"})).json["run_id"]
           for i in range(2)]
    assert sorted(worker.runs.objects) == sorted(f"do-id:{run_id}" for run_id in ids)
    for run_id in ids:
        for _ in range(200):
            if worker.request("GET", f"/runs/{run_id}", headers=KEYED).json["status"] == "succeeded":
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"{run_id} did not finish")
    storage = worker.runs.objects[f"do-id:{ids[0]}"].ctx.storage
    state = json.loads(storage.items["run"])
    assert storage.alarm_at == pytest.approx(state["expires_at"], abs=1)  # the next alarm is its expiry
    assert CLIENT_KEY not in storage.items["run"]  # the owner is a digest
    state["expires_at"] = time.time() - 1
    storage.items["run"] = json.dumps(state)
    worker._run(worker.runs.objects[f"do-id:{ids[0]}"].alarm())
    assert storage.items == {}
    assert worker.request("GET", f"/runs/{ids[0]}", headers=KEYED).json["code"] == "NOT_FOUND"
    assert worker.request("GET", f"/runs/{ids[1]}", headers=KEYED).json["status"] == "succeeded"


def test_runs_need_the_key_before_any_object_is_touched(worker):
    assert worker.request("POST", "/runs", body=json.dumps({"instruction": "x"})).status == 401
    assert worker.request("GET", "/runs/run_" + "0" * 32, headers={"Authorization": "Bearer nope"}).status == 403
    assert worker.request("GET", "/runs/not-a-run-id", headers=KEYED).json["code"] == "NOT_FOUND"
    assert worker.runs.objects == {}
