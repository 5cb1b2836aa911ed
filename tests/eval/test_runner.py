"""The harness against a real loopback OpenAI-protocol server with scripted replies (tests/support/openai_stub):
it sends exactly what the agent's first round sends, reads calls the agent's way, and scores them."""

from __future__ import annotations

import pytest

from lmstudio_agent.agent.loop import Agent
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_eval.runner import concrete_mode, resolve_modes, run_suite, run_task, spread
from lmstudio_eval.suite import Task, generate_tasks, tools_for
from lmstudio_eval.suite_tools import suite_registry
from lmstudio_agent.lmstudio import DEFAULT_GOALS
from lmstudio_agent.model.toolcalls import format_lfm2_calls, ToolCall
from tests.support.openai_stub import MODEL_ID, ScriptedOpenAIServer, http_error, json_content, text, tool_call

REGISTRY = suite_registry()


def weather_task() -> Task:
    return Task(
        id="t1",
        tools=[REGISTRY.get("get_weather").to_openai(), REGISTRY.get("set_timer").to_openai()],
        instruction="What's the weather in Oslo in Fahrenheit?",
        expected={"name": "get_weather", "arguments": {"city": "Oslo", "unit": "fahrenheit"}},
    )


def client_for(server: ScriptedOpenAIServer) -> ChatClient:
    return ChatClient(server.base_url, None, MODEL_ID, max_retries=0)


@pytest.mark.parametrize("mode", ["constrained", "native", "parsed"])
async def test_the_harness_sends_what_the_agents_first_round_sends(openai_stub, mode):
    task = weather_task()
    tools = tools_for(task, REGISTRY)
    # round one of a real run (act's loop); the scripted reply ends it at once
    openai_stub.enqueue(json_content({"name": "terminate", "arguments": {"message": "ok"}})
                        if mode == "constrained" else text("ok"))
    async with client_for(openai_stub) as client:
        agent = Agent(client=client, tools=tools, goals=DEFAULT_GOALS, mode=mode)
        await agent.run(task.instruction)
        openai_stub.enqueue(text("ok"))
        await run_task(client, task, mode, registry=REGISTRY)
    run_request, eval_request = openai_stub.chat_requests
    assert eval_request == run_request
    if mode == "constrained":
        assert eval_request["response_format"]["type"] == "json_schema"
    if mode == "native":
        assert [t["function"]["name"] for t in eval_request["tools"]] == ["get_weather", "set_timer", "terminate"]


async def test_plain_mode_is_the_constrained_prompt_without_a_grammar(openai_stub):
    task = weather_task()
    openai_stub.enqueue(text("ok"), text('Sure! {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "fahrenheit"}}'))
    async with client_for(openai_stub) as client:
        await run_task(client, task, "constrained", registry=REGISTRY)
        result = await run_task(client, task, "plain", registry=REGISTRY)
    constrained_request, plain_request = openai_stub.chat_requests
    assert "response_format" not in plain_request
    assert plain_request["messages"] == constrained_request["messages"]
    assert result.exact and result.called == "get_weather"


async def test_results_are_scored_per_mode_with_latency_and_tokens(openai_stub):
    task = weather_task()
    openai_stub.enqueue(
        json_content({"name": "get_weather", "arguments": {"city": " Oslo", "unit": "fahrenheit"}}),
        tool_call("get_weather", {"city": "Oslo"}),  # native: the unit is missing -> name right, args wrong
        text(format_lfm2_calls([ToolCall("set_timer", {"minutes": 5})])),  # parsed: wrong tool
    )
    async with client_for(openai_stub) as client:
        constrained = await run_task(client, task, "constrained", registry=REGISTRY)
        native = await run_task(client, task, "native", registry=REGISTRY)
        parsed = await run_task(client, task, "parsed", registry=REGISTRY)
    assert constrained.exact and constrained.name_ok and constrained.latency_s > 0
    assert constrained.prompt_tokens == 10 and constrained.completion_tokens == 5
    assert native.name_ok and not native.exact and "unit" in native.reason
    assert not parsed.name_ok and parsed.called == "set_timer"


async def test_invalid_arguments_and_chat_replies_fail_with_the_reason(openai_stub):
    task = weather_task()
    openai_stub.enqueue(json_content({"name": "get_weather", "arguments": {"city": "Oslo", "unit": "kelvin"}}),
                        text("The weather in Oslo is lovely today!"))
    async with client_for(openai_stub) as client:
        invalid = await run_task(client, task, "constrained", registry=REGISTRY)
        chat = await run_task(client, task, "plain", registry=REGISTRY)
    assert invalid.name_ok and not invalid.exact and "unit" in invalid.reason
    assert chat.called is None and not chat.name_ok and "could not be read as a tool call" in chat.reason


async def test_a_server_error_fails_the_task_and_the_run_goes_on(openai_stub):
    tasks = [weather_task(), weather_task().model_copy(update={"id": "t2"})]
    openai_stub.enqueue(http_error(500, "boom"), json_content({"name": "get_weather",
                                                                "arguments": {"city": "Oslo", "unit": "fahrenheit"}}))
    seen = []
    async with client_for(openai_stub) as client:
        results = await run_suite(client, tasks, "constrained", registry=REGISTRY, on_result=seen.append)
    assert [r.exact for r in results] == [False, True] and seen == results
    assert results[0].reason.startswith(ErrorCode.UPSTREAM_ERROR.value)


async def test_an_unreachable_server_stops_the_run(dead_upstream_url):
    async with ChatClient(dead_upstream_url, None, "m", max_retries=0) as client:
        with pytest.raises(AgentError) as caught:
            await run_task(client, weather_task(), "constrained", registry=REGISTRY)
    assert caught.value.code is ErrorCode.CONNECTION_FAILED


async def test_auto_resolves_like_the_agent_from_the_model_listing():
    with ScriptedOpenAIServer(capabilities=[]) as plain_server, \
            ScriptedOpenAIServer(capabilities=["tool_use"]) as tool_server:
        async with client_for(plain_server) as a, client_for(tool_server) as b:
            assert await concrete_mode(a, "auto") == "constrained"
            assert await concrete_mode(b, "auto") == "native"
            assert await concrete_mode(a, "parsed") == "parsed"


def test_modes_and_subsets():
    assert resolve_modes(["all"]) == ["plain", "native", "parsed", "constrained"]
    assert resolve_modes(["constrained", "plain", "constrained"]) == ["constrained", "plain"]
    with pytest.raises(ValueError, match="unknown mode"):
        resolve_modes(["magic"])
    tasks = generate_tasks("heldout")
    subset = spread(tasks, 40)
    assert len(subset) == 40 and len({t.expected.name for t in subset}) >= 20
    assert spread(tasks, None) == tasks
