"""The steps a run must take, from the agent's goals and the user's request together.

The notebook's design puts the procedure in the goals ("1. Extract ... 2. Store ... 3. Provide confirmation")
and leaves the request to say which input it is about ("Process this invoice."). A plan built from the
request's verbs alone runs one step and stops: asked in ordinary words, the notebook's invoice agent
extracted the invoice, answered "processed", and stored nothing. So:

- **Goal steps.** Each numbered or bulleted line of a goal is a step when it names one of the offered tools:
  by the tool's name written out (``store_invoice``), else by the verb it starts with (a step's first word
  is what it does: "Store the extracted data indexed by invoice number" is ``store_invoice`` although it
  shares more words with ``extract_invoice_data``), else by the words it shares with one tool's name more
  than with any other. A line that names no tool ("Provide confirmation", "Handle any errors") is no
  tool step: the answer does it.
- **Request steps.** A request of several steps ("find ..., then book it") is split by
  :func:`routing.steps`; each piece names the tools it shares the most words with.
- **Together.** The goals' procedure is the plan when the request is about it (it shares a word with the
  procedure's tools, or the run carries a document) and asks for no tool outside it; otherwise the
  request's steps are.

A plan is *required* when it comes from the goals, or when the request names two or more steps by their
verbs: a run whose answer comes while a required step's tool has never succeeded is not a success
(:mod:`.agent` asks once more, then ends it NO_ANSWER). The constrained mode's small-model policy also offers
each round only the current step's tools (:mod:`.smallmodel`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Sequence

from .tools import Tool
from .goals import Goal

__all__ = ["Plan", "Step", "goal_lines", "make_plan"]

# "1. extract ...", "2) store ...", "- confirm ...", "* ...", "• ..." at the start of a line, and "1. ... 2. ..."
# written inline in one sentence.
_LINE_MARK = re.compile(r"^\s*(?:\(?\d{1,2}[.)]|[-*•])\s+", re.MULTILINE)
_INLINE_NUMBER = re.compile(r"(?:^|(?<=[\s:;,]))\(?\d{1,2}[.)]\s+")


@dataclass(frozen=True)
class Step:
    """One step of a plan: its words, and the offered tools that can do it (in the registry's order).

    Args:
        text: The words of the step, as the goals or the request wrote them.
        tools: The names of the tools that can do it.
        source: ``"goals"`` or ``"request"``.
    """

    text: str
    tools: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Plan:
    """The ordered tool steps of a run (:func:`make_plan`).

    Args:
        steps: The steps, in order.
        required: Whether a run must complete every step to succeed.
    """

    steps: tuple[Step, ...] = ()
    required: bool = False
    _names: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", frozenset(n for s in self.steps for n in s.tools))

    def __bool__(self) -> bool:
        return bool(self.steps)

    @property
    def tool_names(self) -> frozenset[str]:
        """Every tool some step names."""
        return self._names

    def done(self, succeeded: Sequence[str]) -> int:
        """How many steps are done, in order, after the ``succeeded`` calls (tool names, oldest first): a
        step is done by a success of one of its tools that comes after the previous step was done.

        Args:
            succeeded: The names of the tools whose calls succeeded, oldest first.
        """
        index = 0
        for name in succeeded:
            if index < len(self.steps) and name in self.steps[index].tools:
                index += 1
        return index

    def next_step(self, succeeded: Sequence[str]) -> Step | None:
        """The first step not done yet, or None when every step is.

        Args:
            succeeded: The names of the tools whose calls succeeded, oldest first.
        """
        index = self.done(succeeded)
        return self.steps[index] if index < len(self.steps) else None

    def left_out(self, succeeded: Sequence[str]) -> Step | None:
        """The first required step whose tools never succeeded (None when the plan is not required, or done).

        Args:
            succeeded: The names of the tools whose calls succeeded, oldest first.
        """
        if not self.required:
            return None
        step = self.next_step(succeeded)
        return step


def goal_lines(description: str) -> list[str]:
    """The numbered or bulleted lines of a goal's description (the inline "1. ... 2. ..." form too), in order.

    Args:
        description: A goal's description.
    """
    text = description.strip()
    if _LINE_MARK.search(text):
        pieces = _LINE_MARK.split(text)[1:]
    else:
        pieces = _INLINE_NUMBER.split(text)[1:] if len(_INLINE_NUMBER.findall(text)) >= 2 else []
    return [p.strip().strip(";,.").strip() for p in pieces if p.strip().strip(";,.").strip()]


def _written_name(line: str, tools: Sequence[Tool]) -> list[Tool]:
    return [t for t in tools if re.search(rf"(?<![\w]){re.escape(t.name)}(?![\w])", line)]


def _first_verb(line: str) -> str | None:
    from ..model.smallmodel import routing

    words = routing.content_words(line, routing.PLAIN_WORDS - {"get", "make", "send", "give", "show", "tell"})
    return routing.meaning(words[0]) if words else None


def step_tools(line: str, tools: Sequence[Tool]) -> list[Tool]:
    """The tools a goal line names (see the module docstring); empty when it names none.

    Args:
        line: One line of a goal's description.
        tools: The tools offered.
    """
    from ..model.smallmodel import routing

    written = _written_name(line, tools)
    if written:
        return written[:1]
    verb = _first_verb(line)
    if verb is not None:
        by_verb = [t for t in tools if routing.leading_verb(t.name) == verb]
        if len(by_verb) == 1:
            return by_verb
        if by_verb:
            scores = routing.name_overlap(line, by_verb)
            best = max(scores)
            return [t for t, s in zip(by_verb, scores, strict=True) if s == best] if best > 0 else by_verb
    scores = routing.name_overlap(line, tools)
    best = max(scores, default=0.0)
    if best <= 0:
        return []
    leaders = [t for t, s in zip(tools, scores, strict=True) if s == best]
    return leaders if len(leaders) == 1 else []


def _goal_steps(goals: Sequence[Goal], tools: Sequence[Tool]) -> list[Step]:
    out: list[Step] = []
    for goal in goals:
        for line in goal_lines(goal.description):
            named = step_tools(line, tools)
            if not named:
                continue
            names = tuple(t.name for t in named)
            if out and out[-1].tools == names:
                continue  # "extract the number", "extract the date": one call does both
            out.append(Step(line, names, "goals"))
    return out


def _request_steps(request: str, tools: Sequence[Tool]) -> tuple[list[Step], bool]:
    """The request's steps, and whether each one is named by a verb that starts an offered tool's name."""
    from ..model.smallmodel import routing

    out: list[Step] = []
    by_verb = True
    for piece, scores in routing.ranked_steps(tools, request):
        best = max(scores)
        names = tuple(t.name for t, s in zip(tools, scores, strict=True) if s >= best - routing.MARGIN)
        verb = _first_verb(piece)
        by_verb = by_verb and verb is not None and any(routing.leading_verb(n) == verb for n in names)
        out.append(Step(piece, names, "request"))
    return out, by_verb


def make_plan(goals: Sequence[Goal], request: str | None, tools: Sequence[Tool], *,
              has_documents: bool = False) -> Plan:
    """The run's plan (see the module docstring).

    Args:
        goals: The agent's goals.
        request: The user's request (None: no request steps).
        tools: The tools the model may call (not the final-answer tool).
        has_documents: Whether the run carries documents (a goal procedure then applies to the request).
    """
    tools = [t for t in tools if not t.terminal]
    if not tools:
        return Plan()
    # The routing prior (lexical, no model) is imported with the first plan that has tools: ``import
    # lmstudio_agent`` does not load the small-model package.
    from ..model.smallmodel import routing

    from_goals = _goal_steps(goals, tools)
    from_request, by_verb = _request_steps(request, tools) if request else ([], False)
    if from_goals:
        procedure = {n for s in from_goals for n in s.tools}
        asked_elsewhere = any(not set(s.tools) & procedure for s in from_request)
        about_it = has_documents or (request is not None
                                     and routing.shares_words(request, [t for t in tools if t.name in procedure]))
        if about_it and not asked_elsewhere:
            return Plan(tuple(from_goals), required=True)
    return Plan(tuple(from_request), required=len(from_request) >= 2 and by_verb)
