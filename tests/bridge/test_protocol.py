"""The frame parser: every reference message parses to its typed model; anything else is a clear AgentError."""

from __future__ import annotations

import json

import pytest

from lmstudio_agent.bridge.protocol import (
    ErrorMessage,
    RegisterMessage,
    RegistrationSuccessMessage,
    TaskExecuteData,
    TaskExecuteMessage,
    TaskResultMessage,
    encode,
    error_frame,
    parse_frame,
)
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.agent.messages import WebSocketMessage

# The API reference's WebSocket Protocol examples, verbatim.
REFERENCE = {
    "agent:register": {
        "type": "agent:register",
        "data": {
            "agent_id": "lm-studio-agent-1",
            "capabilities": ["llm", "rag", "tool-use"],
            "model": "lmstudio-community/LFM2-350M-Instruct-GGUF",
        },
    },
    "registration:success": {"type": "registration:success", "data": {"agent_id": "lm-studio-agent-1"}},
    "task:execute": {
        "type": "task:execute",
        "data": {
            "task_id": "task-123",
            "instruction": "Analyze sentiment of customer feedback",
            "tools": ["extract_data", "analyze_sentiment"],
        },
    },
    "task:result": {
        "type": "task:result",
        "data": {
            "task_id": "task-123",
            "status": "success",
            "result": [{"type": "result", "content": "Overall sentiment: Positive (0.85 confidence)"}],
        },
    },
    "task:result error": {
        "type": "task:result",
        "data": {"task_id": "task-123", "status": "error", "error": "Model not loaded"},
    },
}
KINDS = {
    "agent:register": RegisterMessage,
    "registration:success": RegistrationSuccessMessage,
    "task:execute": TaskExecuteMessage,
    "task:result": TaskResultMessage,
    "task:result error": TaskResultMessage,
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_messages_parse_and_round_trip(name):
    frame = REFERENCE[name]
    message = parse_frame(json.dumps(frame))
    assert type(message) is KINDS[name]
    assert isinstance(message, WebSocketMessage)
    encoded = json.loads(encode(message))
    # Nothing lost; only the documented optional fields of agent:register are filled in with their defaults.
    assert encoded["type"] == frame["type"]
    assert {k: encoded["data"][k] for k in frame["data"]} == frame["data"]
    added = set(encoded["data"]) - set(frame["data"])
    assert added <= {"tools", "side_effect_tools", "max_concurrency"}
    assert parse_frame(encode(message)) == message


def test_bytes_frames_parse_too():
    assert isinstance(parse_frame(json.dumps(REFERENCE["task:execute"]).encode()), TaskExecuteMessage)


def test_register_defaults_and_extensions():
    message = parse_frame(json.dumps(REFERENCE["agent:register"]))
    assert message.data.tools == [] and message.data.max_concurrency == 1
    extended = {**REFERENCE["agent:register"]["data"], "tools": ["a", "b"], "side_effect_tools": ["b"], "max_concurrency": 3}
    message = parse_frame(json.dumps({"type": "agent:register", "data": extended}))
    assert message.data.tools == ["a", "b"] and message.data.side_effect_tools == ["b"]


BAD = [
    pytest.param("{not json", "not valid JSON", id="not-json"),
    pytest.param("[1, 2]", "JSON object", id="not-object"),
    pytest.param('{"data": {}}', "no 'type'", id="no-type"),
    pytest.param('{"type": "task:explode", "data": {}}', "Unknown message type 'task:explode'", id="unknown-type"),
    pytest.param('{"type": "agent:register", "data": {"agent_id": "a"}}', "data.model: Field required", id="missing-field"),
    pytest.param(
        '{"type": "task:result", "data": {"task_id": "t", "status": "success"}}', "needs 'result'", id="success-no-result"
    ),
    pytest.param(
        '{"type": "task:result", "data": {"task_id": "t", "status": "done", "result": []}}', "data.status", id="bad-status"
    ),
    pytest.param(
        '{"type": "task:result", "data": {"task_id": "t", "status": "success", "result": [{"type": "shout"}]}}',
        "data.result.0.type",
        id="bad-agent-message",
    ),
    pytest.param(
        '{"type": "agent:register", "data": {"agent_id": "a", "model": "m", "tools": ["x"], "side_effect_tools": ["y"]}}',
        "not in tools: y",
        id="side-effect-tool-not-a-tool",
    ),
    pytest.param('{"type": "heartbeat", "data": {}, "extra": 1}', "extra", id="extra-top-level-field"),
]


@pytest.mark.parametrize("raw, fragment", BAD)
def test_malformed_frames_raise_invalid_request_with_a_clear_message(raw, fragment):
    with pytest.raises(AgentError) as info:
        parse_frame(raw)
    assert info.value.code is ErrorCode.INVALID_REQUEST
    assert fragment in info.value.message


def test_a_bad_result_keeps_its_task_id_for_the_receiver():
    with pytest.raises(AgentError) as info:
        parse_frame('{"type": "task:result", "data": {"task_id": "t-9", "status": "success"}}')
    assert info.value.details == {"type": "task:result", "task_id": "t-9"}


def test_oversized_frame_is_payload_too_large():
    raw = json.dumps({"type": "heartbeat", "data": {}, "metadata": {"pad": "é" * 600}}, ensure_ascii=False)
    assert len(raw) < 1000 < len(raw.encode())  # the limit counts UTF-8 bytes, not characters
    with pytest.raises(AgentError) as info:
        parse_frame(raw, max_bytes=1000)
    assert info.value.code is ErrorCode.PAYLOAD_TOO_LARGE
    assert "exceeds the limit of 1000 bytes" in info.value.message


def test_error_frame_shape():
    frame = json.loads(error_frame(ErrorCode.NOT_FOUND, "Unknown task_id 'x'", task_id="x", message_type="task:result"))
    assert frame == {
        "type": "error",
        "data": {"error": "Unknown task_id 'x'", "code": "NOT_FOUND", "task_id": "x", "message_type": "task:result"},
    }
    assert isinstance(parse_frame(json.dumps(frame)), ErrorMessage)


def test_task_event_frames_carry_one_run_event():
    from lmstudio_agent.bridge.protocol import TaskEventMessage

    frame = {"type": "task:event", "data": {"task_id": "t-1", "event": {"type": "text-delta", "delta": "Hel"}}}
    msg = parse_frame(json.dumps(frame))
    assert isinstance(msg, TaskEventMessage) and msg.data.event.delta == "Hel"
    assert json.loads(encode(msg)) == frame
    streamed = parse_frame(json.dumps({"type": "task:execute", "data": {"task_id": "t", "instruction": "x", "stream": True}}))
    assert streamed.data.stream is True
    # Without stream the task:execute frame is the reference's, byte for byte.
    assert "stream" not in encode(TaskExecuteMessage(data=streamed.data.model_copy(update={"stream": None})))
    for bad in ({"type": "text-delta"}, {"type": "message"}, {"type": "nope", "delta": "x"}):
        with pytest.raises(AgentError) as info:
            parse_frame(json.dumps({"type": "task:event", "data": {"task_id": "t", "event": bad}}))
        assert info.value.code is ErrorCode.INVALID_REQUEST and info.value.details["type"] == "task:event"


def test_task_execute_carries_documents_only_when_there_are_some():
    plain = TaskExecuteMessage(data=TaskExecuteData(task_id="t1", instruction="Process the invoice."))
    assert "documents" not in json.loads(encode(plain))["data"]  # older agents never see the field
    frame = {"type": "task:execute", "data": {"task_id": "t2", "instruction": "Process it.", "tools": [],
                                              "documents": {"invoice": "ACME Ltd ..."}}}
    parsed = parse_frame(json.dumps(frame))
    assert parsed.data.documents == {"invoice": "ACME Ltd ..."}
    assert json.loads(encode(parsed)) == frame
    bad = {**frame, "data": {**frame["data"], "documents": {"bad name": "x"}}}
    with pytest.raises(AgentError) as info:
        parse_frame(json.dumps(bad))
    assert info.value.code is ErrorCode.INVALID_REQUEST and "documents" in info.value.message
