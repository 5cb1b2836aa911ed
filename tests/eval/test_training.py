"""Fine-tuning rows are the agent's own first-round chat, answered with the call the constrained mode writes."""

from __future__ import annotations

import json
import sys

import pytest

from lmstudio_agent.model import smallmodel
from lmstudio_agent.model.client import ChatClient
from lmstudio_eval.finetuning import job as finetune_job
from lmstudio_eval.finetuning.cli import finetune_python, plot_curve, run_training_job
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_eval.runner import run_task
from lmstudio_eval.suite import builtin_suite_path, load_suite, tools_for
from lmstudio_eval.finetuning.data import CHAT_CHECKS, CHAT_KEEP, ask_plainly, chat_rows, tool_call_rows, write_rows
from lmstudio_agent.model.toolcalls import parse_tool_calls
from tests.support.openai_stub import MODEL_ID, text

TRAIN = load_suite(builtin_suite_path("train"))


async def test_rows_hold_exactly_the_messages_the_first_round_sends(openai_stub):
    task = TRAIN[3]
    (row,) = tool_call_rows([task])
    openai_stub.enqueue(text("ok"))
    async with ChatClient(openai_stub.base_url, None, MODEL_ID, max_retries=0) as client:
        await run_task(client, task, "constrained")
    sent = openai_stub.chat_requests[0]["messages"]
    assert row["messages"][:-1] == sent


def test_the_answer_is_the_expected_call_in_the_constrained_shape():
    for task in TRAIN[::97]:
        (row,) = tool_call_rows([task])
        answer = row["messages"][-1]
        assert answer["role"] == "assistant"
        tool = next(t for t in tools_for(task) if t.name == task.expected.name)
        assert answer["content"] == smallmodel.format_call(tool, task.expected.arguments)
        (call,) = parse_tool_calls(answer["content"]).calls
        assert (call.name, call.arguments) == (task.expected.name, task.expected.arguments)


async def test_plain_chat_rows_keep_the_models_own_answers(openai_stub, tmp_path):
    openai_stub.enqueue(text(" Paris. "), text(""))
    async with ChatClient(openai_stub.base_url, None, MODEL_ID, max_retries=0) as client:
        answers = await ask_plainly(client, CHAT_KEEP[:2])
    assert list(answers.values()) == ["Paris.", ""]
    assert openai_stub.chat_requests[0]["messages"] == [{"role": "user", "content": CHAT_KEEP[0]}]
    assert "tools" not in openai_stub.chat_requests[0] and "response_format" not in openai_stub.chat_requests[0]
    rows = chat_rows(answers)  # an empty answer is not trained on
    assert rows == [{"messages": [{"role": "user", "content": CHAT_KEEP[0]}, {"role": "assistant", "content": "Paris."}]}]
    path = write_rows(rows, tmp_path / "rows.jsonl")
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows
    assert not set(CHAT_CHECKS) & set(CHAT_KEEP)  # the check questions are never trained on


def test_a_failed_job_is_a_clear_error(tmp_path):
    # this interpreter has no fine-tuning stack (or gets a bad base model): the job reports, the parent raises
    job = {"rows": str(write_rows([], tmp_path / "rows.jsonl")), "output_dir": str(tmp_path / "out"),
           "base_model": str(tmp_path / "missing.gguf"), "result": str(tmp_path / "result.json")}
    with pytest.raises(AgentError) as caught:
        run_training_job(__import__("pathlib").Path(sys.executable), job, tmp_path / "job.json", timeout_s=120)
    assert caught.value.code in (ErrorCode.FINE_TUNING_FAILED, ErrorCode.INVALID_REQUEST)
    assert json.loads((tmp_path / "result.json").read_text())["ok"] is False


def test_the_job_needs_its_file():
    assert finetune_job.main([]) == 2


def test_the_training_curve_is_drawn(tmp_path):
    path = plot_curve([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 0.5}], tmp_path / "curve.png", "t")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert plot_curve([], tmp_path / "none.png", "t") is None


def test_the_finetune_python_falls_back_to_this_interpreter(tmp_path, monkeypatch):
    monkeypatch.delenv("LMSTUDIO_FINETUNE_PYTHON", raising=False)
    monkeypatch.chdir(tmp_path)
    assert str(finetune_python(None)) == sys.executable
    monkeypatch.setenv("LMSTUDIO_FINETUNE_PYTHON", sys.executable)
    assert str(finetune_python(None)) == sys.executable
