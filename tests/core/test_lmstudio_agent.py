"""LMStudioAgent: the API reference's class and its errors."""

import asyncio

import pytest

from lmstudio_agent import LMStudioAgent
from lmstudio_agent.errors import AgentError, ErrorCode
from tests.support.openai_stub import MODEL_ID, ScriptedOpenAIServer, json_content


def test_constructor_defaults_match_the_reference(monkeypatch):
    monkeypatch.delenv("LM_STUDIO_API_BASE", raising=False)
    agent = LMStudioAgent()
    assert agent.model_name == "lmstudio-community/LFM2-350M-Instruct-GGUF"
    assert agent.bridge_url == "ws://localhost:65028"
    assert agent.agent_id == "lm-studio-agent"
    assert agent.client.base_url == "http://localhost:1234/v1"


def test_server_and_token_come_from_the_environment(monkeypatch, openai_stub):
    monkeypatch.setenv("LM_STUDIO_API_BASE", openai_stub.base_url)
    monkeypatch.setenv("LM_API_TOKEN", "sk-lm-env")
    agent = LMStudioAgent(model_name=MODEL_ID)
    agent.load_model()
    assert openai_stub.requests[0]["headers"]["Authorization"] == "Bearer sk-lm-env"


def test_act_before_load_model_raises_model_not_loaded(openai_stub):
    agent = LMStudioAgent(model_name=MODEL_ID, base_url=openai_stub.base_url)
    with pytest.raises(RuntimeError) as info:
        agent.act("hello")
    assert info.value.code is ErrorCode.MODEL_NOT_LOADED
    assert openai_stub.requests == []


def test_empty_instruction_raises_invalid_instruction(openai_stub):
    agent = LMStudioAgent(model_name=MODEL_ID, base_url=openai_stub.base_url)
    agent.load_model()
    with pytest.raises(AgentError) as info:
        agent.act("")
    assert info.value.code is ErrorCode.INVALID_INSTRUCTION


def test_load_model_with_unreachable_server_is_connection_failed(dead_upstream_url):
    agent = LMStudioAgent(base_url=dead_upstream_url)
    with pytest.raises(RuntimeError) as info:
        agent.load_model()
    assert info.value.code is ErrorCode.CONNECTION_FAILED


def test_load_model_with_unknown_model_is_model_not_loaded(openai_stub):
    agent = LMStudioAgent(model_name="no-such-model", base_url=openai_stub.base_url)
    with pytest.raises(RuntimeError) as info:
        agent.load_model()
    assert info.value.code is ErrorCode.MODEL_NOT_LOADED
    assert MODEL_ID in str(info.value)  # it says what is available


def test_act_streams_to_on_message_with_custom_tools(openai_stub):
    def search(query: str) -> list:
        """Search documents.

        Args:
            query: What to look for.
        """
        return [{"doc": f"about {query}"}]

    openai_stub.enqueue(json_content({"name": "search", "arguments": {"query": "AI"}}),
                        json_content({"name": "terminate", "arguments": {"message": "Found one doc about AI"}}))
    agent = LMStudioAgent(model_name=MODEL_ID, base_url=openai_stub.base_url)
    agent.load_model()
    results = []
    agent.act("Find and summarize docs about AI", tools=[search], on_message=lambda m: results.append(m))
    assert [m.type for m in results] == ["action", "result", "action", "result"]
    assert results[1].content == '[{"doc": "about AI"}]'
    offered = [v["properties"].get("tool", v["properties"]["type"])["const"]
               for v in openai_stub.chat_requests[0]["response_format"]["json_schema"]["schema"]["anyOf"]]
    assert offered == ["search", "answer"]  # the answer in words takes the built-in terminate's place


def test_act_refuses_unregistered_tool_names(openai_stub):
    agent = LMStudioAgent(model_name=MODEL_ID, base_url=openai_stub.base_url)
    agent.load_model()
    with pytest.raises(AgentError) as info:
        agent.act("x", tools=["rm_rf"])
    assert info.value.code is ErrorCode.UNKNOWN_TOOL


async def test_sync_act_inside_a_running_loop_says_to_await(openai_stub):
    agent = LMStudioAgent(model_name=MODEL_ID, base_url=openai_stub.base_url)
    with pytest.raises(RuntimeError, match="aload_model"):
        agent.load_model()
    await agent.aload_model()
    assert agent.tool_mode.value == "constrained"
