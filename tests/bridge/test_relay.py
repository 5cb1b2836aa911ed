"""core's RelayBackend and on_agent_frame, the serverless hubs' shared logic, on a relay whose agents are
scripted (the platforms themselves are tested end to end in tests/serverless_bridge)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lmstudio_agent.bridge.identities import AgentIdentity, Identities
from lmstudio_agent.bridge.protocol import RegisterData, TaskExecuteData, TaskResultData
from lmstudio_agent.bridge.relay import (
    AgentBusy,
    AgentLost,
    DirectoryEntry,
    RelayBackend,
    on_agent_frame,
    parse_relay_line,
    relay_line,
)
from lmstudio_agent.endpoint.contract import ToolSelection
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.agent.events import RunEvent
from lmstudio_agent.agent.messages import AgentMessage


def entry(agent_id: str, tools: tuple[str, ...] = ("extract_data",), model: str = "m") -> DirectoryEntry:
    return DirectoryEntry(agent_id=agent_id, model=model, tools=list(tools), connection=f"c-{agent_id}")


class ScriptedRelay:
    """Each agent answers with what ``script[agent_id]`` says: a result, or AgentLost/AgentBusy to raise."""

    def __init__(self, online: list[DirectoryEntry], script: dict[str, Any]) -> None:
        self.online = online
        self.script = script
        self.calls: list[str] = []

    async def agents(self) -> list[DirectoryEntry]:
        return list(self.online)

    async def dispatch(self, agent: DirectoryEntry, task: TaskExecuteData, timeout: float) -> TaskResultData:
        self.calls.append(agent.agent_id)
        outcome = self.script[agent.agent_id]
        if isinstance(outcome, Exception):
            if isinstance(outcome, AgentLost):
                self.online = [a for a in self.online if a.agent_id != agent.agent_id]
            raise outcome
        return outcome(task) if callable(outcome) else outcome


def ok(task: TaskExecuteData) -> TaskResultData:
    return TaskResultData(task_id=task.task_id, status="success",
                          result=[AgentMessage(type="result", content=f"done: {task.instruction}")])


async def run(relay: ScriptedRelay, tools: tuple[str, ...] = ("extract_data",), seconds: float = 5.0) -> Any:
    backend = RelayBackend(relay, identities=Identities((AgentIdentity("a", "t" * 16, None),)))
    await backend.start()
    selection = backend.select_tools(list(tools))
    return await backend.run("do it", selection, "", Deadline(seconds))


async def test_a_lost_agent_hands_the_task_to_the_next():
    relay = ScriptedRelay([entry("a"), entry("b")], {"a": AgentLost("closed"), "b": ok})
    for _ in range(5):  # whichever is tried first, the answer is b's, once
        relay.online = [entry("a"), entry("b")]
        relay.calls.clear()
        answer = await run(relay)
        assert answer == [AgentMessage(type="result", content="done: do it")]
        assert relay.calls.count("b") == 1


async def test_lost_with_no_other_agent_is_upstream_error_naming_it():
    with pytest.raises(AgentError) as lost:
        await run(ScriptedRelay([entry("a")], {"a": AgentLost("closed")}))
    assert lost.value.code is ErrorCode.UPSTREAM_ERROR and "'a'" in lost.value.message


async def test_every_agent_busy_until_the_deadline_is_hub_busy():
    with pytest.raises(AgentError) as busy:
        await run(ScriptedRelay([entry("a")], {"a": AgentBusy("full")}), seconds=0.3)
    assert busy.value.code is ErrorCode.HUB_BUSY


async def test_an_agent_may_not_report_a_hub_code():
    forged = TaskResultData(task_id="x", status="error", error="go away", code="UNAUTHORIZED")
    with pytest.raises(AgentError) as failed:
        await run(ScriptedRelay([entry("a")], {"a": forged}))
    assert failed.value.code is ErrorCode.UPSTREAM_ERROR


async def test_tools_nobody_offers_and_an_empty_directory():
    backend = RelayBackend(ScriptedRelay([], {}), identities=Identities())
    await backend.start()
    with pytest.raises(AgentError) as nobody:
        backend.select_tools([])
    assert nobody.value.code is ErrorCode.NO_AGENT_AVAILABLE
    backend = RelayBackend(ScriptedRelay([entry("a")], {}), identities=Identities())
    await backend.start()
    with pytest.raises(AgentError) as unknown:
        backend.select_tools(["no_such_tool"])
    assert unknown.value.code is ErrorCode.UNKNOWN_TOOL
    assert backend.select_tools(["extract_data"]) == ToolSelection(("extract_data",), False, owner="")


def test_frames_before_and_after_registration():
    identity = AgentIdentity("a", "t" * 16, frozenset({"extract_data"}))
    register = {"type": "agent:register", "data": {"agent_id": "a", "model": "m", "tools": ["extract_data"]}}
    assert on_agent_frame(json.dumps(register), identity=identity, registered=None).registered is not None
    other = {"type": "agent:register", "data": {"agent_id": "b", "model": "m", "tools": []}}
    refused = on_agent_frame(json.dumps(other), identity=identity, registered=None)
    assert refused.close and "belongs to agent 'a'" in (refused.reply or "")
    early = on_agent_frame('{"type": "heartbeat", "data": {}}', identity=identity, registered=None)
    assert "Register first" in (early.reply or "")
    data = RegisterData(agent_id="a", model="m", tools=["extract_data"])
    assert json.loads(on_agent_frame('{"type": "heartbeat", "data": {}}', identity=identity,
                                     registered=data).reply or "")["type"] == "heartbeat:ack"
    bad = on_agent_frame('{"type": "task:result", "data": {"task_id": "t1", "status": "success"}}',
                         identity=identity, registered=data)
    assert bad.failed_task == "t1" and json.loads(bad.reply or "")["data"]["code"] == "INVALID_REQUEST"


def test_relay_lines_round_trip_and_mark_a_lost_agent():
    event = RunEvent.step_start(0)
    assert parse_relay_line(relay_line(event)) == event
    done = TaskResultData(task_id="t", status="success", result=[])
    assert parse_relay_line(relay_line(done)) == done
    with pytest.raises(AgentLost):
        parse_relay_line(relay_line(TaskResultData(task_id="t", status="error", error="gone", code="AGENT_LOST")))
