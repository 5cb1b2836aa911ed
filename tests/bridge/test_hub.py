"""The hub over real loopback WebSocket connections: registration, auth, dispatch, results, and everything an
agent can get wrong. Agents here are hand-driven raw clients, so each frame is the test's own."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode

from .helpers import MODEL, raw_agent, raw_connect, recv_json, register_frame, send_json


async def expect_closed(conn, timeout: float = 5.0) -> None:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(conn.recv(), timeout)


async def answer(conn, task_id: str, content: str) -> None:
    await send_json(
        conn,
        {"type": "task:result", "data": {"task_id": task_id, "status": "success", "result": [{"type": "result", "content": content}]}},
    )


# ------------------------------------------------------------------------------------------- registration


async def test_registration_with_the_reference_frame(hub):
    conn = await raw_connect(hub.url)
    # The reference's frame exactly: no tools, no max_concurrency.
    await send_json(
        conn,
        {"type": "agent:register", "data": {"agent_id": "lm-studio-agent-1", "capabilities": ["llm", "rag", "tool-use"], "model": MODEL}},
    )
    assert await recv_json(conn) == {"type": "registration:success", "data": {"agent_id": "lm-studio-agent-1"}}
    (info,) = hub.agents()
    assert (info.agent_id, info.model, info.capabilities, info.tools, info.max_concurrency) == (
        "lm-studio-agent-1", MODEL, ("llm", "rag", "tool-use"), (), 1,
    )
    await conn.close()


@pytest.mark.parametrize(
    "token, status, code",
    [(None, 401, "UNAUTHORIZED"), ("not-the-token", 403, "FORBIDDEN")],
    ids=["no-token", "wrong-token"],
)
async def test_auth_refused_in_the_handshake(hub, token, status, code):
    with pytest.raises(InvalidStatus) as info:
        await raw_connect(hub.url, token=token)
    response = info.value.response
    assert response.status_code == status
    body = json.loads(response.body)
    assert body["code"] == code and body["success"] is False and body["error"]
    assert response.headers["Content-Type"] == "application/json"
    assert hub.agents() == []


async def test_a_hub_without_a_token_refuses_to_exist():
    from lmstudio_hub import BridgeHub

    with pytest.raises(ValueError, match="token"):
        BridgeHub("")


async def test_duplicate_agent_id_is_refused_and_the_first_keeps_working(hub):
    first = await raw_agent(hub.url, "dup")
    second = await raw_connect(hub.url)
    await send_json(second, register_frame("dup"))
    refusal = await recv_json(second)
    assert refusal["type"] == "registration:error"
    assert refusal["data"]["code"] == "FORBIDDEN" and "already connected" in refusal["data"]["error"]
    await expect_closed(second)
    assert second.close_code == 1008

    submitted = asyncio.create_task(hub.submit("still mine?"))
    task = await recv_json(first)
    await answer(first, task["data"]["task_id"], "yes")
    assert (await submitted)[0].content == "yes"
    await first.close()


async def test_invalid_registration_can_be_corrected(hub):
    conn = await raw_connect(hub.url)
    await send_json(conn, {"type": "agent:register", "data": {"agent_id": "x"}})
    refusal = await recv_json(conn)
    assert refusal["type"] == "registration:error" and refusal["data"]["code"] == "INVALID_REQUEST"
    assert "data.model" in refusal["data"]["error"]
    await send_json(conn, register_frame("x"))
    assert (await recv_json(conn))["type"] == "registration:success"
    await conn.close()


async def test_register_first_then_timeout(make_hub):
    hub = await make_hub(register_timeout=0.5)
    conn = await raw_connect(hub.url)
    await send_json(conn, {"type": "heartbeat", "data": {}})
    error = await recv_json(conn)
    assert error["type"] == "error" and "Register first" in error["data"]["error"]
    refusal = await recv_json(conn)
    assert refusal["type"] == "registration:error" and "No agent:register within" in refusal["data"]["error"]
    await expect_closed(conn)


# ----------------------------------------------------------------------------------------------- dispatch


async def test_dispatch_and_result_in_the_reference_shapes(hub):
    conn = await raw_agent(hub.url, "worker")
    submitted = asyncio.create_task(hub.submit("Analyze sentiment of customer feedback", ["extract_data", "analyze_sentiment"]))
    task = await recv_json(conn)
    assert task["type"] == "task:execute"
    assert set(task["data"]) == {"task_id", "instruction", "tools"}
    assert task["data"]["instruction"] == "Analyze sentiment of customer feedback"
    assert task["data"]["tools"] == ["extract_data", "analyze_sentiment"]
    await answer(conn, task["data"]["task_id"], "Overall sentiment: Positive (0.85 confidence)")
    result = await submitted
    assert [m.to_dict() for m in result] == [{"type": "result", "content": "Overall sentiment: Positive (0.85 confidence)"}]
    assert hub.stats.completed == 1
    await conn.close()


@pytest.mark.parametrize(
    "error_data, code, message",
    [
        ({"error": "Model not loaded"}, ErrorCode.UPSTREAM_ERROR, "Model not loaded"),  # the reference's frame
        ({"error": "Model not loaded", "code": "MODEL_NOT_LOADED"}, ErrorCode.MODEL_NOT_LOADED, "Model not loaded"),
        ({"error": "tool blew up", "code": "TOOL_EXECUTION_FAILED"}, ErrorCode.TOOL_EXECUTION_FAILED, "tool blew up"),
        # An agent cannot answer with the hub's own codes, nor with codes this hub does not know.
        ({"error": "sneaky", "code": "UNAUTHORIZED"}, ErrorCode.UPSTREAM_ERROR, "sneaky"),
        ({"error": "odd", "code": "SOMETHING_NEW"}, ErrorCode.UPSTREAM_ERROR, "odd"),
    ],
)
async def test_error_results_reach_the_caller_with_their_code(hub, error_data, code, message):
    conn = await raw_agent(hub.url, "worker")
    submitted = asyncio.create_task(hub.submit("do it"))
    task = await recv_json(conn)
    await send_json(conn, {"type": "task:result", "data": {"task_id": task["data"]["task_id"], "status": "error", **error_data}})
    with pytest.raises(AgentError) as info:
        await submitted
    assert info.value.code is code and info.value.message == message
    await conn.close()


async def test_tasks_go_only_to_agents_with_the_model_and_tools(hub):
    sentiment = await raw_agent(hub.url, "sentiment", tools=["analyze_sentiment"])
    other_model = await raw_agent(hub.url, "other", model="another-model", tools=["extract_data", "analyze_sentiment"])
    submitted = asyncio.create_task(hub.submit("x", ["analyze_sentiment"], MODEL))
    task = await recv_json(sentiment)
    await answer(sentiment, task["data"]["task_id"], "from sentiment")
    assert (await submitted)[0].content == "from sentiment"

    submitted = asyncio.create_task(hub.submit("y", ["extract_data"], "another-model"))
    task = await recv_json(other_model)
    await answer(other_model, task["data"]["task_id"], "from other")
    assert (await submitted)[0].content == "from other"

    for tools, model in ((["extract_data"], MODEL), (["rm_rf"], None), ([], "missing-model")):
        with pytest.raises(AgentError) as info:
            await hub.submit("z", tools, model)
        assert info.value.code is ErrorCode.NO_AGENT_AVAILABLE
        assert "No connected agent has" in info.value.message
    await sentiment.close()
    await other_model.close()


async def test_no_agent_at_all(hub):
    with pytest.raises(AgentError) as info:
        await hub.submit("anyone?")
    assert info.value.code is ErrorCode.NO_AGENT_AVAILABLE and "0 agent(s) connected" in info.value.message


async def test_concurrency_limit_and_queue(make_hub):
    hub = await make_hub(max_queue=1)
    conn = await raw_agent(hub.url, "pair", max_concurrency=2)
    first = [asyncio.create_task(hub.submit(f"t{i}")) for i in range(2)]
    sent = [await recv_json(conn), await recv_json(conn)]
    queued = asyncio.create_task(hub.submit("t2"))
    await asyncio.sleep(0.05)
    assert hub.queued == 1
    # A full hub answers at once with HUB_BUSY, not a hang.
    with pytest.raises(AgentError) as info:
        await asyncio.wait_for(hub.submit("t3"), 1.0)
    assert info.value.code is ErrorCode.HUB_BUSY and info.value.details["retry_after"] == hub.retry_after_seconds
    # The agent never holds more than its limit: the queued task goes out only when a slot frees.
    with pytest.raises(asyncio.TimeoutError):
        await recv_json(conn, timeout=0.2)
    await answer(conn, sent[0]["data"]["task_id"], "done 0")
    third = await recv_json(conn)
    assert third["data"]["instruction"] == "t2"
    await answer(conn, sent[1]["data"]["task_id"], "done 1")
    await answer(conn, third["data"]["task_id"], "done 2")
    assert [(await t)[0].content for t in (*first, queued)] == ["done 0", "done 1", "done 2"]
    await conn.close()


async def test_queued_task_past_its_deadline_is_hub_busy(hub):
    conn = await raw_agent(hub.url, "busy")
    holding = asyncio.create_task(hub.submit("long", deadline=Deadline(5)))
    await recv_json(conn)
    with pytest.raises(AgentError) as info:
        await hub.submit("waits", deadline=Deadline(0.3))
    assert info.value.code is ErrorCode.HUB_BUSY and "stayed at its concurrency limit" in info.value.message
    assert hub.queued == 0
    holding.cancel()
    await conn.close()


# ------------------------------------------------------------------------------------------ bad frames


BAD_FRAMES = [
    pytest.param("{not json", "INVALID_REQUEST", "not valid JSON", id="not-json"),
    pytest.param("[]", "INVALID_REQUEST", "JSON object", id="not-object"),
    pytest.param('{"type": "task:explode", "data": {}}', "INVALID_REQUEST", "Unknown message type", id="unknown-type"),
    pytest.param('{"type": "task:execute", "data": {"task_id": "t", "instruction": "x"}}', "INVALID_REQUEST",
                 "sent by the hub", id="wrong-direction"),
    pytest.param(json.dumps(register_frame("again")), "INVALID_REQUEST", "already registered", id="second-register"),
    pytest.param(b"\xff\xfe binary junk", "INVALID_REQUEST", "not valid JSON", id="binary-junk"),
    pytest.param('{"type": "task:result", "data": {"task_id": "nope", "status": "success", "result": []}}',
                 "NOT_FOUND", "Unknown task_id", id="unknown-task"),
    pytest.param(json.dumps({"type": "heartbeat", "data": {}, "metadata": {"pad": "x" * 3000}}), "PAYLOAD_TOO_LARGE",
                 "exceeds the limit", id="oversized"),
]


@pytest.mark.parametrize("raw, code, fragment", BAD_FRAMES)
async def test_bad_frames_get_an_error_and_everything_keeps_working(make_hub, raw, code, fragment, caplog):
    hub = await make_hub(max_frame_bytes=2048)
    bad = await raw_agent(hub.url, "bad", tools=["analyze_sentiment"])
    good = await raw_agent(hub.url, "good", tools=["extract_data"])
    await bad.send(raw)
    error = await recv_json(bad)
    assert error["type"] == "error"
    assert error["data"]["code"] == code and fragment in error["data"]["error"]
    assert any(r.name == "lmstudio_hub.hub" and r.levelname == "WARNING" for r in caplog.records)  # logged
    # The same connection still works: a heartbeat is answered and a task is dispatched to it.
    await send_json(bad, {"type": "heartbeat", "data": {"ts": 1.5}})
    assert await recv_json(bad) == {"type": "heartbeat:ack", "data": {"ts": 1.5}}
    for conn, tool in ((bad, "analyze_sentiment"), (good, "extract_data")):
        submitted = asyncio.create_task(hub.submit("ok?", [tool]))
        task = await recv_json(conn)
        await answer(conn, task["data"]["task_id"], tool)
        assert (await submitted)[0].content == tool
    assert hub.stats.protocol_errors >= 1
    await bad.close()
    await good.close()


async def test_a_frame_past_the_hard_limit_closes_only_that_connection(make_hub):
    hub = await make_hub(max_frame_bytes=1024)
    bad = await raw_agent(hub.url, "bad", connect_options={"max_size": None})
    good = await raw_agent(hub.url, "good")
    await bad.send("x" * (1024 * 4 + 1))
    await expect_closed(bad)
    assert bad.close_code == 1009  # message too big
    submitted = asyncio.create_task(hub.submit("ok?"))
    task = await recv_json(good)
    await answer(good, task["data"]["task_id"], "fine")
    assert (await submitted)[0].content == "fine"
    await good.close()


async def test_malformed_result_for_a_real_task_is_requeued(hub):
    flaky = await raw_agent(hub.url, "flaky")
    submitted = asyncio.create_task(hub.submit("x"))
    task = await recv_json(flaky)
    steady = await raw_agent(hub.url, "steady")
    await send_json(flaky, {"type": "task:result", "data": {"task_id": task["data"]["task_id"], "status": "success", "result": "oops"}})
    error = await recv_json(flaky)
    assert error["data"]["task_id"] == task["data"]["task_id"] and error["data"]["code"] == "INVALID_REQUEST"
    again = await recv_json(steady)
    assert again["data"]["task_id"] == task["data"]["task_id"]
    await answer(steady, task["data"]["task_id"], "well formed")
    assert (await submitted)[0].content == "well formed"
    await flaky.close()
    await steady.close()


async def test_a_result_from_an_agent_never_given_the_task_is_refused(hub):
    owner = await raw_agent(hub.url, "owner")
    submitted = asyncio.create_task(hub.submit("x"))
    task_id = (await recv_json(owner))["data"]["task_id"]
    intruder = await raw_agent(hub.url, "intruder")
    await answer(intruder, task_id, "forged")
    error = await recv_json(intruder)
    assert error["data"]["code"] == "NOT_FOUND"
    await answer(owner, task_id, "genuine")
    assert (await submitted)[0].content == "genuine"
    await owner.close()
    await intruder.close()


# ------------------------------------------------------------------------------- failure and requeue


async def test_disconnected_agent_task_goes_to_another(hub):
    doomed = await raw_agent(hub.url, "doomed")
    submitted = asyncio.create_task(hub.submit("survive"))
    task = await recv_json(doomed)
    backup = await raw_agent(hub.url, "backup")
    doomed.transport.abort()  # killed: no close frame
    again = await recv_json(backup)
    assert again["data"]["task_id"] == task["data"]["task_id"]
    await answer(backup, again["data"]["task_id"], "finished by backup")
    assert (await submitted)[0].content == "finished by backup"
    assert hub.stats.requeued == 1
    await backup.close()


async def test_heartbeat_detects_a_silent_agent(hub):
    # The TCP connection stays open but the agent stops reading: only the keepalive ping can tell.
    frozen = await raw_agent(hub.url, "frozen", connect_options={"ping_interval": None})
    submitted = asyncio.create_task(hub.submit("anyone alive?"))
    await recv_json(frozen)
    frozen.transport.pause_reading()
    backup = await raw_agent(hub.url, "backup")
    again = await recv_json(backup, timeout=3.0)  # ping_interval + ping_timeout = 0.6s in these tests
    await answer(backup, again["data"]["task_id"], "alive")
    assert (await submitted)[0].content == "alive"
    assert [a.agent_id for a in hub.agents()] == ["backup"]
    frozen.transport.abort()
    await backup.close()


async def test_attempt_timeout_cancels_and_requeues(make_hub):
    hub = await make_hub(task_timeout=0.3)
    # Both connected before the task: the least loaded agent (slow, two free slots) gets the first attempt,
    # the one that has not tried it yet gets the retry.
    slow = await raw_agent(hub.url, "slow", max_concurrency=2)
    fast = await raw_agent(hub.url, "fast")
    submitted = asyncio.create_task(hub.submit("hurry"))
    task_id = (await recv_json(slow))["data"]["task_id"]
    cancel = await recv_json(slow)
    assert cancel["type"] == "task:cancel" and cancel["data"]["task_id"] == task_id
    assert "no result within 0.3s" in cancel["data"]["reason"]
    again = await recv_json(fast)
    await answer(fast, again["data"]["task_id"], "fast wins")
    assert (await submitted)[0].content == "fast wins"
    # The slow agent's answer arrives after all: it is dropped quietly (no error, no second answer).
    await answer(slow, task_id, "too late")
    await send_json(slow, {"type": "heartbeat", "data": {}})
    assert (await recv_json(slow))["type"] == "heartbeat:ack"
    await asyncio.sleep(0.05)
    assert hub.stats.duplicates_dropped == 1
    await slow.close()
    await fast.close()


async def test_late_first_result_wins_and_the_retry_is_cancelled(make_hub):
    hub = await make_hub(task_timeout=0.3)
    slow = await raw_agent(hub.url, "slow", max_concurrency=2)
    second = await raw_agent(hub.url, "second")
    submitted = asyncio.create_task(hub.submit("race"))
    task_id = (await recv_json(slow))["data"]["task_id"]
    assert (await recv_json(slow))["type"] == "task:cancel"
    assert (await recv_json(second))["data"]["task_id"] == task_id
    await answer(slow, task_id, "slow but first")
    assert (await submitted)[0].content == "slow but first"
    cancel = await recv_json(second)
    assert cancel == {"type": "task:cancel", "data": {"task_id": task_id, "reason": "another agent answered first"}}
    await answer(second, task_id, "second")  # dropped: the caller already has its one answer
    await send_json(second, {"type": "heartbeat", "data": {}})
    assert (await recv_json(second))["type"] == "heartbeat:ack"
    assert hub.stats.completed == 1 and hub.stats.duplicates_dropped == 1
    await slow.close()
    await second.close()


async def test_attempts_are_bounded(make_hub):
    hub = await make_hub(task_timeout=0.2, max_attempts=2)
    mutes = [await raw_agent(hub.url, name) for name in ("mute-1", "mute-2")]
    with pytest.raises(AgentError) as info:
        await hub.submit("never answered", deadline=Deadline(5))
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT
    assert "after 2 attempt(s)" in info.value.message and "gave no result within 0.2s" in info.value.message
    for mute in mutes:  # one attempt each, each cancelled: never the same connection twice
        frames = [await recv_json(mute) for _ in range(2)]
        assert [f["type"] for f in frames] == ["task:execute", "task:cancel"]
        await mute.close()


async def test_a_timed_out_task_waits_for_an_agent_that_has_not_tried_it(make_hub):
    # "retried" goes to the silent agent; when its attempt times out the other agent is busy and the silent
    # one has a free slot. The retry must wait for the other agent, never go back to the silent one.
    hub = await make_hub(task_timeout=0.3)
    silent = await raw_agent(hub.url, "silent")
    worker = await raw_agent(hub.url, "worker")
    retried = asyncio.create_task(hub.submit("retried", deadline=Deadline(5)))
    retried_id = (await recv_json(silent))["data"]["task_id"]
    occupy = asyncio.create_task(hub.submit("occupy", deadline=Deadline(5)))
    occupy_id = (await recv_json(worker))["data"]["task_id"]
    assert (await recv_json(silent))["type"] == "task:cancel"  # retried's attempt timed out; worker still busy
    # occupy's attempt times out next and goes to the silent agent (it has not tried occupy); the worker,
    # now free, gets the retry of "retried".
    assert (await recv_json(worker))["type"] == "task:cancel"
    again = await recv_json(worker)
    assert again["type"] == "task:execute" and again["data"]["task_id"] == retried_id
    await answer(worker, retried_id, "worker did it")
    assert (await retried)[0].content == "worker did it"
    seen = await recv_json(silent)
    assert seen["type"] == "task:execute" and seen["data"]["task_id"] == occupy_id  # never retried_id again
    await answer(silent, occupy_id, "silent woke up")
    assert (await occupy)[0].content == "silent woke up"
    await silent.close()
    await worker.close()


async def test_a_lone_silent_agent_is_not_sent_its_task_again(make_hub):
    hub = await make_hub(task_timeout=0.2, max_attempts=3)
    mute = await raw_agent(hub.url, "mute")
    started = asyncio.get_running_loop().time()
    with pytest.raises(AgentError) as info:
        await hub.submit("never answered", deadline=Deadline(1.0))
    elapsed = asyncio.get_running_loop().time() - started
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT and "gave no result within 0.2s" in info.value.message
    assert 0.9 <= elapsed < 3.0  # it waited for another agent until the deadline, and not past it
    frames = [await recv_json(mute) for _ in range(2)]
    assert [f["type"] for f in frames] == ["task:execute", "task:cancel"]
    with pytest.raises(asyncio.TimeoutError):
        await recv_json(mute, timeout=0.2)
    await mute.close()


async def test_caller_deadline_cancels_the_task_at_the_agent_and_is_not_retried(hub):
    conn = await raw_agent(hub.url, "ponderous")
    submitted = asyncio.create_task(hub.submit("think long", deadline=Deadline(0.3)))
    task = await recv_json(conn)
    idle = await raw_agent(hub.url, "idle")
    with pytest.raises(AgentError) as info:
        await submitted
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT and "ponderous" in info.value.message
    cancel = await recv_json(conn)
    assert cancel == {"type": "task:cancel", "data": {"task_id": task["data"]["task_id"], "reason": "the caller stopped waiting"}}
    # The deadline ended the task: it was not handed to the idle agent as a retry.
    with pytest.raises(asyncio.TimeoutError):
        await recv_json(idle, timeout=0.2)
    assert hub.stats.requeued == 0 and all(a.active == 0 for a in hub.agents())
    await conn.close()
    await idle.close()


async def test_stop_fails_pending_tasks_clearly(make_hub):
    hub = await make_hub()
    conn = await raw_agent(hub.url, "a")
    submitted = asyncio.create_task(hub.submit("x"))
    await recv_json(conn)
    await hub.stop()
    with pytest.raises(AgentError) as info:
        await submitted
    assert info.value.code is ErrorCode.NO_AGENT_AVAILABLE and "shutting down" in info.value.message
    await expect_closed(conn)
    with pytest.raises(AgentError):
        await hub.submit("after stop")


# ------------------------------------------------------------------------------------------ hostile frames

HOSTILE_FRAMES = [
    pytest.param("[" * 10_000 + "]" * 10_000, "nested too deeply", id="deep-array"),
    pytest.param('{"type": "heartbeat", "data": {"ts": ' + "[" * 500 + "]" * 500 + "}}", "nested too deeply", id="deep-data"),
    pytest.param('{"type": "\\ud800", "data": {}}', "not valid Unicode", id="surrogate-type"),
    pytest.param('{"type": "task:result", "data": {"task_id": "\\udc00", "status": "success", "result": []}}',
                 "not valid Unicode", id="surrogate-task-id"),
    pytest.param('{"type": "heartbeat", "data": {"\\udfff": 1}}', "not valid Unicode", id="surrogate-key"),
]


@pytest.mark.parametrize("raw, fragment", HOSTILE_FRAMES)
async def test_hostile_frames_get_an_error_frame_and_the_connection_stays(hub, raw, fragment):
    conn = await raw_agent(hub.url, "target")
    await conn.send(raw)
    error = await recv_json(conn)
    assert error["type"] == "error" and error["data"]["code"] == "INVALID_REQUEST"
    assert fragment in error["data"]["error"]
    await send_json(conn, {"type": "heartbeat", "data": {}})
    assert (await recv_json(conn))["type"] == "heartbeat:ack"  # still connected, still served
    assert [a.agent_id for a in hub.agents()] == ["target"]
    await conn.close()


@pytest.mark.parametrize("raw, fragment", HOSTILE_FRAMES)
async def test_hostile_frames_before_registration_are_answered_too(hub, raw, fragment):
    conn = await raw_connect(hub.url)
    await conn.send(raw)
    error = await recv_json(conn)
    assert error["type"] == "error" and fragment in error["data"]["error"]
    await send_json(conn, register_frame("late"))
    assert (await recv_json(conn))["type"] == "registration:success"
    await conn.close()


async def test_the_agent_token_sent_twice_is_refused_at_the_handshake(hub):
    from websockets.asyncio.client import connect

    from .helpers import TOKEN

    with pytest.raises(InvalidStatus) as info:
        await connect(hub.url, additional_headers=[("Authorization", f"Bearer {TOKEN}"), ("Authorization", f"Bearer {TOKEN}")],
                      open_timeout=5)
    assert info.value.response.status_code == 401
    assert json.loads(info.value.response.body)["code"] == "UNAUTHORIZED"


# ------------------------------------------------------------------- the OpenAI pass-through (chat:forward)


async def test_a_chat_request_goes_only_to_an_agent_that_forwards_its_model(hub):
    plain = await raw_agent(hub.url, "plain")
    forwarder = await raw_agent(hub.url, "forwarder", capabilities=["llm", "chat:forward"])
    assert hub.chat_models() == [MODEL]
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    asked = asyncio.create_task(hub.forward_chat(body, Deadline(5), stream=False))
    frame = await recv_json(forwarder)
    assert frame["type"] == "chat:forward" and frame["data"]["body"] == body
    assert 0 < frame["data"]["deadline_seconds"] <= 5
    answer_body = {"id": "x", "object": "chat.completion", "choices": []}
    await send_json(forwarder, {"type": "chat:result", "data": {"request_id": frame["data"]["request_id"],
                                                                 "status": "success", "body": answer_body}})
    assert await asked == answer_body
    with pytest.raises(AgentError) as none:
        await hub.forward_chat({**body, "model": "other"}, Deadline(5), stream=False)
    assert none.value.code is ErrorCode.NO_AGENT_AVAILABLE
    await plain.close()
    await forwarder.close()


async def test_a_streamed_chat_request_and_an_agent_that_leaves_mid_stream(hub):
    forwarder = await raw_agent(hub.url, "forwarder", capabilities=["chat:forward"])
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    asked = asyncio.create_task(hub.forward_chat(body, Deadline(5), stream=True))
    request_id = (await recv_json(forwarder))["data"]["request_id"]
    await send_json(forwarder, {"type": "chat:chunk", "data": {"request_id": request_id, "data": '{"n": 1}'}})
    events = await asked
    assert await events.__anext__() == b'data: {"n": 1}\n\n'
    forwarder.transport.abort()  # killed mid-stream: the client gets an error event, then [DONE]
    rest = [chunk async for chunk in events]
    assert b'"code": "CONNECTION_FAILED"' in rest[0] and rest[-1] == b"data: [DONE]\n\n"


async def test_chat_frames_for_an_unknown_request_or_a_failed_one(hub):
    forwarder = await raw_agent(hub.url, "forwarder", capabilities=["chat:forward"])
    await send_json(forwarder, {"type": "chat:result", "data": {"request_id": "nope", "status": "success", "body": {}}})
    assert (await recv_json(forwarder))["data"]["code"] == "NOT_FOUND"
    asked = asyncio.create_task(hub.forward_chat({"model": MODEL, "messages": []}, Deadline(5), stream=False))
    request_id = (await recv_json(forwarder))["data"]["request_id"]
    await send_json(forwarder, {"type": "chat:result", "data": {"request_id": request_id, "status": "error",
                                                                 "error": "no such model", "code": "FORBIDDEN"}})
    with pytest.raises(AgentError) as failed:
        await asked
    assert failed.value.code is ErrorCode.UPSTREAM_ERROR  # an agent may not speak for the hub's auth
    await forwarder.close()
