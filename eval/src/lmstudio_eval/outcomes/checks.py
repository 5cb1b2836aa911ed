"""Judging one run by its outcome, in code: the state it left, the calls it made, the answer it gave.

- **State**: the world after the run must equal the world after the task's gold calls, with as many changes (a
  change made twice is not the same outcome); a restraint task must change nothing. The invoice agent must have
  stored exactly once, under the invoice's number, with its total.
- **Answer**: the run must end with a final answer in words (not NO_ANSWER, not JSON, not a serialized call), that
  is not an echo of the request or the document, and that states the result: every value the task names
  (a text, a number, a share such as a confidence, a date) is found in it, written any usual way.
- **First call**: the first tool call the model made, name and arguments, compared after the tool's own
  validation (:func:`lmstudio_eval.scoring.compare_arguments`).
- **Goal tasks**: both chained tools succeeded, in the goals' order.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping, Sequence

from lmstudio_agent.agent.loop import is_words
from lmstudio_agent.builtins.invoice_text import MONTHS, dates_in, parse_amount
from lmstudio_agent.agent.messages import AgentMessage, final_answer
from ..scoring import compare_arguments
from .generator import gold_run, quoted_note
from .world import CountingStorage, World, build_tool

ECHO_RUN_WORDS = 10  # an answer sharing this many words in a row with the input repeats it


@dataclass
class Verdict:
    """How one run of one wording did.

    ``first_call_exact`` is None where the task has no first call to compare (restraint, the invoice agent);
    ``goal_order`` is None outside goal tasks.
    """

    success: bool
    state_ok: bool
    answered: bool
    answer_ok: bool
    echo: bool
    first_call_exact: bool | None
    goal_order: bool | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def words(text: str) -> list[str]:
    """Lower-case words and numbers of ``text`` (hyphens, underscores and punctuation are spaces)."""
    return re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text.lower().replace("_", " "))


def tokens(text: str) -> list[str]:
    """Lower-case tokens of ``text``, an identifier (UUID, e-mail address, slug, decimal) kept as one."""
    return re.findall(r"[a-z0-9]+(?:[-.@_][a-z0-9]+)*", text.lower())


def _longest_run(said: Sequence[str], heard: Sequence[str]) -> int:
    """The most tokens in a row that ``said`` and ``heard`` share."""
    best, previous = 0, [0] * (len(heard) + 1)
    for token in said:
        current = [0] * (len(heard) + 1)
        for j, other in enumerate(heard, start=1):
            if token == other:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def is_echo(answer: str, inputs: Sequence[str]) -> bool:
    """True when the answer repeats an input instead of answering: it is the whole input, or a piece of it of
    four tokens or more, or at least half of it is a stretch of ``ECHO_RUN_WORDS`` tokens or more copied from the
    input (a review or an invoice repeated word for word). A sentence that names what the request named ("Hive 818
    is relocated to the Gorse Common apiary", "I can't remove ... from the choir") is not an echo."""
    said = tokens(answer)
    if not said:
        return False
    for source in inputs:
        heard_tokens = tokens(source)
        if said == heard_tokens or (len(said) >= 4 and f" {' '.join(said)} " in f" {' '.join(heard_tokens)} "):
            return True
        run = _longest_run(said, heard_tokens)
        if run >= ECHO_RUN_WORDS and 2 * run >= len(said):
            return True
    return False


def numbers_said(answer: str) -> list[float]:
    """The numbers written in an answer (``1,250.50``, ``1.250,50``, ``42.5``, ``91%`` as 91)."""
    found = []
    for token in re.findall(r"\d[\d,.\u00a0]*\d|\d", answer):
        value = parse_amount(token)
        if value is None:
            try:
                value = float(token.replace(",", ""))
            except ValueError:
                continue
        found.append(float(value))
    return found


def _states_date(answer: str, iso: str) -> bool:
    if iso in answer or any(found == iso for _, found in dates_in(answer)):
        return True
    year, month, day = (int(part) for part in iso.split("-"))
    names = [name for name, number in MONTHS.items() if number == month]
    months = "|".join(names)
    pattern = rf"\b{day}(st|nd|rd|th)?(\s+of)?\s+({months})\b|\b({months})\.?\s+{day}(st|nd|rd|th)?\b"
    return re.search(pattern, answer, re.IGNORECASE) is not None


def states(answer: str, spec: Mapping[str, Any]) -> bool:
    """True when ``answer`` states the value ``spec`` names: ``{"text": ...}`` (its words, in order),
    ``{"number": ...}``, ``{"share": 0.91}`` (0.91 or 91 %), ``{"date": "2027-03-10"}`` (ISO or written out)."""
    if "text" in spec:
        wanted = " ".join(words(str(spec["text"])))
        return bool(wanted) and f" {wanted} " in " " + " ".join(words(answer)) + " "
    if "number" in spec:
        return any(math.isclose(n, float(spec["number"]), abs_tol=0.005) for n in numbers_said(answer))
    if "share" in spec:
        share = float(spec["share"])
        return any(math.isclose(n, share, abs_tol=0.005) or math.isclose(n, share * 100, abs_tol=0.5)
                   for n in numbers_said(answer))
    if "date" in spec:
        return _states_date(answer, str(spec["date"]))
    raise ValueError(f"unknown answer value {dict(spec)}")


def gold_arguments(call: Mapping[str, Any], instruction: str) -> dict[str, Any]:
    note = quoted_note(instruction)
    return {k: (note if v == "{note}" else v) for k, v in call["arguments"].items()}


def call_matches(name: str, arguments: Mapping[str, Any] | None, want: Mapping[str, Any], instruction: str) -> bool:
    """True when a call (name, raw arguments) is the gold call ``want`` after the tool's own validation."""
    if name != want["name"] or arguments is None:
        return False
    tool = build_tool(name)
    if tool.args_model is None:
        return compare_arguments(gold_arguments(want, instruction), arguments, tool.parameters) == ""
    try:
        got = tool.args_model.model_validate(dict(arguments)).model_dump(mode="json", by_alias=True)
        expected = tool.args_model.model_validate(gold_arguments(want, instruction)).model_dump(mode="json", by_alias=True)
    except Exception:  # noqa: BLE001 - arguments the tool refuses are not the gold call
        return False
    return compare_arguments(expected, got, tool.parameters) == ""


def tool_calls(transcript: Sequence[AgentMessage]) -> list[tuple[str, dict[str, Any] | None]]:
    """The tool calls of a run, in order (``terminate`` left out)."""
    return [(m.tool or "", m.args) for m in transcript if m.type == "action" and m.tool and m.tool != "terminate"]


def successes(transcript: Sequence[AgentMessage]) -> list[str]:
    """The tools that returned a result, in order."""
    return [m.tool for m in transcript if m.type == "result" and m.tool and m.tool != "terminate"]


def check_run(task: Mapping[str, Any], instruction: str, transcript: Sequence[AgentMessage], world: World,
              storage: CountingStorage) -> Verdict:
    """The verdict on one run of ``instruction`` (one wording of ``task``), from what it left and said."""
    kind = task["kind"]
    reasons: list[str] = []
    # -- the state
    if kind == "restraint":
        state_ok = not world.changes and world.tables == task["state"] and not storage.writes
        if not state_ok:
            reasons.append(f"a side effect ran: {[c['tool'] for c in world.changes] or storage.writes}")
    elif kind == "invoice":
        number = task["invoice"]["invoice_number"]
        stored = storage.get(number)
        state_ok = storage.writes == [number] and isinstance(stored, dict) and _same_number(
            stored.get("total_amount"), task["invoice"]["total_amount"])
        if not state_ok:
            reasons.append(f"stored {storage.writes} (want once, {number!r} with total {task['invoice']['total_amount']})"
                           + (f", total {stored.get('total_amount')!r}" if isinstance(stored, dict) else ""))
    else:
        expected, _ = gold_run(task, quoted_note(instruction))
        state_ok = world.tables == expected.tables and len(world.changes) == len(expected.changes)
        if not state_ok:
            reasons.append(f"state differs from the gold calls' (changes made: {[c['tool'] for c in world.changes]})")
    # -- the answer
    answer = final_answer(list(transcript))
    answered = answer is not None and is_words(answer)
    inputs = [instruction, *((task.get("documents") or {}).values())]
    echo = answered and is_echo(answer or "", inputs)
    if not answered:
        last = transcript[-1] if transcript else None
        reasons.append(f"no answer in words ({last.code or last.type if last else 'empty run'})")
    elif echo:
        reasons.append("the answer repeats the input")
    missing = [spec for spec in task["answer"] if not (answered and states(answer or "", spec))]
    if missing and answered:
        reasons.append(f"the answer does not state {missing}")
    answer_ok = answered and not echo and not missing
    # -- the first call and the goal's order
    calls = tool_calls(transcript)
    first_call_exact: bool | None = None
    if kind in ("single", "answer", "goal"):
        first_call_exact = bool(calls) and call_matches(calls[0][0], calls[0][1], task["gold_calls"][0], instruction)
    goal_order: bool | None = None
    if kind == "goal":
        done = successes(transcript)
        first, second = (c["name"] for c in task["gold_calls"])
        goal_order = first in done and second in done and done.index(first) < done.index(second)
        if not goal_order:
            reasons.append(f"the goal's steps did not both succeed in order (succeeded: {done})")
    success = state_ok and answer_ok and (goal_order is not False)
    if kind == "answer":  # the read-only tool's result must come from the tool: it has to have run
        ran = task["gold_calls"][0]["name"] in successes(transcript)
        if not ran:
            reasons.append(f"{task['gold_calls'][0]['name']} never returned a result")
        success = success and ran
    if kind == "restraint":
        success = state_ok and answered and not echo  # no value to state: words, and no side effect
    return Verdict(success=success, state_ok=state_ok, answered=answered, answer_ok=answer_ok, echo=echo,
                   first_call_exact=first_call_exact, goal_order=goal_order, reason="; ".join(reasons))


def _same_number(got: Any, want: float) -> bool:
    try:
        return math.isclose(float(got), float(want), abs_tol=0.005)
    except (TypeError, ValueError):
        return False

