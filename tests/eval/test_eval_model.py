"""The harness on the real embedded model (gateway-model serving SmolLM2-135M through llama-cpp-python).

Behaviour only, no accuracy thresholds (those are figures, recorded by `make eval` in reports/eval/)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lmstudio_agent import constrained
from lmstudio_agent.agent import TERMINATE
from lmstudio_agent.client import ChatClient
from lmstudio_eval.cli import eval_app
from lmstudio_eval.runner import concrete_mode, run_suite, spread
from lmstudio_eval.suite import builtin_suite_path, load_suite, tools_for
from lmstudio_agent.toolcalls import parse_tool_calls

pytestmark = [pytest.mark.model, pytest.mark.slow]

TASKS = spread(load_suite(builtin_suite_path("heldout")), 6)


async def test_auto_picks_constrained_and_the_grammar_always_yields_a_readable_call(embedded_model):
    async with ChatClient(embedded_model.base_url, embedded_model.api_key, embedded_model.model) as client:
        assert await concrete_mode(client, "auto") == "constrained"
        results = await run_suite(client, TASKS, "constrained")
    assert len(results) == len(TASKS)
    for result in results:
        assert result.called in [*result.offered, "terminate"], result  # never chat, never an unknown tool
        assert result.latency_s > 0 and result.completion_tokens > 0


async def test_copied_values_are_spans_of_the_request_on_the_real_grammar(embedded_model):
    async with ChatClient(embedded_model.base_url, embedded_model.api_key, embedded_model.model) as client:
        for task in TASKS[:4]:
            tools = [*tools_for(task), TERMINATE]
            response = await client.chat(
                [{"role": "system", "content": constrained.system_prompt(tools)},
                 {"role": "user", "content": task.instruction}],
                response_format=constrained.response_format(tools, [task.instruction]), max_tokens=200)
            (call,) = parse_tool_calls(response.content).calls
            if call.name == TERMINATE.name:
                continue
            spans = set(constrained.spans([task.instruction]))
            for value in call.arguments.values():
                if isinstance(value, str):
                    assert value in spans or value in json.dumps(next(
                        t.parameters for t in tools if t.name == call.name)), (task.instruction, call)


def test_the_cli_measures_several_modes_on_the_real_model(embedded_model, tmp_path):
    result = CliRunner().invoke(eval_app, [
        "eval", "--base-url", embedded_model.base_url, "--api-key", embedded_model.api_key, "--model",
        embedded_model.model, "--mode", "constrained", "--mode", "plain", "--limit", "3", "--max-tokens", "96",
        "--report-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final["tasks"] == 3 and set(final["modes"]) == {"constrained", "plain"}
    assert (tmp_path / "report.json").is_file() and (tmp_path / "accuracy.png").is_file()
