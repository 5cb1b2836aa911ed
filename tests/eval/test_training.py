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


# ---------------------------------------------------------------------------------------------- the rows' variety
# (issue 22, section 5: masked names, restraint rows, varied wordings, goal-driven runs)

import random  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

from lmstudio_eval.corpus import corpus_path  # noqa: E402
from lmstudio_eval.finetuning import variety  # noqa: E402
from lmstudio_eval.finetuning.data import RowRecipe, run_rows, varied_rows  # noqa: E402

CORPUS = load_suite(corpus_path("train"))
SINGLE = [t for t in CORPUS if t.kind == "call"]
TWO_STEP = [t for t in CORPUS if t.kind == "two_step"]


def test_masked_names_are_consistent_and_keep_what_the_tools_do():
    rng = random.Random(3)
    for task in SINGLE[::53] + TWO_STEP[::41]:
        masked = variety.mask_names(task, rng)
        renamed = {a["function"]["name"]: b["function"]["name"] for a, b in zip(task.tools, masked.tools, strict=True)}
        assert all(old != new and old not in new for old, new in renamed.items())
        assert [t["function"]["description"] for t in masked.tools] == [t["function"]["description"] for t in task.tools]
        tools = {t.name: t for t in tools_for(masked)}
        for before, after in zip(task.expected_calls or [task.expected], masked.expected_calls or [masked.expected],
                                     strict=True):
            assert after.name == renamed[before.name] and after.arguments == before.arguments
            tools[after.name].validate_arguments(after.arguments)
        row = run_rows(masked)
        assert task.tools[0]["function"]["name"] not in json.dumps(row)


def test_rewordings_keep_every_value_the_call_copies():
    rng = random.Random(5)
    for task in SINGLE[::29]:
        copied = [v for v in task.expected.arguments.values() if isinstance(v, str) and v in task.instruction]
        for style in variety.STYLES:
            text = variety.reword(task.instruction, task.expected.arguments, style, rng)
            assert all(value in text for value in copied), (style, text, copied)


def test_a_goal_driven_row_takes_its_steps_from_the_goals_and_ends_stating_the_result():
    rng = random.Random(7)
    task = TWO_STEP[4]
    goal, goals = variety.goal_task(task, rng)
    second = task.expected_calls[1]
    assert len(goal.instruction) < len(task.instruction)
    steps = goals[-1].description
    assert steps.index("1.") < steps.index("2.") < steps.index("3.")
    row = run_rows(goal, goals=goals)
    roles = [m["role"] for m in row["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert steps in row["messages"][0]["content"] and row["messages"][1]["content"] == goal.instruction
    assert second.name in row["messages"][4]["content"]
    final = json.loads(row["messages"][-1]["content"])
    assert final["type"] == "answer" and str(second.arguments[next(iter(second.arguments))]) in final["answer"]


def test_the_recipe_mixes_restraint_goals_masked_names_and_rewordings():
    recipe = RowRecipe(rows=120, goal_rows=12, two_step_rows=8)
    rows = varied_rows(CORPUS, recipe, random.Random(11))
    assert len(rows) == 120
    answers_first = [r for r in rows if json.loads(r["messages"][2]["content"]).get("type") == "answer"]
    assert len(answers_first) == round(120 * recipe.restraint)
    assert sum("Procedure:" in r["messages"][0]["content"] for r in rows) == 12
    masked = sum(bool(re.search(r'"tool": "(fn_|tool_|f)[a-z0-9]{5}"', r["messages"][0]["content"])) for r in rows)
    assert 0.15 < masked / 120 < 0.45
    requests = {r["messages"][1]["content"] for r in rows}
    assert len(requests - {t.instruction for t in CORPUS}) > 30  # reworded


def test_the_training_wordings_share_nothing_with_the_outcome_evaluation():
    """The test split's wordings must be new to the adapter: no three-word run of the training word lists occurs in
    the outcome generator's source."""
    generator = Path(variety.__file__).parents[1] / "outcomes" / "generator.py"
    source = re.sub(r"\s+", " ", generator.read_text(encoding="utf-8").lower())
    lists = variety._BEFORE + variety._ASK + variety._POLITE + variety._LOOSE
    for wording in lists:
        words = re.findall(r"[a-z']+", wording.lower())
        for i in range(len(words) - 2):
            run = " ".join(words[i:i + 3])
            assert run not in source, (wording, run)
