"""The bridge on both serverless hubs, end to end: real agents (``BridgeAgent``, what ``connect_to_bridge``
and ``lmstudio-agent bridge agent`` run) over real loopback WebSockets to each hub's stand-in front, and
clients calling ``/execute`` and ``/runs`` on the same deployment. Where each stand-in's boundary is: see
cloudflare_hub.py and aws_hub.py. Every test runs against both hubs (the ``serverless_hub`` fixture)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from lmstudio_agent.bridge import BridgeRefusedError
from lmstudio_agent.bridge.relay import HEARTBEAT_FRAME
from lmstudio_agent.errors import ErrorCode
from lmstudio_agent.agent.messages import AgentMessage
from tests.bridge.helpers import Agents, echo

from .conftest import AUTH, TOOLS, token_of


async def start(agents: Agents, hub, agent_id: str, runner=echo, **options) -> object:
    # Keepalive pings as deployed agents send them, scaled down: moto and the Lambda threads load this one
    # machine, and a 0.3 s ping timeout would count a busy test process as a dead network.
    options = {"ping_interval": 2.0, "ping_timeout": 10.0, **options}
    return await agents.start(hub.url, runner, agent_id=agent_id, token=token_of(agent_id), tools=TOOLS, **options)


async def execute(hub, instruction: str, tools: list[str] | None = None) -> tuple[int, dict]:
    return await hub.request("POST", "/execute", {"instruction": instruction, "tools": tools or []}, AUTH)


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.02)


class Blocking:
    """A runner that signals when a task reaches it and never answers until released."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    async def __call__(self, instruction: str, tools: list[str], documents=None) -> list[AgentMessage]:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        return [AgentMessage(type="result", content=f"late: {instruction}")]


async def test_register_execute_and_leave(serverless_hub, agents):
    hub = serverless_hub
    status, body = await execute(hub, "nobody yet")
    assert status == 503 and body["code"] == "NO_AGENT_AVAILABLE"
    handle = await start(agents, hub, "agent-1")
    assert await hub.online() == ["agent-1"]
    status, body = await execute(hub, "hello", ["extract_data"])
    assert status == 200, body
    assert body["success"] is True and body["result"] == [{"type": "result", "content": "echo: hello [extract_data]"}]
    status, body = await execute(hub, "x", ["no_such_tool"])
    assert status == 400 and body["code"] == "UNKNOWN_TOOL"
    status, body = await hub.request("POST", "/execute", {"instruction": "x"}, {"Authorization": "Bearer wrong"})
    assert status == 403 and body["code"] == "FORBIDDEN"
    handle.task.cancel()  # a clean close: the agent leaves the directory
    await asyncio.gather(handle.task, return_exceptions=True)
    await until(lambda: _empty(hub))
    status, body = await execute(hub, "gone?")
    assert status == 503 and body["code"] == "NO_AGENT_AVAILABLE"


async def _empty(hub) -> bool:
    return await hub.online() == []


async def test_tokens_register_only_their_own_agent_and_tools(serverless_hub, agents):
    hub = serverless_hub
    with pytest.raises(BridgeRefusedError) as wrong:
        await agents.start(hub.url, agent_id="agent-1", token="not-a-token-of-anyone-0000", tools=TOOLS)
    assert wrong.value.code is ErrorCode.FORBIDDEN
    with pytest.raises(BridgeRefusedError) as other:
        await agents.start(hub.url, agent_id="agent-2", token=token_of("agent-1"), tools=TOOLS)
    assert other.value.code is ErrorCode.FORBIDDEN and "belongs to agent 'agent-1'" in other.value.message
    with pytest.raises(BridgeRefusedError) as tools:
        await agents.start(hub.url, agent_id="limited", token=token_of("limited"), tools=TOOLS)
    assert tools.value.code is ErrorCode.FORBIDDEN and "analyze_sentiment" in tools.value.message
    await agents.start(hub.url, agent_id="limited", token=token_of("limited"), tools=("extract_data",))
    assert await hub.online() == ["limited"]


async def test_a_second_connection_with_the_same_id_is_refused_and_the_first_keeps_serving(serverless_hub, agents):
    hub = serverless_hub
    await start(agents, hub, "agent-1")
    with pytest.raises(BridgeRefusedError) as twice:
        await start(agents, hub, "agent-1")
    assert twice.value.code is ErrorCode.FORBIDDEN and "already connected" in twice.value.message
    status, body = await execute(hub, "still there?")
    assert status == 200 and body["result"][0]["content"].startswith("echo: still there?")
    assert await hub.online() == ["agent-1"]


async def test_an_agent_killed_mid_task_hands_the_task_to_another(serverless_hub, agents):
    hub = serverless_hub
    blocking = Blocking()
    victim = await start(agents, hub, "agent-1", blocking)
    call = asyncio.ensure_future(execute(hub, "survive this"))
    await asyncio.wait_for(blocking.started.wait(), 5)
    survivor = await start(agents, hub, "agent-2")
    victim.kill()  # the TCP connection drops: no close frame, no result
    status, body = await asyncio.wait_for(call, 10)
    assert status == 200, body
    assert body["result"] == [{"type": "result", "content": "echo: survive this []"}]
    assert survivor.agent.tasks_done == 1 and victim.agent.tasks_done == 0
    await until(lambda: _only(hub, ["agent-2"]))


async def _only(hub, ids: list[str]) -> bool:
    return await hub.online() == ids


async def test_a_lost_agent_with_no_other_fails_with_a_code_not_silence(serverless_hub, agents):
    hub = serverless_hub
    blocking = Blocking()
    victim = await start(agents, hub, "agent-1", blocking)
    call = asyncio.ensure_future(execute(hub, "nobody else"))
    await asyncio.wait_for(blocking.started.wait(), 5)
    victim.kill()
    status, body = await asyncio.wait_for(call, 10)
    assert status == 500 and body["code"] == "UPSTREAM_ERROR" and "agent-1" in body["error"]


async def test_an_agent_that_does_not_answer_in_time_is_a_504(agents):
    from .conftest import make_hub

    for kind in ("cloudflare", "aws"):
        hub = await make_hub(kind, deadline_seconds=1.0)
        try:
            blocking = Blocking()
            handle = await start(agents, hub, f"agent-{1 if kind == 'cloudflare' else 2}", blocking)
            status, body = await asyncio.wait_for(execute(hub, "too slow"), 10)
            assert status == 504 and body["code"] == "UPSTREAM_TIMEOUT", (kind, body)
            blocking.release.set()
            handle.task.cancel()
        finally:
            await hub.stop()


async def test_the_agent_reconnects_by_itself_and_serves_again(serverless_hub, agents):
    hub = serverless_hub
    handle = await start(agents, hub, "agent-1")
    assert handle.agent.registrations == 1
    handle.agent.connection.transport.abort()  # the network drops the connection; the process lives on
    await until(lambda: _registered_twice(handle))
    status, body = await execute(hub, "after the reconnect")
    assert status == 200, body
    assert await hub.online() == ["agent-1"]


async def _registered_twice(handle) -> bool:
    return handle.agent.registrations >= 2 and handle.agent.registered.is_set()


async def test_the_hub_rebuilds_its_state_after_hibernation(serverless_hub, agents):
    hub = serverless_hub
    await start(agents, hub, "agent-1")
    built = hub.constructed()
    assert hub.hibernate("agent-1")  # the object (or the Lambda container) forgets everything in memory
    status, body = await execute(hub, "wake up")
    assert status == 200, body
    assert body["result"][0]["content"] == "echo: wake up []"
    assert hub.constructed() > built  # a new instance, rebuilt from the sockets' attachments / the tables


async def test_a_stale_connection_leaves_the_directory(serverless_hub, agents):
    hub = serverless_hub
    stale = await start(agents, hub, "agent-1")
    await hub.make_stale("agent-1")  # the platform lost the socket without telling the hub
    assert await hub.online() == ["agent-1"]  # nobody told the directory yet
    status, body = await execute(hub, "to a ghost")
    assert status == 500 and body["code"] == "UPSTREAM_ERROR", body
    assert await hub.online() == []  # the failed send removed it
    fresh = await start(agents, hub, "agent-2")
    status, body = await execute(hub, "to whoever is there")
    assert status == 200, body
    assert fresh.agent.tasks_done == 1 and stale.agent.tasks_done == 0


@pytest.mark.parametrize("kind", ["cloudflare", "aws"])
async def test_ten_agents_two_hundred_tasks_none_lost_none_twice(kind, agents):
    from .conftest import make_hub

    # What is asserted is that no task is lost or answered twice, not speed: a generous deadline, since moto and
    # the Lambda threads share this machine's two CPUs with the rest of the suite.
    hub = await make_hub(kind, deadline_seconds=90.0)
    try:
        await _ten_agents_two_hundred_tasks(hub, agents)
    finally:
        await agents.close()
        await hub.stop()


async def _ten_agents_two_hundred_tasks(hub, agents) -> None:
    handles = [await start(agents, hub, f"agent-{n}", max_concurrency=4) for n in range(1, 11)]
    semaphore = asyncio.Semaphore(20)  # clients calling at once

    async def one(n: int) -> str:
        async with semaphore:
            status, body = await execute(hub, f"task {n}")
        assert status == 200, body
        return body["result"][0]["content"]

    answers = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(200))), 300)
    assert sorted(answers) == sorted(f"echo: task {n} []" for n in range(200))
    # Each client got one answer, its own (above). Delivery to agents is at least once, as on the process hub:
    # a task runs twice only when the connection it was on was lost (on this loaded machine a keepalive may
    # time out), and the second run's answer is the one that counts.
    reconnects = sum(h.agent.registrations - 1 for h in handles)
    assert 200 <= sum(h.agent.tasks_done for h in handles) <= 200 + 4 * reconnects
    spread = Counter({h.agent.agent_id: h.agent.tasks_done for h in handles})
    assert len([a for a, done in spread.items() if done]) >= 5, spread


async def test_async_runs_go_through_the_bridge(serverless_hub, agents):
    hub = serverless_hub
    await start(agents, hub, "agent-1")
    status, created = await hub.request("POST", "/runs", {"instruction": "in the background"}, AUTH)
    assert status == 202, created
    run_id = created["run_id"]
    for _ in range(200):
        await hub.tick()
        status, state = await hub.request("GET", f"/runs/{run_id}", None, AUTH)
        assert status == 200, state
        if state["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.05)
    assert state["status"] == "succeeded", state
    assert state["result"]["result"][-1] == {"type": "result", "content": "echo: in the background []"}


async def test_heartbeats(serverless_hub, agents):
    """The agent's text heartbeat is answered by the platform (Cloudflare: setWebSocketAutoResponse, no
    object woken) or by the $default route (AWS): either way the agent gets its ack."""
    hub = serverless_hub
    handle = await start(agents, hub, "agent-1")
    built = hub.constructed()
    hub.hibernate("agent-1")
    await handle.agent.connection.send(HEARTBEAT_FRAME)
    await until(lambda: _acked(hub), timeout=30)  # a loaded 2-core machine can take seconds
    if hub.name == "cloudflare":
        assert hub.constructed() == built  # the object stayed asleep


async def _acked(hub) -> bool:
    return hub.heartbeats_answered() >= 1


async def test_the_agent_sends_its_own_heartbeat_and_the_hub_acks_it(serverless_hub, agents):
    """API Gateway closes a connection idle for 10 minutes: the agent's text heartbeat (every 240 s by default)
    keeps it open. Here every 0.1 s."""
    hub = serverless_hub
    await start(agents, hub, "agent-1", heartbeat_interval=0.1)
    async with asyncio.timeout(5):
        while hub.heartbeats_answered() < 3:
            await asyncio.sleep(0.05)


async def test_large_results_within_each_hubs_message_limit(serverless_hub, agents):
    """API Gateway takes messages of at most 128 KB in frames of at most 32 KB: the agent sends a long result
    in fragments, and refuses one over the limit its hub named at registration with PAYLOAD_TOO_LARGE (the
    Worker's objects take 1 MiB, the protocol's own limit)."""
    hub = serverless_hub

    async def sized(instruction: str, tools: list[str], documents=None) -> list[AgentMessage]:
        return [AgentMessage(type="result", content="x" * int(instruction))]

    await start(agents, hub, "agent-1", sized)
    status, body = await execute(hub, str(60_000))
    assert status == 200 and len(body["result"][0]["content"]) == 60_000, body
    status, body = await execute(hub, str(200_000))
    if hub.name == "aws":
        assert status == 413 and body["code"] == "PAYLOAD_TOO_LARGE" and "131072" in body["error"], body
    else:
        assert status == 200 and len(body["result"][0]["content"]) == 200_000
