"""Fine-tuning rows from suite and corpus tasks: the exact chat the agent sends, answered with the right call (and,
for corpus tasks, the tool's result and what comes next: the second call, or the answer in words).

The system prompt and user turn are built by the agent itself (:meth:`Agent.system_message`,
:meth:`Agent.offered_tools`, the mode's strategy), so a model trained on these rows sees at inference what it
saw in training; the answer is the call as the constrained mode writes it (:func:`smallmodel.format_call`).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Sequence

from lmstudio_agent.model import smallmodel
from lmstudio_agent.agent.loop import TERMINATE, Goal
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.agent.documents import with_long_input
from lmstudio_agent.lmstudio import DEFAULT_GOALS
from lmstudio_agent.model.modes import ToolMode, strategy_for
from lmstudio_agent.model.toolcalls import ToolCall
from lmstudio_agent.agent.tools import ToolRegistry
from ..runner import build_agent, spread
from ..suite import Task, tools_for
from .variety import STYLES, goal_task, mask_names, reword

# Asked of the base model and kept as its own answers, so training on tool calls does not wash out plain
# chat; the check questions (CHAT_CHECKS) are different ones.
CHAT_KEEP = (
    "What is the capital of France?", "Give me three tips for sleeping better.", "What is photosynthesis?",
    "Write a haiku about the sea.", "How many days are in a leap year?", "What does a CPU do?",
    "Suggest a name for a grey cat.", "Why is the sky blue?", "How do I boil an egg?",
    "What is the difference between weather and climate?", "Tell me a fun fact about octopuses.",
    "What is 15 plus 27?", "Explain what a noun is.", "What are the primary colours?",
    "How can I stay focused while studying?", "What is the largest planet in the solar system?",
    "Say hello in a friendly way.", "What is a good breakfast for energy?", "Who wrote Romeo and Juliet?",
    "What is machine learning in one sentence?", "How do plants drink water?", "What is a prime number?",
    "Recommend a hobby for a rainy day.", "What does recycling mean?",
)
CHAT_CHECKS = (
    "What is the boiling point of water at sea level?",
    "Name three fruits that are red.",
    "Can you explain what gravity is in simple words?",
    "Write one sentence about autumn.",
    "What is the opposite of 'ancient'?",
)

_OFFLINE_URL = "http://127.0.0.1:9/v1"  # the agent needs a client object; building messages never calls it


def first_round_messages(task: Task, registry: ToolRegistry | None = None, *, mode: str = "constrained",
                         goals: Sequence[Goal] = DEFAULT_GOALS) -> list[dict[str, Any]]:
    """The messages of the agent's first round for ``task`` (what :meth:`Agent.first_turn` sends)."""
    agent = build_agent(ChatClient(_OFFLINE_URL), tools_for(task, registry), mode, goals)
    documents = with_long_input(task.instruction, None)  # as first_turn: a long request is passed by reference
    return agent.first_messages(task.instruction, ToolMode.CONSTRAINED if mode == "plain" else mode, documents)


def tool_call_rows(tasks: Iterable[Task], registry: ToolRegistry | None = None,
                   goals: Sequence[Goal] = DEFAULT_GOALS) -> list[dict[str, Any]]:
    """One chat row per task: the first-round messages, then the right call in the constrained shape."""
    rows = []
    for task in tasks:
        expected = task.expected
        assert expected is not None, f"task {task.id} has no expected call"
        tool = next(t for t in tools_for(task, registry) if t.name == expected.name)
        answer = smallmodel.format_call(tool, expected.arguments)
        rows.append({"messages": [*first_round_messages(task, registry, goals=goals),
                                  {"role": "assistant", "content": answer}]})
    return rows


def answer_content(text: str) -> str:
    """The assistant's reply when it answers in words (no tool fits, or it finishes after a result), written as
    the constrained mode writes it: the core's own "answer without a tool" formatter when it has one, else the
    final-answer tool's call."""
    formatter = getattr(smallmodel, "format_answer", None)
    if formatter is not None:
        return formatter(text)
    return smallmodel.format_call(TERMINATE, {"message": text})


def run_rows(task: Task, registry: ToolRegistry | None = None, goals: Sequence[Goal] = DEFAULT_GOALS, *,
             finish: bool = True) -> dict[str, Any]:
    """One chat row for a corpus task, in the exact messages the agent sends:

    - ``no_call``: the first round answered in words (no offered tool fits);
    - ``call``: the first round answered with the call; with ``finish``, then the tool's result (as the agent
      returns it) and the final answer in words;
    - ``two_step``: first call, its result, second call, its result, final answer in words.
    """
    messages = first_round_messages(task, registry, goals=goals)
    if task.kind == "no_call":
        return {"messages": [*messages, {"role": "assistant", "content": answer_content(task.answer or "")}]}
    strategy = strategy_for(ToolMode.CONSTRAINED)
    tools = {t.name: t for t in tools_for(task, registry)}
    expected = task.expected
    assert expected is not None, f"task {task.id} has no expected call"  # only a no_call task has none
    calls = task.expected_calls or [expected]
    results = task.results or []
    finish = task.kind == "two_step" or finish
    for number, call in enumerate(calls):
        messages.append({"role": "assistant", "content": smallmodel.format_call(tools[call.name], call.arguments)})
        if number < len(results) and (number + 1 < len(calls) or (finish and task.answer)):
            messages.append(strategy.result_message(ToolCall(name=call.name, arguments=call.arguments),
                                                    results[number]))
    if messages[-1]["role"] != "assistant":
        messages.append({"role": "assistant", "content": answer_content(task.answer or "")})
    return {"messages": messages}


def task_rows(tasks: Iterable[Task], registry: ToolRegistry | None = None, goals: Sequence[Goal] = DEFAULT_GOALS,
              finish_every: int = 3) -> list[dict[str, Any]]:
    """One row per corpus task (:func:`run_rows`); every ``finish_every``-th one-call task goes on to its answer."""
    return [run_rows(task, registry, goals, finish=bool(finish_every) and index % finish_every == 0)
            for index, task in enumerate(tasks)]


def offers_expected(row: dict[str, Any], task: Task) -> bool:
    """Whether the row's tool listing (its system message) offers every tool the task's calls need (the policy
    may narrow the offer). The row's own calls name the tools too, so only the listing is read."""
    listing = row["messages"][0]["content"]
    return all(call.name in listing for call in task.expected_calls or ([task.expected] if task.expected else []))


@dataclass(frozen=True)
class RowRecipe:
    """How the corpus tasks become rows with variety (issue 22, section 5). The defaults are the recipe of the
    issue 22 candidate, which was not shipped: it lost on the outcome evaluation's dev split (README, "Training").

    Args:
        rows: How many corpus rows (one per task), drawn evenly over the corpus's tools.
        restraint: Share of them that are no-call (restraint) tasks, near misses included.
        goal_rows: How many of them are two-step tasks run through goals (:func:`.variety.goal_task`).
        two_step_rows: How many are two-step tasks as requested (both steps named in the request).
        masked: Share of rows whose tool names are random identifiers.
        reworded: Share of rows whose request is worded in one of :data:`.variety.STYLES`.
        finish_every: Every n-th one-call row goes on to the tool's result and the answer in words.
    """

    rows: int = 170
    restraint: float = 0.3
    goal_rows: int = 24
    two_step_rows: int = 16
    masked: float = 0.3
    reworded: float = 0.5
    finish_every: int = 2


def _varied(task: Task, recipe: RowRecipe, rng: random.Random, registry: ToolRegistry | None,
            finish: bool) -> dict[str, Any]:
    """One row for ``task``, reworded and/or with masked names as the recipe's shares draw."""
    if rng.random() < recipe.reworded:
        first = task.expected_calls[0] if task.expected_calls else task.expected
        task = task.model_copy(update={"instruction": reword(task.instruction, first.arguments if first else {},
                                                             rng.choice(STYLES), rng)})
    if rng.random() < recipe.masked:
        masked = mask_names(task, rng)
        row = run_rows(masked, registry, finish=finish)
        if offers_expected(row, masked):
            return row
    return run_rows(task, registry, finish=finish)


def _take(tasks: Sequence[Task], count: int) -> list[Task]:
    return spread(tasks, count) if count > 0 else []


def varied_rows(corpus_tasks: Sequence[Task], recipe: RowRecipe, rng: random.Random,
                registry: ToolRegistry | None = None) -> list[dict[str, Any]]:
    """``recipe.rows`` corpus rows: restraint tasks, goal-driven runs, two-step and one-call tasks, with masked
    names and rewordings in the recipe's shares."""
    by_kind = {kind: [t for t in corpus_tasks if t.kind == kind] for kind in ("no_call", "two_step", "call")}
    restraint = _take(by_kind["no_call"], round(recipe.rows * recipe.restraint))
    two_step = by_kind["two_step"]
    goal_sources = _take(two_step, recipe.goal_rows)
    chosen_ids = {t.id for t in goal_sources}
    requested = _take([t for t in two_step if t.id not in chosen_ids], recipe.two_step_rows)
    single = _take(by_kind["call"], recipe.rows - len(restraint) - len(goal_sources) - len(requested))
    rows = []
    for task in goal_sources:
        goal, goals = goal_task(task, rng)
        rows.append(run_rows(goal, registry, goals))
    for index, task in enumerate(restraint + requested + single):
        rows.append(_varied(task, recipe, rng, registry, finish=index % recipe.finish_every == 0))
    return rows


def chat_rows(answers: dict[str, str]) -> list[dict[str, Any]]:
    """Plain question/answer rows (no tools), e.g. the base model's own answers to :data:`CHAT_KEEP`."""
    return [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for q, a in answers.items() if a.strip()]


async def ask_plainly(client: ChatClient, questions: Iterable[str], max_tokens: int = 96) -> dict[str, str]:
    """Each question asked with no tools and no system prompt (greedy), as a user would chat."""
    answers = {}
    for question in questions:
        response = await client.chat([{"role": "user", "content": question}], max_tokens=max_tokens)
        answers[question] = response.content.strip()
    return answers


def training_rows(corpus_tasks: Sequence[Task], suite_tasks: Sequence[Task], chat_answers: dict[str, str], *,
                  seed: int = 0, registry: ToolRegistry | None = None,
                  recipe: RowRecipe | None = RowRecipe()) -> list[dict[str, Any]]:
    """Every training row, shuffled with ``seed``: corpus tasks (:func:`varied_rows` with ``recipe``, or
    :func:`task_rows` as written when ``recipe`` is None), the suite's own tools' first rounds
    (:func:`tool_call_rows`) and plain chat (:func:`chat_rows`)."""
    rng = random.Random(seed)
    corpus = varied_rows(corpus_tasks, recipe, rng, registry) if recipe is not None else task_rows(corpus_tasks, registry)
    rows = corpus + tool_call_rows(suite_tasks, registry) + chat_rows(chat_answers)
    rng.shuffle(rows)
    return rows


def write_rows(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path
