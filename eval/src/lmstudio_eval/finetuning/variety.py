"""Variety for the training rows (issue 22, section 5), so the adapter learns to read a request and a tool's
description rather than the corpus's own names and wordings:

- :func:`mask_names`: the tools' names replaced by random identifiers (the Hammer models' recipe: with the name
  gone, only the description says what a tool does), consistently in the offered tools and in the expected calls.
  Hammer masks parameter names too, beside their descriptions; the constrained mode's prompt shows a call's shape
  with the parameter names and no parameter descriptions, so a masked parameter would leave nothing to read and
  the row would teach guessing: parameter names stay;
- :func:`reword`: the same request worded another way: a question, a polite request, a bare imperative, unrelated
  context before it, or informal with a typo that never touches a value the call copies;
- :func:`goal_task`: a two-step task whose steps come from the agent's goals, not from the request, so the
  request only names the input (as the notebook's invoice agent is asked "Process this invoice.").

Every word list here was written for training and shares nothing with the outcome evaluation's generator (a test
checks it): the figures that judge this adapter come from tasks whose wordings it never saw.
"""

from __future__ import annotations

import json
import random
import re
import string
from typing import Any

from lmstudio_agent.agent.loop import Goal
from ..suite import ExpectedCall, Task

STYLES = ("question", "polite", "imperative", "context", "informal")
# Leading words the corpus generator puts before an action (its OPENERS), stripped to reach the bare action.
_OPENER = re.compile(r"^(?:please|can you|could you|would you|hey,? can you|i need to|i'd like to|i want to|"
                     r"go ahead and)\s+", re.IGNORECASE)
_BEFORE = (
    "I'm sorting out a few things before the weekend.",
    "Quick one while the kettle boils.",
    "My manager wants it sorted by noon.",
    "Sorry if this is the third message this morning.",
    "The office plants need watering again.",
    "Working from the garden office today.",
    "Following up on yesterday's meeting.",
    "I've got five minutes between calls.",
    "Long week, but nearly there.",
    "Our usual person is on holiday, so it's me.",
)
_ASK = ("Can you {act}?", "Could you {act} for me?", "Is it possible to {act}?", "Would you mind if we {act}?")
_POLITE = ("Please {act}, thank you.", "Would it be ok to {act}? Cheers.", "Kindly {act}.", "{Act}, please.")
_LOOSE = ("pls {act}", "need to {act} asap", "{act} thx", "hey {act}")
_ALPHABET = string.ascii_lowercase + string.digits


def bare_action(instruction: str) -> str:
    """The request without its leading politeness and final punctuation, starting lower-case."""
    act = _OPENER.sub("", instruction.strip()).rstrip(" .?!")
    return act[:1].lower() + act[1:] if act[:2] != act[:2].upper() else act


def _typo(text: str, keep: str, rng: random.Random) -> str:
    """One pair of neighbouring letters swapped in one word that no copied value contains."""
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", text) if m.group(0).lower() not in keep]
    if not words:
        return text
    word = rng.choice(words)
    at = rng.randrange(1, len(word.group(0)) - 2)
    chars = list(word.group(0))
    chars[at], chars[at + 1] = chars[at + 1], chars[at]
    return text[:word.start()] + "".join(chars) + text[word.end():]


def reword(instruction: str, arguments: dict[str, Any], style: str, rng: random.Random) -> str:
    """``instruction`` worded in ``style`` (one of :data:`STYLES`); the values the call copies stay as written."""
    act = bare_action(instruction)
    if style == "question":
        return rng.choice(_ASK).format(act=act)
    if style == "polite":
        return rng.choice(_POLITE).format(act=act, Act=act[:1].upper() + act[1:])
    if style == "imperative":
        return f"{act[:1].upper()}{act[1:]}."
    if style == "context":
        return f"{rng.choice(_BEFORE)} {act[:1].upper()}{act[1:]}."
    if style == "informal":
        keep = json.dumps(arguments, ensure_ascii=False).lower()
        return _typo(rng.choice(_LOOSE).format(act=act), keep, rng)
    raise ValueError(f"unknown style {style!r}")


def _random_name(rng: random.Random, prefix: str, taken: set[str]) -> str:
    while True:
        name = prefix + "".join(rng.choice(_ALPHABET) for _ in range(5))
        if name not in taken:
            taken.add(name)
            return name


def mask_names(task: Task, rng: random.Random) -> Task:
    """``task`` with every offered tool's name replaced by a random identifier (descriptions and parameters
    kept), and the expected calls renamed to match."""
    taken: set[str] = set()
    names = {spec["function"]["name"]: _random_name(rng, rng.choice(("fn_", "tool_", "f")), taken)
             for spec in task.tools}
    tools = [{"type": "function", "function": {**spec["function"], "name": names[spec["function"]["name"]]}}
             for spec in task.tools]

    def call(expected: ExpectedCall | None) -> ExpectedCall | None:
        return None if expected is None else ExpectedCall(name=names[expected.name], arguments=expected.arguments)

    calls = [call(c) for c in task.expected_calls] if task.expected_calls else None
    return task.model_copy(update={"id": f"{task.id}-masked", "tools": tools, "expected": call(task.expected),
                                   "expected_calls": calls})


def goal_task(task: Task, rng: random.Random) -> tuple[Task, tuple[Goal, ...]]:
    """A two-step corpus task rewritten so the goals give the steps and the request only the input: the request
    keeps its first part (what to find), the goals say to find, then act on the first match, then report."""
    assert task.expected_calls and len(task.expected_calls) == 2, f"{task.id} is not a two-step task"
    first, second = task.expected_calls
    specs = {t["function"]["name"]: t["function"] for t in task.tools}
    request = re.split(r",? (?:and )?then |, and ", task.instruction)[0].rstrip(" .?!,") + "."
    describe = rng.random() < 0.5  # half the goals name the tools, half describe the steps in their words

    def step(name: str) -> str:
        text = specs[name].get("description", "").rstrip(".")
        return f"{text[:1].lower()}{text[1:]} ({name})" if not describe else f"{text[:1].lower()}{text[1:]}"

    goals = (
        Goal(name="Persona", description=rng.choice(("You are an operations assistant for a small team.",
                                                     "You help the office keep its records in order."))),
        Goal(name="Procedure", description=(
            "For each request:\n"
            f"1. First {step(first.name)}\n"
            f"2. Then {step(second.name)}, using the first match\n"
            "3. Tell the user the outcome")),
    )
    return task.model_copy(update={"id": f"{task.id}-goals", "instruction": request}), goals
