"""The agent loop's edge cases against a scripted loopback upstream."""

import asyncio
import json

import pytest

from lmstudio_agent.model import smallmodel
from lmstudio_agent.agent.loop import Agent, Goal
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.agent.messages import answered, final_answer
from lmstudio_agent.agent.tools import ToolRegistry
from tests.support.openai_stub import ScriptedOpenAIServer, http_error, json_content, text, tool_call

calls: list[tuple] = []


def make_registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    def get_weather(city: str, unit: str = "celsius") -> dict:
        """Current weather for a city.

        Args:
            city: The city name.
            unit: celsius or fahrenheit.
        """
        calls.append(("get_weather", city, unit))
        return {"city": city, "temperature": 21, "unit": unit}

    @registry.tool
    async def count_words(text: str) -> int:
        """Count the words in a text.

        Args:
            text: The text.
        """
        calls.append(("count_words", text))
        return len(text.split())

    @registry.tool
    def explode(reason: str) -> str:
        """A tool that always fails.

        Args:
            reason: Why.
        """
        raise ValueError(f"cannot do that: {reason}")

    return registry


@pytest.fixture(autouse=True)
def _reset_calls():
    calls.clear()


def agent_for(server, mode="constrained", **kwargs) -> Agent:
    return Agent(client=ChatClient(server.base_url, model="scripted-model"), tools=make_registry(),
                 goals=[Goal("Persona", "You help.")], mode=mode, **kwargs)


async def test_constrained_call_is_executed_and_terminate_ends(openai_stub):
    openai_stub.enqueue(json_content({"type": "weather", "tool": "get_weather", "arguments": {"city": "Paris"}}),
                        json_content({"name": "terminate", "arguments": {"message": "21 degrees in Paris"}}))
    transcript = await agent_for(openai_stub).run("Weather in Paris?")
    assert calls == [("get_weather", "Paris", "celsius")]
    assert [m.type for m in transcript] == ["action", "result", "action", "result"]
    assert final_answer(transcript) == "21 degrees in Paris"
    first = openai_stub.chat_requests[0]
    schema = first["response_format"]["json_schema"]["schema"]
    # The request names one tool ("weather"): the prompt lists only it, the grammar offers only it, and no
    # answer branch on the first round.
    assert "anyOf" not in schema and schema["properties"]["tool"]["const"] == "get_weather"
    listing = first["messages"][0]["content"]
    assert '"get_weather"' in listing
    assert not any(f'"{name}"' in listing for name in ("count_words", "explode", "terminate"))
    # After the tool result, the one step done, only the answer in words.
    after = openai_stub.chat_requests[1]["response_format"]["json_schema"]["schema"]
    assert {k: v for k, v in after.items() if k != "$defs"} == smallmodel.answer_schema()
    # String arguments are copied from the conversation: the grammar offers the request's words, not free text.
    weather = schema
    assert weather["properties"]["arguments"]["properties"]["city"] == {"$ref": "#/$defs/copied_text"}
    assert "Paris" in schema["$defs"]["copied_text"]["enum"]
    second = openai_stub.chat_requests[1]["response_format"]["json_schema"]["schema"]
    assert any("21" in span for span in second["$defs"]["copied_text"]["enum"])  # the tool's result is a source
    # The tool result goes back to the model in the next request.
    assert "Result of get_weather" in openai_stub.chat_requests[1]["messages"][-1]["content"]


async def test_native_several_calls_in_one_response_all_run(openai_stub):
    openai_stub.enqueue(tool_call("", {}, calls=[("get_weather", {"city": "Oslo"}), ("count_words", {"text": "a b c"})]),
                        text("Oslo is 21 and there are 3 words."))
    transcript = await agent_for(openai_stub, mode="native").run("Do both")
    assert calls == [("get_weather", "Oslo", "celsius"), ("count_words", "a b c")]
    tool_messages = [m for m in openai_stub.chat_requests[1]["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ['{"city": "Oslo", "temperature": 21, "unit": "celsius"}', "3"]
    assert final_answer(transcript) == "Oslo is 21 and there are 3 words."
    assert openai_stub.chat_requests[0]["tool_choice"] == "auto"


async def test_parsed_lfm2_calls_keep_raw_text_in_content(openai_stub):
    raw = 'Let me check. <|tool_call_start|>[get_weather(city="Rome", unit="fahrenheit")]<|tool_call_end|>'
    openai_stub.enqueue(text(raw), text("It is 70F in Rome."))
    transcript = await agent_for(openai_stub, mode="parsed").run("Rome weather in F")
    assert calls == [("get_weather", "Rome", "fahrenheit")]
    assert transcript[0].type == "thought" and transcript[0].content == "Let me check."
    second = openai_stub.chat_requests[1]["messages"]
    assert any(m["role"] == "assistant" and m["content"] == raw for m in second)
    assert "<|tool_list_start|>" in openai_stub.chat_requests[0]["messages"][0]["content"]
    assert "tools" not in openai_stub.chat_requests[0]


async def test_unknown_tool_becomes_a_message_and_the_run_goes_on(openai_stub):
    openai_stub.enqueue(tool_call("delete_everything", {}), text("Sorry, I cannot."))
    transcript = await agent_for(openai_stub, mode="native").run("do it")
    error = next(m for m in transcript if m.type == "error")
    assert error.code == ErrorCode.TOOL_EXECUTION_FAILED.value
    assert "Unknown tool 'delete_everything'" in error.content
    assert "get_weather" in error.content
    sent_back = openai_stub.chat_requests[1]["messages"][-1]
    assert sent_back["role"] == "tool" and "Unknown tool" in sent_back["content"]
    # Its only call failed, so the run has no answer: it says so, quoting what the model wrote.
    assert final_answer(transcript) is None
    assert transcript[-1].code == ErrorCode.NO_ANSWER.value and "Sorry, I cannot." in transcript[-1].content


async def test_invalid_arguments_never_reach_the_function(openai_stub):
    openai_stub.enqueue(tool_call("get_weather", {"town": "Paris"}), text("ok"))
    transcript = await agent_for(openai_stub, mode="native").run("weather")
    assert calls == []
    error = next(m for m in transcript if m.type == "error")
    assert error.code == ErrorCode.TOOL_EXECUTION_FAILED.value and "city" in error.content


async def test_raising_tool_is_reported_without_traceback(openai_stub):
    openai_stub.enqueue(tool_call("explode", {"reason": "testing"}), text("It failed."))
    transcript = await agent_for(openai_stub, mode="native").run("explode")
    error = next(m for m in transcript if m.type == "error")
    assert error.content == "ValueError: cannot do that: testing"
    sent_back = openai_stub.chat_requests[1]["messages"][-1]["content"]
    assert "Traceback" not in sent_back and "cannot do that" in sent_back


async def test_garbage_reply_is_reported_and_the_model_retries(openai_stub):
    openai_stub.enqueue(text('{"name": "get_weather", "argu'), json_content({"name": "get_weather", "arguments": {"city": "Bern"}}),
                        json_content({"name": "terminate", "arguments": {"message": "It is 21 degrees in Bern."}}))
    transcript = await agent_for(openai_stub).run("weather in Bern")
    assert transcript[0].type == "error" and transcript[0].code == ErrorCode.MODEL_OUTPUT_INVALID.value
    assert calls == [("get_weather", "Bern", "celsius")]
    assert final_answer(transcript) == "It is 21 degrees in Bern."


async def test_rounds_are_bounded_and_tools_withdrawn_on_the_last(openai_stub):
    openai_stub.default = json_content({"name": "count_words", "arguments": {"text": "again"}})
    openai_stub.enqueue(*[json_content({"name": "count_words", "arguments": {"text": "again"}})] * 2,
                        json_content({"type": "answer", "answer": "Final words: 1."}))
    transcript = await agent_for(openai_stub, max_rounds=3).run("loop forever")
    assert len(openai_stub.chat_requests) == 3
    assert "response_format" in openai_stub.chat_requests[1]
    # the last round: no tools, and the grammar offers only the answer in words
    last = openai_stub.chat_requests[2]
    assert "tools" not in last and last["response_format"]["json_schema"]["schema"] == smallmodel.answer_schema()
    assert final_answer(transcript) == "Final words: 1."


async def test_on_message_streams_every_event_sync_or_async(openai_stub):
    openai_stub.enqueue(json_content({"name": "terminate", "arguments": {"message": "bye"}}))
    seen = []

    async def on_message(message):
        seen.append(message)

    transcript = await agent_for(openai_stub).run("hi", on_message=on_message)
    assert seen == transcript and transcript[-1].content == "bye"


async def test_slow_model_ends_the_run_at_the_deadline_with_an_error_event(openai_stub):
    openai_stub.enqueue(text("too late", delay=3.0))
    seen = []
    with pytest.raises(AgentError) as info:
        await agent_for(openai_stub).run("hi", deadline=Deadline(0.5), on_message=seen.append)
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT
    assert seen[-1].type == "error" and seen[-1].code == "UPSTREAM_TIMEOUT"


async def test_429_in_a_run_is_retried(openai_stub):
    openai_stub.enqueue(http_error(429, retry_after=0.1), json_content({"name": "terminate", "arguments": {"message": "ok"}}))
    transcript = await agent_for(openai_stub).run("hi")
    assert final_answer(transcript) == "ok"


async def test_many_agents_run_at_once_on_one_loop():
    with ScriptedOpenAIServer() as server:
        server.default = json_content({"name": "terminate", "arguments": {"message": "done"}})
        agents = [agent_for(server) for _ in range(8)]
        results = await asyncio.gather(*(a.run(f"task {i}") for i, a in enumerate(agents)))
    assert [final_answer(t) for t in results] == ["done"] * 8


async def test_empty_instruction_is_invalid(openai_stub):
    with pytest.raises(AgentError) as info:
        await agent_for(openai_stub).run("   ")
    assert info.value.code is ErrorCode.INVALID_INSTRUCTION
    assert openai_stub.chat_requests == []


async def test_auto_mode_picks_constrained_without_tool_use_and_native_with_it():
    with ScriptedOpenAIServer(capabilities=[]) as server:
        assert (await agent_for(server, mode="auto").resolve_mode()).value == "constrained"
    with ScriptedOpenAIServer(capabilities=["tool_use"]) as server:
        assert (await agent_for(server, mode="auto").resolve_mode()).value == "native"


async def test_constrained_answer_without_a_tool_ends_the_run_with_its_words(openai_stub):
    openai_stub.enqueue(json_content({"type": "answer", "answer": "None of my tools can write a poem."}))
    transcript = await agent_for(openai_stub).run("Write a poem about autumn")
    assert calls == []  # nothing ran
    assert [m.type for m in transcript] == ["result"]
    assert final_answer(transcript) == "None of my tools can write a poem."
    assert len(openai_stub.chat_requests) == 1
    # the system prompt lists the answer as a choice, in the same form as the tools
    system = openai_stub.chat_requests[0]["messages"][0]["content"]
    assert smallmodel.format_answer("...") in system and '"tool": "terminate"' not in system


async def test_constrained_answer_after_a_tool_result_finishes_in_words(openai_stub):
    openai_stub.enqueue(json_content({"type": "weather", "tool": "get_weather", "arguments": {"city": "Paris"}}),
                        json_content({"type": "answer", "answer": "It is 21 degrees in Paris."}))
    transcript = await agent_for(openai_stub).run("Weather in Paris?")
    assert calls == [("get_weather", "Paris", "celsius")]
    assert final_answer(transcript) == "It is 21 degrees in Paris."
    second = openai_stub.chat_requests[1]["messages"]
    assert second[-1] == {"role": "user", "content": smallmodel.format_result("get_weather", second[-1]["content"][
        len("Result of get_weather: "):])}


# ------------------------------------------------------------------------ repeated calls, honest outcomes


async def test_an_identical_call_runs_once_and_the_model_is_steered_to_finish(openai_stub):
    again = json_content({"type": "words", "tool": "count_words", "arguments": {"text": "a b"}})
    openai_stub.enqueue(again, again, json_content({"type": "answer", "answer": "There are 2 words."}))
    transcript = await agent_for(openai_stub).run("How many words in: a b")
    assert calls == [("count_words", "a b")]  # the repeat was not run again
    assert [(m.type, m.tool, m.content) for m in transcript if m.type == "result"] == [
        ("result", "count_words", "2"), ("result", "count_words", "2"), ("result", None, "There are 2 words.")]
    steer = openai_stub.chat_requests[2]["messages"][-1]["content"]
    assert "same as before: count_words is done" in steer
    branches = openai_stub.chat_requests[2]["response_format"]["json_schema"]["schema"]["anyOf"]
    offered = {v["properties"]["tool"]["const"] for v in branches if "tool" in v["properties"]}
    assert "count_words" not in offered and smallmodel.answer_schema() in branches


async def test_identical_calls_in_one_native_response_run_once(openai_stub):
    openai_stub.enqueue(tool_call("", {}, calls=[("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Oslo"})]),
                        text("21 degrees in Oslo."))
    transcript = await agent_for(openai_stub, mode="native").run("Weather in Oslo")
    assert calls == [("get_weather", "Oslo", "celsius")]
    assert final_answer(transcript) == "21 degrees in Oslo."


async def test_a_serialized_call_is_never_the_final_answer(openai_stub):
    blob = json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})
    openai_stub.enqueue(json_content({"tool": "get_weather", "arguments": {"city": "Paris"}}),
                        json_content({"tool": "terminate", "arguments": {"message": blob}}),
                        json_content({"tool": "terminate", "arguments": {"message": "It is 21 degrees in Paris."}}))
    transcript = await agent_for(openai_stub).run("Weather in Paris?")
    refused = next(m for m in transcript if m.type == "error")
    assert refused.code == "MODEL_OUTPUT_INVALID" and "plain words" in refused.content
    assert final_answer(transcript) == "It is 21 degrees in Paris."


async def test_rounds_running_out_without_words_end_with_no_answer(openai_stub):
    openai_stub.enqueue(tool_call("get_weather", {"city": "Rome"}),
                        text('{"name": "get_weather", "arguments": {"city": "Rome"}}'))
    seen = []
    transcript = await agent_for(openai_stub, mode="native", max_rounds=2).run("Weather in Rome", on_message=seen.append)
    assert not answered(transcript) and final_answer(transcript) is None
    assert transcript[-1].type == "error" and transcript[-1].code == ErrorCode.NO_ANSWER.value
    assert "rounds ran out" in transcript[-1].content and seen == transcript


async def test_a_run_whose_every_call_failed_has_no_answer(openai_stub):
    openai_stub.enqueue(tool_call("explode", {"reason": "x"}), tool_call("explode", {"reason": "x"}),
                        text("Done, all good."))
    transcript = await agent_for(openai_stub, mode="native").run("explode it")
    assert transcript[-1].code == ErrorCode.NO_ANSWER.value
    assert "every tool call failed" in transcript[-1].content and "Done, all good." in transcript[-1].content
    assert not answered(transcript)


async def test_an_answer_with_no_call_at_all_is_a_success(openai_stub):
    openai_stub.enqueue(text("Hello! How can I help?"))
    transcript = await agent_for(openai_stub, mode="native").run("hi")
    assert answered(transcript) and final_answer(transcript) == "Hello! How can I help?"


def test_cli_exits_1_when_the_run_has_no_answer_and_0_with_one(openai_stub):
    from typer.testing import CliRunner

    from lmstudio_agent.cli import app

    args = ["run", "Weather in Rome", "--base-url", openai_stub.base_url, "--model", "scripted-model",
            "--mode", "native", "--max-rounds", "2", "--json"]
    openai_stub.enqueue(tool_call("weather_now", {"city": "Rome"}), text("Rome is sunny."))  # its only call failed
    failed = CliRunner().invoke(app, args)
    assert failed.exit_code == 1, failed.output
    assert '"code": "NO_ANSWER"' in failed.output
    openai_stub.enqueue(text("It is sunny in Rome."))
    assert CliRunner().invoke(app, args).exit_code == 0
