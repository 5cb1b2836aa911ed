"""The constrained mode's grammar for one round: a call to one of the round's tools, with its values copied
(:mod:`.copying`), or an answer in words; and which tools and whether the answer each round offers.

Each round's grammar offers only the tools the plan's current step names (:func:`round_tools`), and none
whose required number, date or identifier the conversation does not hold (:func:`unfilled`); with none left,
the answer alone, so the model asks rather than invents. Strings and arrays get upper bounds: a tiny model
can loop inside a string until the token cap.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Iterable, Sequence

from ..grammar_bounds import bounded, schema_problem
from ...agent.rounds import RoundContext
from ...agent.tools import Tool
from . import lexicon, routing
from .copying import _Copy, _needs_object
from ..policy import SmallModelPolicy
from .sources import MAX_SPAN_WORDS
from .wire import ARGUMENTS_KEY, NAME_KEY, TOPIC_KEY, answer_schema, callable_tools, topic

ON = SmallModelPolicy()

# The leading verbs of update tools (``routing.leading_verb`` reads "change", "modify", "edit" as "update").
_CHANGE_VERBS = lexicon.CHANGE_VERBS


def _with_a_change(tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """An update tool's arguments (``update_order``, ``reschedule_visit``) with at least one of the optional
    ones: an update that names only what to update changes nothing (a tiny model otherwise stops after the
    ID). One branch per optional argument, each requiring it."""
    verb = routing.leading_verb(tool.name)
    properties = arguments.get("properties") or {}
    required = list(arguments.get("required") or [])
    optional = [name for name in properties if name not in required]
    if verb not in _CHANGE_VERBS or not optional or not required or len(optional) > 8:
        return arguments
    return {"anyOf": [{**arguments, "required": [n for n in properties if n in required or n == choice]}
                      for choice in optional]}


def related(request: str, tools: Iterable[Tool]) -> bool:
    """True when the request shares a content word with an offered tool (:func:`routing.shares_words`).

    Args:
        request: The user's request.
        tools: The tools offered.
    """
    return routing.shares_words(request, callable_tools(tools))


def answer_offered(tools: Sequence[Tool], context: RoundContext, policy: SmallModelPolicy = ON) -> bool:
    """Whether this round's grammar offers the answer in words. On the first round, as the policy's
    ``answer_first_round`` says ("unrelated": only for a request that shares no word with any tool; the base
    SmolLM2-135M otherwise answers in words for most requests a tool fits: docs/readme/eval.md, "Lever 1,
    round 2"); afterwards always, but right after a successful call while the plan has a step left ("find
    ..., then cancel the first one": the cancel is still to do).

    Args:
        tools: The tools offered.
        context: The round (first or not, the plan, what succeeded).
        policy: The small-model rules in force.
    """
    if not context.first:
        return not (policy.hold_answer_mid_plan and context.just_succeeded and context.step_pending)
    if policy.answer_first_round == "always":
        return True
    return context.request is None or not related(context.request, tools)


def listed_tools(tools: Sequence[Tool], context: RoundContext | None = None,
                 policy: SmallModelPolicy = ON) -> list[Tool]:
    """The callable tools the system prompt lists: with the policy's ``route``, those a step of the plan names
    (all when it names none).

    Args:
        tools: The tools offered.
        context: The round, whose plan the routing reads (None: no routing).
        policy: The small-model rules in force.
    """
    callable_ = callable_tools(tools)
    if not policy.route or context is None or not context.plan:
        return callable_
    return [t for t in callable_ if t.name in context.plan.tool_names] or callable_


def round_tools(tools: Sequence[Tool], context: RoundContext, policy: SmallModelPolicy = ON) -> list[Tool]:
    """The tools this round's grammar lets the model call, among those listed (:func:`listed_tools`): with the
    policy's ``route``, the plan's current step's tools; once every step is done, those that have not yet
    succeeded (nothing is done twice; an empty list leaves only the answer).

    Args:
        tools: The tools offered.
        context: The round (its plan and the calls that succeeded).
        policy: The small-model rules in force.
    """
    listed = listed_tools(tools, context, policy)
    if not policy.route or not context.plan:
        return listed
    step = context.plan.next_step(context.succeeded)
    if step is None:
        return [t for t in listed if t.name not in context.succeeded]
    return [t for t in listed if t.name in step.tools] or listed


def call_schema(tools: Iterable[Tool], sources: Sequence[str] = (), references: Sequence[str] = (), *,
                answer: bool = True, leave_out_unfilled: bool = False, results: Sequence[tuple[str, str]] = (),
                policy: SmallModelPolicy = ON, asked: Sequence[str] | None = None) -> dict[str, Any]:
    """The JSON schema of one reply (:func:`_call_schema`), kept inside the grammar bounds: when the copied
    values make it too large, spans get shorter (24, 8, 4 words), and at last strings are left free. With
    ``leave_out_unfilled``, the tools :func:`unfilled` names are left out, and with none left, the answer is
    offered (the model can ask for what is missing).

    Args:
        tools: The tools the reply may call.
        sources: The texts argument values are copied from (:func:`~.sources.copy_sources`).
        references: The run's document references (``"@doc:NAME"``), offered for string arguments.
        answer: Offer the answer in words too.
        leave_out_unfilled: Leave out the tools whose required values the sources do not hold.
        results: ``(tool name, result text)`` of each successful call so far: a JSON object from them is offered to a
            tool only when it did not come from that tool's own results.
        policy: The small-model rules in force.
        asked: The texts that ask (the request, the plan's current step); an enum value they name wins.
    """
    tools = list(tools)
    schema: dict[str, Any] = {}
    skipped: set[str] = set()
    for max_words in (MAX_SPAN_WORDS, 8, 4, 0):
        copy = _Copy(sources, references, max_words=max_words, results=results, policy=policy, asked=asked) \
            if sources or references else None
        if leave_out_unfilled and max_words == MAX_SPAN_WORDS and sources and copy is not None:
            skipped = set(_unfilled(tools, copy))
        schema = _call_schema([t for t in tools if t.name not in skipped], copy,
                              answer=answer or bool(skipped) and all(t.name in skipped for t in callable_tools(tools)))
        if not sources or schema_problem(schema) is None:
            return schema
    return schema


def unfilled(tools: Iterable[Tool], sources: Sequence[str], references: Sequence[str] = ()) -> list[str]:
    """The names of the tools whose required values ``sources`` do not hold (:meth:`_Copy.missing`): a
    number, date, time or identifier the model could only invent.

    Args:
        tools: The tools to check.
        sources: The texts values may be copied from (none: no tool is reported).
        references: The run's document references.
    """
    return _unfilled(tools, _Copy(sources, references)) if sources else []


def _unfilled(tools: Iterable[Tool], copy: _Copy) -> list[str]:
    return [t.name for t in callable_tools(tools) if not t.terminal and copy.missing(t.parameters or {})]


def _call_schema(tools: Iterable[Tool], copy: _Copy | None = None, *, answer: bool = True) -> dict[str, Any]:
    """The JSON schema of one reply: a call to any of ``tools`` (topic, name, then that tool's own arguments,
    with values copied as ``copy`` offers them, from the sources and the documents' references; see the module
    docstring), or, with ``answer``, an answer in words (:func:`answer_schema`). With no tools left, only the
    answer."""
    variants, waiting = [], []
    for tool in callable_tools(tools):
        arguments = bounded(tool.parameters or {"type": "object", "properties": {}})
        arguments.setdefault("type", "object")
        if copy is not None and not tool.terminal:
            if not copy.for_tool(tool.name).objects and _needs_object(arguments):
                waiting.append(tool)  # its data must come from somewhere: a later round, once a tool returns it
                continue
            arguments = _with_a_change(tool, copy.arguments(arguments))
        variants.append({
            "type": "object",
            "properties": {TOPIC_KEY: {"const": topic(tool)}, NAME_KEY: {"const": tool.name}, ARGUMENTS_KEY: arguments},
            "required": [TOPIC_KEY, NAME_KEY, ARGUMENTS_KEY],
            "additionalProperties": False,
        })
    if not variants and waiting:  # no other tool to call: the waiting tools stay free
        variants = _call_schema(waiting, answer=False).get("anyOf") or [_call_schema(waiting, answer=False)]
    if answer:
        variants.append(answer_schema())
    if not variants:
        raise ValueError("a constrained call needs at least one tool, or the answer")
    schema = variants[0] if len(variants) == 1 else {"anyOf": variants}
    definitions = copy.definitions() if copy is not None else {}
    return {**schema, "$defs": definitions} if definitions else schema


def response_format(tools: Iterable[Tool], sources: Sequence[str] = (), references: Sequence[str] = (), *,
                    answer: bool = True, leave_out_unfilled: bool = False, results: Sequence[tuple[str, str]] = (),
                    policy: SmallModelPolicy = ON, asked: Sequence[str] | None = None) -> dict[str, Any]:
    """``response_format`` in the OpenAI/LM Studio ``json_schema`` form (:func:`call_schema`).

    Args:
        tools: The tools the reply may call.
        sources: The texts argument values are copied from.
        references: The run's document references.
        answer: Offer the answer in words too.
        leave_out_unfilled: Leave out the tools whose required values the sources do not hold.
        results: ``(tool name, result text)`` of each successful call so far, as :func:`call_schema`.
        policy: The small-model rules in force.
        asked: The texts that ask (the request, the plan's current step), as :func:`call_schema`.
    """
    return {"type": "json_schema", "json_schema": {"name": "tool_call", "strict": True, "schema": call_schema(
        tools, sources, references, answer=answer, leave_out_unfilled=leave_out_unfilled, results=results,
        policy=policy, asked=asked)}}
