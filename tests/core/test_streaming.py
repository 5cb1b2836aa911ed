"""Streaming in the library: ``ChatClient.chat_stream``, ``Agent.astream``, the UI message stream encoder,
the heartbeat, and the CLI's live view. The upstream is the real loopback stub, streaming real SSE chunks."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console

from lmstudio_agent import Agent, ChatClient, LMStudioAgent, RunEvent
from lmstudio_agent.cli import StreamView
from lmstudio_agent.model.client import ChatResponse
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.agent.events import events_from_transcript, transcript_of
from lmstudio_agent.agent.messages import AgentMessage
from lmstudio_agent.endpoint.streaming import HEARTBEAT, UIMessageStream, encode_run, with_heartbeat
from lmstudio_agent.agent.tools import ToolRegistry, tool_from_function
from tests.support.openai_stub import MODEL_ID, http_error, streamed_text, text, tool_call


def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: The first.
        b: The second.
    """
    return a + b


def native_agent(stub, **kwargs) -> Agent:
    return Agent(client=ChatClient(stub.base_url, model=MODEL_ID), tools=ToolRegistry([tool_from_function(add)]),
                 mode="native", **kwargs)


# ---------------------------------------------------------------------------------------------- the client


async def test_chat_stream_yields_deltas_then_the_assembled_response(openai_stub):
    openai_stub.enqueue(tool_call("add", {"a": 2, "b": 3}, content="Adding them."))
    client = ChatClient(openai_stub.base_url, model=MODEL_ID)
    items = [item async for item in client.chat_stream([{"role": "user", "content": "2+3?"}])]
    await client.aclose()
    deltas, final = items[:-1], items[-1]
    assert all(isinstance(d, str) for d in deltas) and len(deltas) > 1
    assert "".join(deltas) == "Adding them."
    assert isinstance(final, ChatResponse)
    assert final.content == "Adding them."
    assert [(c.name, c.arguments, c.id) for c in final.tool_calls] == [("add", {"a": 2, "b": 3}, "call_0")]
    assert final.finish_reason == "tool_calls" and final.usage.completion_tokens == 5
    assert openai_stub.chat_requests[-1]["stream"] is True


async def test_chat_stream_times_out_on_a_stalled_stream(openai_stub):
    openai_stub.enqueue(streamed_text("slow words here", chunk_delay=1.0))
    client = ChatClient(openai_stub.base_url, model=MODEL_ID, timeout=0.3, max_retries=0)
    with pytest.raises(AgentError) as info:
        async for _ in client.chat_stream([{"role": "user", "content": "x"}]):
            pass
    await client.aclose()
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT


async def test_chat_stream_maps_an_error_status(openai_stub):
    openai_stub.enqueue(http_error(400, "bad request body"))
    client = ChatClient(openai_stub.base_url, model=MODEL_ID, max_retries=0)
    with pytest.raises(AgentError) as info:
        async for _ in client.chat_stream([{"role": "user", "content": "x"}]):
            pass
    await client.aclose()
    assert info.value.code is ErrorCode.UPSTREAM_ERROR and "bad request body" in info.value.message


# ----------------------------------------------------------------------------------------------- the agent


async def test_astream_yields_steps_deltas_and_messages_in_order(openai_stub):
    openai_stub.enqueue(tool_call("add", {"a": 2, "b": 3}), text("The sum is 5."))
    events = [e async for e in native_agent(openai_stub).astream("Add 2 and 3")]
    kinds = [e.type if e.type != "message" else e.message.type for e in events]
    assert kinds[:3] == ["step-start", "action", "result"]
    assert kinds[3] == "step-start" and kinds[-1] == "result"
    assert "".join(e.delta for e in events if e.type == "text-delta") == "The sum is 5."
    assert [m.to_dict() for m in transcript_of(events)] == [
        {"type": "action", "tool": "add", "args": {"a": 2, "b": 3}},
        {"type": "result", "tool": "add", "content": "5"},
        {"type": "result", "content": "The sum is 5."},
    ]


async def test_astream_raises_after_yielding_the_error(openai_stub):
    openai_stub.enqueue(*[http_error(502)] * 3)
    seen: list[RunEvent] = []
    with pytest.raises(AgentError) as info:
        async for event in native_agent(openai_stub).astream("hello"):
            seen.append(event)
    assert info.value.code is ErrorCode.UPSTREAM_ERROR
    assert seen[-1].message.type == "error" and seen[-1].message.code == "UPSTREAM_ERROR"


async def test_leaving_astream_early_cancels_the_run(openai_stub):
    openai_stub.enqueue(streamed_text("a long answer that takes a while", chunk_delay=0.1))
    async for event in native_agent(openai_stub).astream("talk"):
        if event.type == "text-delta":
            break
    await asyncio.sleep(1.5)
    assert openai_stub.streams_finished == []  # the upstream request was closed mid-answer


def test_act_is_built_on_the_stream_and_keeps_its_transcript(openai_stub):
    openai_stub.enqueue(tool_call("terminate", {"message": "done"}))
    agent = LMStudioAgent(model_name=MODEL_ID, base_url=openai_stub.base_url, tool_mode="native")
    agent.load_model()
    seen: list[AgentMessage] = []
    transcript = agent.act("finish", on_message=seen.append)
    assert [m.to_dict() for m in transcript] == [m.to_dict() for m in seen]
    assert transcript[-1].to_dict() == {"type": "result", "content": "done"}


# --------------------------------------------------------------------------------------------- the encoder


def test_encoder_pairs_calls_and_outcomes_and_says_a_final_error_once():
    events = [
        RunEvent.step_start(0),
        RunEvent.of(AgentMessage(type="action", tool="add", args={"a": 1})),
        RunEvent.of(AgentMessage(type="error", tool="add", content="boom", code="TOOL_EXECUTION_FAILED")),
        RunEvent.step_start(1),
        RunEvent.of(AgentMessage(type="error", content="unreadable", code="MODEL_OUTPUT_INVALID")),
        RunEvent.step_start(2),
        RunEvent.of(AgentMessage(type="error", content="too slow", code="UPSTREAM_TIMEOUT")),
    ]
    chunks = encode_run(events, error=AgentError(ErrorCode.UPSTREAM_TIMEOUT, "too slow"))
    types = [c["type"] for c in chunks]
    assert types == ["start", "start-step", "tool-input-available", "tool-output-error", "finish-step",
                     "start-step", "data-agent-error", "finish-step", "message-metadata", "error", "finish"]
    # The round the run failed on wrote nothing: no empty step; the code goes out before the error chunk.
    assert chunks[-3] == {"type": "message-metadata", "messageMetadata": {"success": False, "code": "UPSTREAM_TIMEOUT"}}
    assert chunks[3] == {"type": "tool-output-error", "toolCallId": "call-1", "errorText": "TOOL_EXECUTION_FAILED: boom"}
    assert chunks[-2] == {"type": "error", "errorText": "UPSTREAM_TIMEOUT: too slow"}
    assert chunks[-1] == {"type": "finish", "messageMetadata": {"success": False, "code": "UPSTREAM_TIMEOUT"}}


def test_tool_outputs_are_json_values_and_plain_text_stays_text():
    transcript = [AgentMessage(type="action", tool="analyze_sentiment", args={"text": "great"}),
                  AgentMessage(type="result", tool="analyze_sentiment", content='{"sentiment": "positive"}'),
                  AgentMessage(type="action", tool="echo", args={}),
                  AgentMessage(type="result", tool="echo", content="[not json"),
                  AgentMessage(type="action", tool="count", args={}),
                  AgentMessage(type="result", tool="count", content="5"),
                  AgentMessage(type="result", content="done")]
    outputs = [c["output"] for c in encode_run(events_from_transcript(transcript)) if c["type"] == "tool-output-available"]
    assert outputs == [{"sentiment": "positive"}, "[not json", "5"]


def test_unstreamed_answers_become_one_text_part_and_terminal_calls_get_outputs():
    transcript = [AgentMessage(type="action", tool="terminate", args={"message": "hi"}),
                  AgentMessage(type="result", content="hi")]
    chunks = encode_run(events_from_transcript(transcript))
    assert [c["type"] for c in chunks] == ["start", "start-step", "tool-input-available", "tool-output-available",
                                           "text-start", "text-delta", "text-end", "finish-step", "finish"]
    assert chunks[3]["output"] == "hi" and chunks[5]["delta"] == "hi"


def test_streamed_text_is_not_repeated_by_its_message():
    encoder = UIMessageStream("m")
    chunks = encoder.start() + encoder.feed(RunEvent.step_start(0))
    chunks += encoder.feed(RunEvent.text("Hel")) + encoder.feed(RunEvent.text("lo"))
    chunks += encoder.feed(RunEvent.of(AgentMessage(type="result", content="Hello")))
    chunks += encoder.finish({"success": True})
    assert [c.get("delta") for c in chunks if c["type"] == "text-delta"] == ["Hel", "lo"]


def test_events_from_transcript_starts_a_step_per_model_round():
    transcript = [AgentMessage(type="action", tool="add", args={}), AgentMessage(type="result", tool="add", content="1"),
                  AgentMessage(type="result", content="one")]
    assert [e.type for e in events_from_transcript(transcript)] == ["step-start", "message", "message",
                                                                   "step-start", "message"]


async def test_heartbeat_fills_idle_gaps_and_closing_stops_the_source():
    closed = asyncio.Event()

    async def slow():
        try:
            yield b"a"
            await asyncio.sleep(0.35)
            yield b"b"
            await asyncio.sleep(10)
            yield b"never"
        finally:
            closed.set()

    out = []
    stream = with_heartbeat(slow(), interval=0.1)
    async for chunk in stream:
        out.append(chunk)
        if chunk == b"b":
            break
    await stream.aclose()
    assert out[0] == b"a" and out[-1] == b"b" and out.count(HEARTBEAT) >= 2
    await asyncio.wait_for(closed.wait(), 1)


# ------------------------------------------------------------------------------------------------- the CLI


def test_cli_view_prints_text_as_it_arrives_and_not_twice():
    buffer = io.StringIO()
    view = StreamView(Console(file=buffer, width=100, color_system=None))
    view.show(RunEvent.step_start(0))
    view.show(RunEvent.text("The sum "))
    assert buffer.getvalue().endswith("The sum ")  # printed before the run went on
    view.show(RunEvent.text("is 5."))
    view.show(RunEvent.of(AgentMessage(type="result", content="The sum is 5.")))
    view.end()
    out = buffer.getvalue()
    assert out.count("The sum is 5.") == 1 and "[result]" in out
