"""The harness on the real embedded model (gateway-model serving SmolLM2-135M through llama-cpp-python).

Behaviour only, no accuracy thresholds (those are figures, recorded by `make eval` in reports/eval/)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lmstudio_agent.model import smallmodel
from lmstudio_agent.agent.loop import TERMINATE
from lmstudio_agent.model.client import ChatClient
from lmstudio_eval.cli import eval_app
from lmstudio_eval.runner import concrete_mode, run_suite, spread
from lmstudio_eval.suite import builtin_suite_path, load_suite, tools_for
from lmstudio_agent.model.modes import ConstrainedStrategy
from lmstudio_agent.model.schema import inline_refs, validate
from lmstudio_agent.model.toolcalls import parse_tool_calls

pytestmark = [pytest.mark.model, pytest.mark.slow]

TASKS = spread(load_suite(builtin_suite_path("heldout")), 6)


async def test_auto_picks_constrained_and_the_grammar_always_yields_a_readable_call(embedded_model):
    async with ChatClient(embedded_model.base_url, embedded_model.api_key, embedded_model.model) as client:
        assert await concrete_mode(client, "auto") == "constrained"
        results = await run_suite(client, TASKS, "constrained")
    assert len(results) == len(TASKS)
    for result in results:
        # a call to an offered tool, or an answer in words read as no call: never an unreadable reply
        assert result.called in result.offered or (
            result.called is None and smallmodel.read_answer(result.content) is not None), result
        assert result.latency_s > 0 and result.completion_tokens > 0


async def test_copied_values_are_what_the_schema_allows_on_the_real_grammar(embedded_model):
    async with ChatClient(embedded_model.base_url, embedded_model.api_key, embedded_model.model) as client:
        for task in TASKS[:4]:
            tools = [*tools_for(task), TERMINATE]
            schema = smallmodel.call_schema(tools, [task.instruction], answer=False)
            response = await client.chat(
                [{"role": "system", "content": smallmodel.system_prompt(tools)},
                 {"role": "user", "content": task.instruction}],
                response_format=smallmodel.response_format(tools, [task.instruction], answer=False), max_tokens=200)
            (call,) = parse_tool_calls(response.content).calls
            assert call.name in [t.name for t in tools_for(task)]  # the built-in terminate is not offered
            assert not validate(json.loads(response.content), inline_refs(schema)), response.content


async def test_the_last_round_answers_in_words_on_the_real_grammar(embedded_model):
    tools = tools_for(TASKS[0])
    async with ChatClient(embedded_model.base_url, embedded_model.api_key, embedded_model.model) as client:
        response = await client.chat(
            [{"role": "system", "content": smallmodel.system_prompt([])},
             {"role": "user", "content": TASKS[0].instruction},
             {"role": "user", "content": "Give your final answer now, in plain words."}],
            **ConstrainedStrategy().request([], []), max_tokens=96)
    turn = ConstrainedStrategy().read(response, [])
    assert not turn.calls and turn.text and smallmodel.read_answer(response.content) == turn.text
    assert not parse_tool_calls(turn.text).calls  # words, never a serialized call
    assert tools  # the task's tools were withdrawn for this round


def test_the_cli_measures_several_modes_on_the_real_model(embedded_model, tmp_path):
    result = CliRunner().invoke(eval_app, [
        "eval", "--base-url", embedded_model.base_url, "--api-key", embedded_model.api_key, "--model",
        embedded_model.model, "--mode", "constrained", "--mode", "plain", "--split", "heldout", "--limit", "3", "--max-tokens", "96",
        "--report-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final["tasks"] == 3 and set(final["modes"]) == {"constrained", "plain"}
    assert (tmp_path / "report.json").is_file() and (tmp_path / "accuracy.png").is_file()
