"""``lmstudio-agent eval`` end to end against the scripted loopback server: table, JSON report, PNG plot and
the final machine-readable line; bad input gives a clear message and a non-zero exit, never a traceback."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lmstudio_agent.cli import app as main_app
from lmstudio_eval.cli import eval_app
from lmstudio_eval.report import PLOT_FILE, REPORT_FILE
from lmstudio_eval.suite import Task, write_suite
from lmstudio_eval.suite_tools import suite_registry
from tests.support.openai_stub import MODEL_ID, json_content, text

REGISTRY = suite_registry()
runner = CliRunner()


def small_suite(tmp_path):
    tools = [REGISTRY.get("get_weather").to_openai(), REGISTRY.get("convert_currency").to_openai()]
    tasks = [
        Task(id="w", tools=tools, instruction="Weather in Oslo?", expected={"name": "get_weather", "arguments": {"city": "Oslo"}}),
        Task(id="c", tools=tools, instruction="Convert 10 USD to EUR.",
             expected={"name": "convert_currency", "arguments": {"amount": 10, "from_currency": "USD", "to_currency": "EUR"}}),
    ]
    return write_suite(tasks, tmp_path / "suite.jsonl")


def test_eval_writes_the_report_the_plot_and_a_final_json_line(openai_stub, tmp_path):
    suite = small_suite(tmp_path)
    openai_stub.enqueue(
        # constrained: one right, one wrong tool
        json_content({"name": "get_weather", "arguments": {"city": "Oslo"}}),
        json_content({"name": "get_weather", "arguments": {"city": "USD"}}),
        # plain: chats, then a correct call in words
        text("It is sunny in Oslo."),
        text('{"name": "convert_currency", "arguments": {"amount": 10.0, "from_currency": "USD", "to_currency": "EUR"}}'),
    )
    report_dir = tmp_path / "report"
    result = runner.invoke(eval_app, ["eval", "--suite", str(suite), "--base-url", openai_stub.base_url,
                                      "--model", MODEL_ID, "--mode", "auto", "--mode", "plain",
                                      "--report-dir", str(report_dir)])
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final["tasks"] == 2 and final["mode"] == "constrained (auto)"
    assert final["name_accuracy"] == 0.5 and final["exact_accuracy"] == 0.5
    assert final["modes"]["plain"] == {**final["modes"]["plain"], "name_accuracy": 0.5, "exact_accuracy": 0.5}

    report = json.loads((report_dir / REPORT_FILE).read_text())
    assert set(report["modes"]) == {"constrained (auto)", "plain"}
    assert report["modes"]["plain"]["no_call_rate"] == 0.5
    assert report["modes"]["constrained (auto)"]["per_tool"]["convert_currency"]["exact_accuracy"] == 0.0
    assert [r["task_id"] for r in report["results"]["plain"]] == ["w", "c"]
    assert (report_dir / PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "tool name" in result.stdout  # the rich table
    assert openai_stub.chat_requests[0]["model"] == MODEL_ID


def test_the_main_cli_mounts_eval_and_finetune_tools():
    result = runner.invoke(main_app, ["--help"])
    assert result.exit_code == 0
    assert "eval" in result.stdout and "finetune-tools" in result.stdout


def test_bad_input_is_a_clear_error(tmp_path, dead_upstream_url):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x"}\n')
    result = runner.invoke(eval_app, ["eval", "--suite", str(broken), "--base-url", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 2 and "broken.jsonl:1" in result.output and "Traceback" not in result.output

    result = runner.invoke(eval_app, ["eval", "--mode", "constrained"])
    assert result.exit_code == 2 and "--base-url" in result.output

    result = runner.invoke(eval_app, ["eval", "--base-url", dead_upstream_url, "--mode", "wizard"])
    assert result.exit_code == 2 and "unknown mode" in result.output

    result = runner.invoke(eval_app, ["eval", "--suite", str(small_suite(tmp_path)), "--base-url", dead_upstream_url,
                                      "--mode", "constrained", "--report-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "connection_failed" in result.output.lower()
    assert not (tmp_path / "r" / REPORT_FILE).exists()


def test_a_model_the_server_does_not_have_is_an_error_not_a_zero_score(openai_stub, tmp_path):
    result = runner.invoke(eval_app, ["eval", "--suite", str(small_suite(tmp_path)), "--base-url", openai_stub.base_url,
                                      "--model", "lfm2-350m", "--report-dir", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert "MODEL_NOT_LOADED" in result.output and "--model" in result.output and MODEL_ID in result.output
    assert openai_stub.chat_requests == [] and not (tmp_path / "r").exists()
