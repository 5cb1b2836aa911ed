"""The streamed ``POST /execute`` (AI SDK UI message stream over SSE), written once and run on every adapter.

The hub is read over a real socket and the Worker in-process from its Response's ReadableStream (see the
drivers). The Lambda cannot stream through API Gateway's REST integration with the Python runtime (response
streaming needs a Node.js-style streaming handler or a Function URL), so it sends the same stream whole,
once the run is over: every scenario but the two about timing (pieces while the model writes, a client that
leaves) runs on it too.

The AI SDK's ``useChat`` sends its own body (``id``, ``messages`` as UI messages, ``trigger``, ``messageId``)
and no ``Accept`` header: that body is a stream request too, its last user message the instruction
(:mod:`lmstudio_agent.endpoint.conversation`).
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import pytest

from tests.endpoints.conftest import CLIENT_KEY, UPSTREAM_TOKEN
from tests.endpoints.drivers import StreamResult
from tests.support.openai_stub import http_error, json_content, streamed_text, text, tool_call

SSE = {"Accept": "text/event-stream"}
# The UI message stream chunk types of AI SDK 5 (packages/ai/src/ui-message-stream/ui-message-chunks.ts) and
# the fields each may carry: the SDK validates chunks as strict objects, so nothing else may appear.
ALLOWED_FIELDS: dict[str, set[str]] = {
    "start": {"messageId", "messageMetadata"},
    "start-step": set(),
    "finish-step": set(),
    "text-start": {"id", "providerMetadata"},
    "text-delta": {"id", "delta", "providerMetadata"},
    "text-end": {"id", "providerMetadata"},
    "tool-input-available": {"toolCallId", "toolName", "input", "providerExecuted", "providerMetadata", "dynamic"},
    "tool-output-available": {"toolCallId", "output", "providerExecuted", "dynamic", "preliminary"},
    "tool-output-error": {"toolCallId", "errorText", "providerExecuted", "dynamic"},
    "error": {"errorText"},
    "message-metadata": {"messageMetadata"},
    "finish": {"messageMetadata"},
}


def stream(endpoint, payload: Any, *, key: Optional[str] = CLIENT_KEY, headers: Optional[dict] = None,
           **options) -> StreamResult:
    sent = {"Content-Type": "application/json", **SSE}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    sent.update(headers or {})
    return endpoint.stream("POST", "/execute", headers=sent, body=json.dumps(payload), **options)


def needs_stream(endpoint, *, live: bool = False) -> None:
    """Skip on an adapter that cannot stream, or (``live``) that sends the stream only once it is written."""
    if not hasattr(endpoint, "stream"):
        pytest.skip(f"{endpoint.name} does not stream (see the module docstring)")
    if live and not getattr(endpoint, "live_stream", True):
        pytest.skip(f"{endpoint.name} sends a stream whole, once written (see the module docstring)")


def assert_protocol(result: StreamResult) -> None:
    """The stream is well formed: the v1 header, known chunk shapes, steps and parts nested, [DONE] last."""
    assert result.status == 200, result.text
    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert result.events[-1] == "[DONE]"
    assert result.types[0] == "start" and result.types[-1] == "finish"
    open_step, open_text, calls = False, None, set()
    for chunk in result.chunks:
        kind = chunk["type"]
        extra = set(chunk) - {"type"} - (ALLOWED_FIELDS.get(kind) or (
            {"id", "data", "transient"} if kind.startswith("data-") else set()))
        assert not extra, f"{kind} carries fields the protocol does not have: {extra}"
        if kind == "start-step":
            assert not open_step
            open_step = True
        elif kind == "finish-step":
            assert open_step and open_text is None
            open_step = False
        elif kind == "text-start":
            assert open_step and open_text is None
            open_text = chunk["id"]
        elif kind == "text-delta":
            assert chunk["id"] == open_text and isinstance(chunk["delta"], str)
        elif kind == "text-end":
            assert chunk["id"] == open_text
            open_text = None
        elif kind == "tool-input-available":
            assert open_step and chunk["toolCallId"] not in calls
            calls.add(chunk["toolCallId"])
        elif kind in ("tool-output-available", "tool-output-error"):
            assert chunk["toolCallId"] in calls
    assert not open_step and open_text is None
    steps = [i for i, kind in enumerate(result.types) if kind in ("start-step", "finish-step")]
    for opened, closed in zip(steps[::2], steps[1::2], strict=True):
        assert closed > opened + 1, "an empty step"
    for leak in ("Traceback", CLIENT_KEY, UPSTREAM_TOKEN):
        assert leak not in result.text


def answer_text(result: StreamResult) -> str:
    return "".join(c["delta"] for c in result.chunks if c["type"] == "text-delta")


# ------------------------------------------------------------------------------------------------- success


def test_text_streams_as_deltas_while_the_model_writes(endpoint, openai_stub):
    needs_stream(endpoint, live=True)
    openai_stub.enqueue(streamed_text("Two plus three makes five.", chunk_delay=0.15))
    result = stream(endpoint, {"instruction": "What is 2 + 3?", "tools": []})
    assert_protocol(result)
    assert result.types[:2] == ["start", "start-step"]
    deltas = [i for i, c in enumerate(result.events) if isinstance(c, dict) and c["type"] == "text-delta"]
    assert len(deltas) > 1  # the text came in pieces, as the model wrote them
    assert answer_text(result) == "Two plus three makes five."
    # The first piece reached the client before the model had finished writing: streamed, not replayed.
    assert result.arrived[deltas[0]] < openai_stub.streams_finished[-1]
    assert result.chunks[-1]["messageMetadata"] == {"success": True, "cached": False}
    assert openai_stub.chat_requests[-1]["stream"] is True


def test_body_flag_asks_for_the_stream_too(endpoint, openai_stub):
    needs_stream(endpoint)
    openai_stub.enqueue(text("fine"))
    sent = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}
    result = endpoint.stream("POST", "/execute", headers=sent,
                             body=json.dumps({"instruction": "hi", "tools": [], "stream": True}))
    assert_protocol(result)
    assert answer_text(result) == "fine"


def test_tool_steps_stream_input_and_output(endpoint, openai_stub):
    needs_stream(endpoint)
    expert = {"description_of_expert": "a vet", "prompt": "Are cats good pets?"}
    openai_stub.enqueue(
        tool_call("prompt_expert", expert),
        text("Yes, cats are good pets."),  # the tool's own model call
        tool_call("terminate", {"message": "It is positive."}),
    )
    result = stream(endpoint, {"instruction": "Ask a vet whether cats are good pets", "tools": ["prompt_expert"]},
                    headers={"Cache-Control": "no-cache"})
    assert_protocol(result)
    inputs = [c for c in result.chunks if c["type"] == "tool-input-available"]
    outputs = {c["toolCallId"]: c for c in result.chunks if c["type"] == "tool-output-available"}
    assert [c["toolName"] for c in inputs] == ["prompt_expert", "terminate"]
    assert inputs[0]["input"] == expert
    assert outputs[inputs[0]["toolCallId"]]["output"] == "Yes, cats are good pets."
    assert outputs[inputs[1]["toolCallId"]]["output"] == "It is positive."
    assert result.types.count("start-step") == 2
    assert answer_text(result) == "It is positive."


# -------------------------------------------------------------------------------------------------- errors


def test_a_failed_run_ends_with_the_contracts_code(endpoint, openai_stub):
    needs_stream(endpoint)
    openai_stub.enqueue(*[http_error(502, "bad gateway")] * 3)
    result = stream(endpoint, {"instruction": "hello", "tools": []})
    assert_protocol(result)
    errors = [c for c in result.chunks if c["type"] == "error"]
    assert len(errors) == 1 and errors[0]["errorText"].startswith("UPSTREAM_ERROR: ")
    # useChat stops at the error chunk: the code goes out before it, as message metadata it keeps.
    at = result.types.index("error")
    assert result.chunks[at - 1] == {"type": "message-metadata",
                                     "messageMetadata": {"success": False, "code": "UPSTREAM_ERROR"}}
    assert "start-step" not in result.types  # the round wrote nothing: no empty step
    assert result.chunks[-1]["messageMetadata"] == {"success": False, "code": "UPSTREAM_ERROR"}


def test_refusals_before_the_run_are_json(endpoint):
    needs_stream(endpoint)
    missing = stream(endpoint, {"instruction": "x", "tools": []}, key=None)
    assert missing.status == 401 and missing.json["code"] == "UNAUTHORIZED"
    wrong = stream(endpoint, {"instruction": "x", "tools": []}, key="not-the-key")
    assert wrong.status == 403 and wrong.json["code"] == "FORBIDDEN"
    unknown = stream(endpoint, {"instruction": "x", "tools": ["no_such_tool"]})
    assert unknown.status == 400 and unknown.json["code"] == "UNKNOWN_TOOL"
    empty = stream(endpoint, {"instruction": "  ", "tools": []})
    assert empty.status == 400 and empty.json["code"] == "INVALID_INSTRUCTION"


# --------------------------------------------------------------------------------------------------- cache


def test_a_finished_stream_is_cached_and_replayed_as_a_stream(endpoint, openai_stub):
    needs_stream(endpoint)
    payload = {"instruction": "Summarise: cats are great pets", "tools": ["analyze_sentiment"]}
    openai_stub.enqueue(text("Cats make great pets."))
    first = stream(endpoint, payload)
    assert_protocol(first)
    second = stream(endpoint, payload)
    assert_protocol(second)
    assert second.chunks[-1]["messageMetadata"] == {"success": True, "cached": True}
    assert answer_text(second) == answer_text(first) == "Cats make great pets."
    assert len(openai_stub.chat_requests) == 1
    # The JSON route reads the same entry.
    sent = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}
    plain = endpoint.request("POST", "/execute", headers=sent, body=json.dumps(payload))
    assert plain.json["cached"] is True
    assert plain.json["result"][-1] == {"type": "result", "content": "Cats make great pets."}


# ------------------------------------------------------------------------------------------------- leaving


def test_a_client_that_leaves_stops_the_run(endpoint, openai_stub):
    needs_stream(endpoint, live=True)
    words = "one two three four five six seven eight nine ten eleven twelve"
    openai_stub.enqueue(streamed_text(words, chunk_delay=0.1))
    result = stream(endpoint, {"instruction": "count", "tools": []}, stop_after=4)
    assert result.types[:3] == ["start", "start-step", "text-start"]
    # Hanging up cancelled the run, which closed its upstream request: the model never got to finish writing
    # (its whole answer takes 1.6 s to stream).
    time.sleep(2.0)
    assert openai_stub.streams_finished == []


# ----------------------------------------------------------------------------------------- useChat's body

def ui_message(role: str, text: str, index: int) -> dict[str, Any]:
    return {"id": f"m{index}", "role": role, "parts": [{"type": "text", "text": text}]}


def chat_body(*turns: tuple[str, str], **extra: Any) -> dict[str, Any]:
    """The body DefaultChatTransport sends by default (``useChat`` with no options), plus ``extra`` fields."""
    messages = [ui_message(role, text, i) for i, (role, text) in enumerate(turns)]
    return {"id": "chat-1", "messages": messages, "trigger": "submit-message", "messageId": None, **extra}


def chat(endpoint, payload: Any, *, key: Optional[str] = CLIENT_KEY) -> StreamResult:
    """What useChat sends: JSON, its key in a header it was given, no Accept header."""
    sent = {"Content-Type": "application/json"}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    return endpoint.stream("POST", "/execute", headers=sent, body=json.dumps(payload))


def test_use_chats_default_body_runs_the_last_user_message(endpoint, openai_stub):
    needs_stream(endpoint)
    openai_stub.enqueue(text("Paris."))
    result = chat(endpoint, chat_body(("user", "Capital of France?")))
    assert_protocol(result)
    assert answer_text(result) == "Paris."
    sent = json.dumps(openai_stub.chat_requests[0]["messages"])
    assert "Capital of France?" in sent


def test_the_run_sees_the_conversation_so_far(endpoint, openai_stub):
    needs_stream(endpoint)
    openai_stub.enqueue(text("La capitale est Paris."))
    result = chat(endpoint, chat_body(("user", "Capital of France?"), ("assistant", "Paris."),
                                      ("user", "Say it in French.")))
    assert_protocol(result)
    assert answer_text(result) == "La capitale est Paris."
    sent = json.dumps(openai_stub.chat_requests[0]["messages"])
    assert "Capital of France?" in sent and "Paris." in sent and "Say it in French." in sent
    assert sent.index("Capital of France?") < sent.index("Say it in French.")


def test_tool_outputs_are_the_json_values_the_tools_returned(endpoint, openai_stub):
    needs_stream(endpoint)
    openai_stub.enqueue(
        tool_call("analyze_sentiment", {"text": "I love it"}),
        *[json_content({"sentiment": "positive"})] * 5,  # the tool's own model calls (no logprobs: it votes)
        text("It is positive."),
    )
    result = chat(endpoint, chat_body(("user", "Is 'I love it' positive?"), tools=["analyze_sentiment"]))
    assert_protocol(result)
    outputs = [c["output"] for c in result.chunks if c["type"] == "tool-output-available"]
    assert outputs == [{"sentiment": "positive", "confidence": 1.0}]
    assert answer_text(result) == "It is positive."


def test_a_chat_body_is_refused_clearly(endpoint):
    needs_stream(endpoint)
    no_user = chat(endpoint, chat_body(("user", "hi"), ("assistant", "hello")))
    assert no_user.status == 400 and no_user.json["code"] == "INVALID_INSTRUCTION"
    blank = chat(endpoint, {"messages": [{"id": "1", "role": "user", "parts": [{"type": "file", "url": "x"}]}]})
    assert blank.status == 400 and blank.json["code"] == "INVALID_INSTRUCTION"
    stranger = chat(endpoint, chat_body(("user", "hi"), temperature=2))
    assert stranger.status == 400 and stranger.json["code"] == "INVALID_REQUEST"
    bad_role = chat(endpoint, {"messages": [{"id": "1", "role": "robot", "parts": []}]})
    assert bad_role.status == 400 and bad_role.json["code"] == "INVALID_REQUEST"
    unknown = chat(endpoint, chat_body(("user", "hi"), tools=["no_such_tool"]))
    assert unknown.status == 400 and unknown.json["code"] == "UNKNOWN_TOOL"
    keyless = chat(endpoint, chat_body(("user", "hi")), key=None)
    assert keyless.status == 401 and keyless.json["code"] == "UNAUTHORIZED"


def test_the_strict_json_contract_is_unchanged(endpoint, openai_stub):
    """A body with an instruction is the strict contract, as before: a chat field beside it is a 400, and a
    JSON request gets JSON. Only a body with ``messages`` and no ``instruction`` is read as useChat's."""
    sent = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}
    extra = endpoint.request("POST", "/execute", headers=sent, body=json.dumps({"instruction": "hi", "id": "chat-1"}))
    assert extra.status == 400 and extra.json["code"] == "INVALID_REQUEST"
    both = endpoint.request("POST", "/execute", headers=sent,
                            body=json.dumps({"instruction": "hi", "messages": []}))
    assert both.status == 400 and both.json["code"] == "INVALID_REQUEST"
    openai_stub.enqueue(text("fine"))
    plain = endpoint.request("POST", "/execute", headers=sent, body=json.dumps({"instruction": "hi", "tools": []}))
    assert plain.status == 200 and plain.headers["content-type"].startswith("application/json")
    assert plain.json["result"][-1] == {"type": "result", "content": "fine"}


# --------------------------------------------------------------------------------------------- the Lambda


def test_the_lambda_sends_a_stream_whole(make_endpoint, driver_name, openai_stub):
    if driver_name != "lambda":
        pytest.skip("the Lambda's answer to a stream request")
    endpoint = make_endpoint()
    openai_stub.enqueue(text("2 + 3 = 5."))
    sent = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}", **SSE}
    response = endpoint.request("POST", "/execute", headers=sent,
                                body=json.dumps({"instruction": "What is 2 + 3?", "tools": [], "stream": True}))
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.text.endswith("data: [DONE]\n\n")
