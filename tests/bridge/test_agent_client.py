"""The agent side (BridgeAgent / serve_agent) against a real hub, and against a scripted hub for the frames a
well-behaved hub never sends."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from websockets.asyncio.server import serve

from lmstudio_agent.bridge import BridgeRefusedError, serve_agent
from lmstudio_agent.errors import AgentError, BridgeConnectionError, ErrorCode
from lmstudio_agent.agent.messages import AgentMessage

from .helpers import MODEL, TOKEN, echo, wait_registered


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


async def test_unreachable_bridge_at_first_connect_raises_connection_error():
    url = closed_port_url()
    with pytest.raises(ConnectionError) as info:
        await asyncio.wait_for(serve_agent(echo, bridge_url=url, agent_id="a", token=TOKEN, model=MODEL), 10)
    error = info.value
    assert isinstance(error, BridgeConnectionError) and isinstance(error, AgentError)
    assert error.code is ErrorCode.CONNECTION_FAILED
    assert url in error.message and "not reachable" in error.message


async def test_a_url_that_is_not_websocket_is_a_connection_error():
    with pytest.raises(BridgeConnectionError, match="Invalid AI Bridge URL"):
        await serve_agent(echo, bridge_url="http://127.0.0.1:1/", agent_id="a", token=TOKEN, model=MODEL)


@pytest.mark.parametrize("token, code", [("wrong", ErrorCode.FORBIDDEN), (None, ErrorCode.UNAUTHORIZED)])
async def test_refused_token_raises_and_does_not_retry(hub, token, code):
    with pytest.raises(BridgeRefusedError) as info:
        await asyncio.wait_for(serve_agent(echo, bridge_url=hub.url, agent_id="a", token=token, model=MODEL), 10)
    assert info.value.code is code and isinstance(info.value, ConnectionError)
    assert "refused" in info.value.message


async def test_duplicate_agent_id_at_first_connect_raises(hub, agents):
    await agents.start(hub.url, agent_id="twin")
    with pytest.raises(BridgeRefusedError) as info:
        await asyncio.wait_for(serve_agent(echo, bridge_url=hub.url, agent_id="twin", token=TOKEN, model=MODEL), 10)
    assert info.value.code is ErrorCode.FORBIDDEN and "already connected" in info.value.message
    assert (await hub.submit("still served"))[0].content.startswith("echo: still served")


async def test_serves_tasks_with_the_named_tools(hub, agents):
    seen: list[tuple[str, list[str]]] = []

    async def runner(instruction: str, tools: list[str]) -> list[AgentMessage]:
        seen.append((instruction, tools))
        return [AgentMessage(type="action", tool=tools[0], args={"text": instruction}), AgentMessage(type="result", content="ok")]

    await agents.start(hub.url, runner, agent_id="tooled")
    (info,) = hub.agents()
    assert info.tools == ("analyze_sentiment", "extract_data") and info.max_concurrency == 4
    result = await hub.submit("Great product!", ["analyze_sentiment"])
    assert [m.to_dict() for m in result] == [
        {"type": "action", "tool": "analyze_sentiment", "args": {"text": "Great product!"}},
        {"type": "result", "content": "ok"},
    ]
    assert seen == [("Great product!", ["analyze_sentiment"])]


async def test_a_failing_task_is_reported_with_its_code_and_the_agent_keeps_serving(hub, agents):
    async def runner(instruction: str, tools: list[str]) -> list[AgentMessage]:
        if instruction == "tool error":
            raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED, "extract_data raised ValueError: bad schema")
        if instruction == "bug":
            raise KeyError("secret internal detail")
        if instruction == "garbage":
            return [{"type": "shout"}]  # type: ignore[list-item]
        return await echo(instruction, tools)

    handle = await agents.start(hub.url, runner)
    cases = [
        ("tool error", ErrorCode.TOOL_EXECUTION_FAILED, "extract_data raised ValueError: bad schema"),
        ("bug", ErrorCode.INTERNAL_ERROR, "Internal error in the agent"),
        ("garbage", ErrorCode.MODEL_OUTPUT_INVALID, "The agent produced a malformed transcript"),
    ]
    for instruction, code, message in cases:
        with pytest.raises(AgentError) as info:
            await hub.submit(instruction)
        assert info.value.code is code and info.value.message == message
    assert (await hub.submit("after the failures"))[0].content.startswith("echo: after the failures")
    assert handle.agent.registrations == 1  # the same connection all along


async def test_reconnects_with_backoff_after_a_dropped_connection(hub, agents):
    handle = await agents.start(hub.url, agent_id="bouncy")
    handle.agent.connection.transport.abort()
    await asyncio.sleep(0.05)
    await wait_registered(handle)
    for _ in range(100):
        if handle.agent.registrations == 2 and [a.agent_id for a in hub.agents()] == ["bouncy"]:
            break
        await asyncio.sleep(0.02)
    assert handle.agent.registrations == 2
    assert (await hub.submit("back?"))[0].content.startswith("echo: back?")


async def test_hub_restart_agents_reconnect_and_register_again(make_hub, agents):
    hub = await make_hub()
    port = hub.port
    handles = [await agents.start(hub.url, agent_id=f"home-{i}") for i in range(3)]
    await hub.stop()
    for _ in range(50):
        if not any(h.agent.registered.is_set() for h in handles):
            break
        await asyncio.sleep(0.02)
    restarted = await make_hub(port=port)
    for handle in handles:
        await wait_registered(handle)
    assert sorted(a.agent_id for a in restarted.agents()) == ["home-0", "home-1", "home-2"]
    assert all(h.agent.registrations == 2 for h in handles)
    results = await asyncio.gather(*(restarted.submit(f"after restart {i}") for i in range(6)))
    assert [r[0].content.split(" [")[0] for r in results] == [f"echo: after restart {i}" for i in range(6)]


async def test_the_hub_cancel_stops_the_run(make_hub, agents):
    hub = await make_hub(task_timeout=0.3, max_attempts=1)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(instruction: str, tools: list[str]) -> list[AgentMessage]:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return []

    handle = await agents.start(hub.url, stuck)
    with pytest.raises(AgentError) as info:
        await hub.submit("hang")
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT
    await asyncio.wait_for(cancelled.wait(), 2)
    assert started.is_set() and handle.agent.registered.is_set()


async def test_a_lost_connection_cancels_running_tasks(hub, agents):
    cancelled = asyncio.Event()

    async def stuck(instruction: str, tools: list[str]) -> list[AgentMessage]:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return []

    handle = await agents.start(hub.url, stuck, agent_id="stuck")
    submitted = asyncio.create_task(hub.submit("x"))
    await asyncio.sleep(0.1)
    handle.agent.connection.transport.abort()
    await asyncio.wait_for(cancelled.wait(), 2)
    submitted.cancel()


async def test_an_oversized_result_is_reported_not_sent(hub, agents):
    async def verbose(instruction: str, tools: list[str]) -> list[AgentMessage]:
        return [AgentMessage(type="result", content="x" * 5000)]

    await agents.start(hub.url, verbose, max_frame_bytes=4096)
    with pytest.raises(AgentError) as info:
        await hub.submit("say a lot")
    assert info.value.code is ErrorCode.PAYLOAD_TOO_LARGE and "4096 bytes" in info.value.message


class ScriptedHub:
    """A bare websockets server that registers any agent and then sends the frames a test gives it."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[dict] = asyncio.Queue()
        self.connected: asyncio.Queue = asyncio.Queue()

    async def handler(self, conn) -> None:
        register = json.loads(await conn.recv())
        await conn.send(json.dumps({"type": "registration:success", "data": {"agent_id": register["data"]["agent_id"]}}))
        await self.connected.put(conn)
        async for raw in conn:
            await self.received.put(json.loads(raw))


async def test_tools_outside_the_registered_set_are_refused_by_the_agent(agents):
    hub = ScriptedHub()
    calls: list[str] = []

    async def runner(instruction: str, tools: list[str]) -> list[AgentMessage]:
        calls.append(instruction)
        return [AgentMessage(type="result", content="ran")]

    async with serve(hub.handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        await agents.start(url, runner, tools=("analyze_sentiment",))
        conn = await asyncio.wait_for(hub.connected.get(), 5)
        frames = [
            {"type": "task:execute", "data": {"task_id": "t1", "instruction": "wipe", "tools": ["rm_rf", "analyze_sentiment"]}},
            {"type": "task:wobble", "data": {}},  # unknown: logged, ignored, the agent keeps serving
            {"type": "task:execute", "data": {"task_id": "t2", "instruction": "fine", "tools": ["analyze_sentiment"]}},
        ]
        for frame in frames:
            await conn.send(json.dumps(frame))
        refused = await asyncio.wait_for(hub.received.get(), 5)
        assert refused["type"] == "task:result" and refused["data"]["task_id"] == "t1"
        assert refused["data"]["status"] == "error" and refused["data"]["code"] == "UNKNOWN_TOOL"
        assert "rm_rf" in refused["data"]["error"] and "registered: analyze_sentiment" in refused["data"]["error"]
        ran = await asyncio.wait_for(hub.received.get(), 5)
        assert ran["data"] == {"task_id": "t2", "status": "success", "result": [{"type": "result", "content": "ran"}]}
        assert calls == ["fine"]


async def test_serve_agent_registers_what_it_is_given(hub):
    task = asyncio.create_task(
        serve_agent(
            echo, bridge_url=hub.url, agent_id="full", token=TOKEN, model=MODEL, capabilities=["llm"],
            tools=["store_invoice", "extract_data"], side_effect_tools=["store_invoice"], max_concurrency=3,
        )
    )
    for _ in range(100):
        if hub.agents():
            break
        await asyncio.sleep(0.02)
    (info,) = hub.agents()
    assert (info.agent_id, info.capabilities, info.tools, info.max_concurrency) == ("full", ("llm",), ("extract_data", "store_invoice"), 3)
    assert hub.has_side_effects(["store_invoice"]) and not hub.has_side_effects(["extract_data"])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_task_sent_again_after_a_cancel_runs_again(agents):
    # A hub may send a cancelled task again (a peer reconnecting, another hub's retry policy), usually before
    # the cancelled run has unwound. The agent must run it again, not drop it as a repeat. (This hub never
    # re-sends a task to the connection that timed out on it, so a scripted hub sends the frames.)
    hub = ScriptedHub()
    calls = 0

    async def first_call_hangs(instruction: str, tools: list[str]) -> list[AgentMessage]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(30)
        return [AgentMessage(type="result", content=f"attempt {calls}")]

    async with serve(hub.handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        await agents.start(url, first_call_hangs, max_concurrency=1)
        conn = await asyncio.wait_for(hub.connected.get(), 5)
        execute = {"type": "task:execute", "data": {"task_id": "t1", "instruction": "retry me", "tools": []}}
        await conn.send(json.dumps(execute))
        await asyncio.sleep(0.1)
        await conn.send(json.dumps({"type": "task:cancel", "data": {"task_id": "t1", "reason": "timeout"}}))
        await conn.send(json.dumps(execute))
        result = await asyncio.wait_for(hub.received.get(), 5)
        assert result["data"]["result"][0]["content"] == "attempt 2" and calls == 2


async def test_connection_registration_and_each_task_are_logged_at_info(hub, agents, caplog):
    caplog.set_level("INFO", logger="lmstudio_agent.bridge.agent")
    handle = await agents.start(hub.url, agent_id="logged", tools=["search"])
    await wait_registered(handle)
    await hub.submit("a private instruction", tools=["search"])
    for _ in range(50):  # the result is sent before the "done" line is logged
        if any("done in" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name == "lmstudio_agent.bridge.agent" and r.levelname == "INFO"]
    assert any(f"logged connected to {hub.url}" in line for line in lines), lines
    assert any("logged registered with" in line and "search" in line and "waiting for tasks" in line for line in lines)
    assert any("task" in line and "received (21 characters, tools: search)" in line for line in lines), lines
    assert any("done in" in line and "success" in line for line in lines), lines
    assert not any("a private instruction" in line for line in lines)  # the client's text is never logged
