"""The runs service over the memory store and the real agent backend (loopback stub): scoping, expiry,
idempotent delivery."""

from __future__ import annotations

import json

from lmstudio_agent.endpoint.runs import MemoryRunStore, RunService, owner_of
from lmstudio_agent.endpoint.backend import AgentBackend, EndpointSettings
from tests.support.openai_stub import MODEL_ID, text


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def service(stub, clock, **kwargs) -> RunService:
    backend = AgentBackend(EndpointSettings(lm_studio_url=stub.base_url, model=MODEL_ID, tool_mode="native"))
    launched: list[str] = []

    async def launcher(run_id: str) -> None:
        launched.append(run_id)

    runs = RunService(MemoryRunStore(clock=clock), backend, launcher=launcher, clock=clock, ttl_seconds=600, **kwargs)
    runs.launched = launched  # type: ignore[attr-defined]
    return runs


ALICE = {"Authorization": "Bearer alice-key"}
BOB = {"X-Api-Key": "bob-key"}


async def test_a_run_is_visible_only_to_the_key_that_created_it(openai_stub):
    clock = Clock()
    runs = service(openai_stub, clock)
    created = await runs.handle("POST", "/runs", ALICE, json.dumps({"instruction": "hi", "tools": []}))
    run_id = created.body["run_id"]
    assert (await runs.handle("GET", f"/runs/{run_id}", ALICE, None)).status == 200
    for method in ("GET", "DELETE"):
        refused = await runs.handle(method, f"/runs/{run_id}", BOB, None)
        assert refused.status == 404 and refused.body["code"] == "NOT_FOUND"
    assert owner_of(ALICE) != owner_of(BOB) and "alice-key" not in owner_of(ALICE)


async def test_runs_expire_after_their_ttl(openai_stub):
    clock = Clock()
    runs = service(openai_stub, clock)
    run_id = (await runs.handle("POST", "/runs", ALICE, json.dumps({"instruction": "hi"}))).body["run_id"]
    clock.now += 599
    assert (await runs.handle("GET", f"/runs/{run_id}", ALICE, None)).status == 200
    clock.now += 2
    assert (await runs.handle("GET", f"/runs/{run_id}", ALICE, None)).status == 404


async def test_a_run_executes_once_however_often_it_is_delivered(openai_stub):
    clock = Clock()
    openai_stub.enqueue(text("once"))
    runs = service(openai_stub, clock)
    run_id = (await runs.handle("POST", "/runs", ALICE, json.dumps({"instruction": "hi"}))).body["run_id"]
    assert runs.launched == [run_id]
    first = await runs.execute(run_id)
    again = await runs.execute(run_id)  # an at-least-once queue delivering twice
    assert first.status == again.status == "succeeded"
    assert len(openai_stub.chat_requests) == 1
    assert first.result["result"][-1] == {"type": "result", "content": "once"}
    await runs.backend.aclose()


async def test_a_cancelled_queued_run_never_starts(openai_stub):
    clock = Clock()
    runs = service(openai_stub, clock)
    run_id = (await runs.handle("POST", "/runs", ALICE, json.dumps({"instruction": "hi"}))).body["run_id"]
    assert (await runs.handle("DELETE", f"/runs/{run_id}", ALICE, None)).body["status"] == "cancelled"
    state = await runs.execute(run_id)
    assert state.status == "cancelled" and openai_stub.chat_requests == []
