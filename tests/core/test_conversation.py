"""A chat conversation as one agent run (lmstudio_agent.endpoint.conversation): what the run sees of it, and what is refused."""

from __future__ import annotations

import pytest

from lmstudio_agent.endpoint.contract import MAX_INSTRUCTION_CHARS
from lmstudio_agent.endpoint.conversation import (CURRENT_LABEL, HISTORY_LABEL, HISTORY_MESSAGE_CHARS, HISTORY_MESSAGES,
                                         execute_request_from_chat, instruction_from_turns, is_chat_body)
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.endpoint.backend import AgentBackend, EndpointSettings


def test_a_single_message_is_the_instruction_as_it_is():
    assert instruction_from_turns([("user", "  What is 2 + 3?  ")]) == "What is 2 + 3?"


def test_earlier_messages_come_first_labelled_and_system_messages_are_left_out():
    turns = [("system", "You are a pirate."), ("user", "Capital of France?"), ("assistant", "Paris."),
             ("tool", "{}"), ("user", "In French?")]
    assert instruction_from_turns(turns) == "\n".join(
        [HISTORY_LABEL, "User: Capital of France?", "Assistant: Paris.", "", CURRENT_LABEL, "In French?"])


def test_the_history_is_bounded_in_count():
    turns = [("user" if i % 2 == 0 else "assistant", f"message {i}") for i in range(20)] + [("user", "now")]
    kept = [line for line in instruction_from_turns(turns).splitlines() if line.startswith(("User: ", "Assistant: "))]
    assert kept == [f"{'User' if i % 2 == 0 else 'Assistant'}: message {i}" for i in range(20 - HISTORY_MESSAGES, 20)]


def test_each_earlier_message_is_cut_and_the_whole_fits_the_instruction_limit():
    turns = [("user" if i % 2 == 0 else "assistant", f"message {i} " + "x" * (HISTORY_MESSAGE_CHARS + 50))
             for i in range(20)] + [("user", "now")]
    instruction = instruction_from_turns(turns)
    assert instruction.endswith(f"{CURRENT_LABEL}\nnow") and len(instruction) <= MAX_INSTRUCTION_CHARS
    kept = [line for line in instruction.splitlines() if line.startswith(("User: ", "Assistant: "))]
    assert 1 <= len(kept) <= HISTORY_MESSAGES and kept[-1].startswith("Assistant: message 19 ")
    assert all(line.endswith(" …") and len(line) <= len("Assistant: ") + HISTORY_MESSAGE_CHARS + 2 for line in kept)


def test_the_oldest_history_goes_first_when_the_current_request_is_long():
    long_request = "y" * (MAX_INSTRUCTION_CHARS - 3_000)
    instruction = instruction_from_turns([("user", "a" * 1_500), ("assistant", "b" * 1_500), ("user", long_request)])
    assert len(instruction) <= MAX_INSTRUCTION_CHARS
    assert "a" * 1_500 not in instruction and "b" * 1_500 in instruction and instruction.endswith(long_request)


@pytest.mark.parametrize("turns", [[], [("assistant", "hi")], [("user", "hi"), ("assistant", "yo")], [("user", "   ")],
                                   [("user", "x" * (MAX_INSTRUCTION_CHARS + 1))]])
def test_a_conversation_without_a_usable_last_user_message_is_refused(turns):
    with pytest.raises(AgentError) as refused:
        instruction_from_turns(turns)
    assert refused.value.code is ErrorCode.INVALID_INSTRUCTION


def test_use_chats_body_becomes_an_execute_request():
    body = {"id": "c1", "trigger": "submit-message", "messages": [
        {"id": "m1", "role": "user", "parts": [{"type": "step-start"}, {"type": "text", "text": "Is it "},
                                               {"type": "file", "url": "data:,x", "mediaType": "text/plain"},
                                               {"type": "text", "text": "positive?"}]}],
        "tools": ["analyze_sentiment"], "documents": {"note": "I love it"}}
    assert is_chat_body(body) and not is_chat_body({"instruction": "x", "messages": []})
    request = execute_request_from_chat(body)
    assert request.instruction == "Is it positive?"
    assert request.tools == ["analyze_sentiment"] and request.documents == {"note": "I love it"}


@pytest.mark.parametrize("body, code", [
    ({"messages": []}, ErrorCode.INVALID_REQUEST),
    ({"messages": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}], "temperature": 1}, ErrorCode.INVALID_REQUEST),
    ({"messages": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}], "tools": "all"}, ErrorCode.INVALID_REQUEST),
    ({"messages": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}], "documents": {"bad name": "x"}},
     ErrorCode.INVALID_REQUEST),
    ({"messages": [{"role": "user", "parts": "hi"}]}, ErrorCode.INVALID_REQUEST),
    ({"messages": [{"role": "user", "parts": []}]}, ErrorCode.INVALID_INSTRUCTION),
])
def test_a_bad_chat_body_is_a_clear_400(body, code):
    with pytest.raises(AgentError) as refused:
        execute_request_from_chat(body)
    assert refused.value.code is code and refused.value.http_status == 400


def test_the_models_let_through_are_the_deployments():
    plain = EndpointSettings.from_env({"LM_STUDIO_MODEL": "qwen"})
    assert AgentBackend(plain).openai_models() == ["qwen"]
    listed = EndpointSettings.from_env({"LM_STUDIO_MODEL": "qwen", "OPENAI_MODELS": "qwen, llama ,"})
    assert AgentBackend(listed).openai_models() == ["qwen", "llama"]
