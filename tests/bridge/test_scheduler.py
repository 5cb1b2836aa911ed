"""The hub's scheduler on its own, without a socket: the retry and requeue rule where it lives
(lmstudio_hub.scheduler). The frames it would send are collected; the agents are registry entries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from lmstudio_agent.bridge.protocol import parse_frame
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_hub.scheduler import Scheduler
from lmstudio_hub.state import Agent, AgentRegistry, HubSettings, HubStats

from .helpers import MODEL

# BridgeHub's defaults, but a deadline of 5s so that a task a broken rule leaves waiting fails the test quickly.
SETTINGS: dict[str, Any] = dict(
    default_model="", max_attempts=3, task_timeout=60.0, default_deadline=5.0, max_queue=256, max_agent_concurrency=64,
    ping_interval=None, ping_timeout=None, close_timeout=2.0, register_timeout=10.0, max_frame_bytes=1 << 20,
    retry_after_seconds=1,
)


class Harness:
    def __init__(self, **settings: Any) -> None:
        self.settings = HubSettings(**{**SETTINGS, **settings})
        self.agents = AgentRegistry()
        self.stats = HubStats()
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.serving = True
        self.scheduler = Scheduler(self.settings, self.agents, self.stats, self._send, lambda: self.serving)

    def _send(self, agent: Agent, text: str) -> None:
        self.sent.append((agent.agent_id, json.loads(text)))

    def add(self, agent_id: str, slots: int = 1) -> Agent:
        agent = Agent(agent_id, conn=None, model=MODEL, capabilities=(), tools=frozenset(),  # type: ignore[arg-type]
                      side_effect_tools=frozenset(), max_concurrency=slots)
        self.agents.add(agent)
        return agent

    def lose(self, agent: Agent) -> None:
        """What the transport does when a connection ends."""
        self.agents.remove(agent)
        self.scheduler.agent_lost(agent, "connection lost")
        self.scheduler.drain()

    def sent_of(self, kind: str) -> list[tuple[str, str]]:
        return [(agent_id, frame["data"]["task_id"]) for agent_id, frame in self.sent if frame["type"] == kind]

    def answer(self, agent: Agent, task_id: str, content: str) -> None:
        frame = {"type": "task:result", "data": {"task_id": task_id, "status": "success",
                                                 "result": [{"type": "result", "content": content}]}}
        assert self.scheduler.on_result(agent, parse_frame(json.dumps(frame))) is None

    async def submit(self, instruction: str) -> asyncio.Task[Any]:
        run = asyncio.create_task(self.scheduler.submit(instruction))
        await asyncio.sleep(0)  # submitted: dispatched or queued
        return run


async def test_a_lost_agents_task_goes_to_another_agent_and_its_answer_wins():
    h = Harness()
    a, b = h.add("a"), h.add("b")
    run = await h.submit("x")
    ((first, task_id),) = h.sent_of("task:execute")
    assert first == "a"
    h.lose(a)
    assert h.sent_of("task:execute") == [("a", task_id), ("b", task_id)]
    assert h.stats.requeued == 1 and len(a.active) == 0 and task_id in b.active
    h.answer(b, task_id, "from b")
    assert [m.content for m in await run] == ["from b"]
    assert h.stats.completed == 1 and h.stats.failed == 0 and len(b.active) == 0


async def test_a_retry_goes_ahead_of_the_tasks_queued_after_it():
    h = Harness()
    a, b = h.add("a"), h.add("b")
    runs = [await h.submit(name) for name in ("t1", "t2", "t3")]
    t1, t2 = (task_id for _, task_id in h.sent_of("task:execute"))
    assert h.scheduler.queued == 1  # t3: both agents are full
    h.lose(a)  # t1 waits too, and it is older than t3
    assert h.stats.requeued == 1 and h.scheduler.queued == 2
    h.answer(b, t2, "t2")
    assert h.sent_of("task:execute")[2:] == [("b", t1)]  # b's free slot: the retry first
    h.answer(b, t1, "t1")
    (t3,) = h.sent_of("task:execute")[3:]
    h.answer(b, t3[1], "t3")
    assert [(await run)[0].content for run in runs] == ["t1", "t2", "t3"]
    assert h.scheduler.queued == 0 and h.stats.completed == 3


async def test_a_connection_never_gets_the_same_task_again():
    h = Harness()
    a, b = h.add("a"), h.add("b")
    runs = [await h.submit(name) for name in ("t1", "t2", "t3")]
    t1, t2 = (task_id for _, task_id in h.sent_of("task:execute"))
    # a's result for t1 is invalid: a is free again, but not for t1, which waits for b; t3 takes a's slot.
    h.scheduler.on_invalid_result(a, t1)
    assert h.stats.requeued == 1 and h.scheduler.queued == 1
    (t3,) = h.sent_of("task:execute")[2:]
    assert t3[0] == "a"
    h.answer(b, t2, "t2")
    assert h.sent_of("task:execute")[3:] == [("b", t1)]
    h.answer(b, t1, "t1")
    h.answer(a, t3[1], "t3")
    assert [(await run)[0].content for run in runs] == ["t1", "t2", "t3"]


async def test_when_the_attempts_are_spent_the_task_fails_naming_each_failure():
    h = Harness(max_attempts=2)
    a, b, c = h.add("a"), h.add("b"), h.add("c")
    run = await h.submit("x")
    h.lose(a)
    h.lose(b)
    with pytest.raises(AgentError) as info:
        await run
    assert info.value.code is ErrorCode.UPSTREAM_ERROR
    assert "after 2 attempt(s)" in info.value.message
    assert "agent 'a' disconnected" in info.value.message and "agent 'b' disconnected" in info.value.message
    assert [agent for agent, _ in h.sent_of("task:execute")] == ["a", "b"] and not c.active
    assert h.stats.failed == 1 and h.stats.requeued == 1


async def test_an_attempt_past_task_timeout_is_cancelled_and_its_retry_times_out():
    h = Harness(max_attempts=2, task_timeout=0.05)
    h.add("a")
    h.add("b")
    run = await h.submit("x")
    with pytest.raises(AgentError) as info:
        await asyncio.wait_for(run, 5)
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT
    assert [agent for agent, _ in h.sent_of("task:execute")] == ["a", "b"]
    cancels = [frame["data"] for _, frame in h.sent if frame["type"] == "task:cancel"]
    assert [c["reason"] for c in cancels] == ["no result within 0.05s"] * 2


async def test_no_retry_once_the_hub_stops_serving():
    h = Harness()
    a, _ = h.add("a"), h.add("b")
    run = await h.submit("x")
    h.serving = False
    h.lose(a)
    with pytest.raises(AgentError) as info:
        await run
    assert info.value.code is ErrorCode.UPSTREAM_ERROR and "after 1 attempt(s)" in info.value.message
    assert len(h.sent_of("task:execute")) == 1 and h.stats.requeued == 0
