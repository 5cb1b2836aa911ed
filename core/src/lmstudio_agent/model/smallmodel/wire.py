"""What the constrained mode's model reads and writes: the reply's keys, a call and an answer as JSON, the
message that carries a result back, the agent's own notes, and the system prompt's tool listing.

A reply is one object whose keys come in this order: ``"type"`` (a few words naming the tool's topic, e.g.
``"weather"``), ``"tool"`` (the tool's name), then ``"arguments"``. A tiny model picks a tool far better by
writing a plain word first (``weather``) than a snake_case name, whose first token (``get``, ``set``) says
little; and ``"tool"`` reads as a tool name where ``"name"`` reads as a person's or a city's. Or no call at
all: ``{"type": "answer", "answer": "..."}``, which takes the place of the built-in final-answer tool
(``terminate``). Fine-tuning data is written with exactly these functions.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast
from collections.abc import Iterable, Mapping

from ...agent.tools import Tool
from . import lexicon

TOPIC_KEY = "type"


NAME_KEY = "tool"


ARGUMENTS_KEY = "arguments"


# Leading verbs dropped from a tool's topic: the object of the action tells tools apart better for a tiny
# model (get_weather -> "weather", translate_text -> "text"); measured: 60% -> 80% right tool names.
LEADING_VERBS = lexicon.ACTION_VERBS


FINAL_TOPIC = "final answer"


FINAL_SUMMARY = "Give the final answer, only after a tool result."


# The "answer without a tool" branch: {"type": "answer", "answer": "<words for the user>"}. It replaces the
# built-in final-answer tool (``terminate``) in this mode: no call, the reply is the answer.
ANSWER_TOPIC = "answer"


ANSWER_KEY = "answer"


ANSWER_SUMMARY = "No tool fits the request, or a tool's result already answers it: answer in words."


BUILTIN_FINAL_TOOL = "terminate"


DEFAULT_MAX_ANSWER = 600


def topic(tool: Tool) -> str:
    """A few plain words for what the tool is about: its name's words without a generic leading verb.

    Args:
        tool: The tool.
    """
    if tool.terminal:
        return FINAL_TOPIC
    words = [w for w in re.split(r"[_\-.\s]+", tool.name) if w]
    described = re.findall(r"[a-z]+", (tool.description or "").lower())[:1]
    # the leading word is a verb when it is a common one, or when the description starts with it ("Ping a
    # host." for ping_host)
    if len(words) > 1 and (words[0].lower() in LEADING_VERBS or described and described[0][:4] == words[0].lower()[:4]):
        words = words[1:]
    return " ".join(words) or tool.name


def _summary(tool: Tool) -> str:
    if tool.terminal:  # a tiny model over-picks a "finish the task" tool on the first turn
        return FINAL_SUMMARY
    return tool.description.strip().splitlines()[0].strip() if tool.description.strip() else tool.name


# Marks a message the agent itself wrote to steer the model ("your reply could not be read ..."): it is sent
# as a user turn, but no value is ever copied from it. The client drops keys that start with "_".
NOTE_KEY = "_agent_note"


def agent_note(text: str) -> dict[str, Any]:
    """A user turn the agent writes itself (a correction, a nudge to finish), kept out of the copy sources.

    Args:
        text: The note's text.
    """
    return {"role": "user", "content": text, NOTE_KEY: True}


def answer_schema(max_length: int = DEFAULT_MAX_ANSWER) -> dict[str, Any]:
    """The "answer without a tool" branch: ``{"type": "answer", "answer": "<words>"}``.

    Args:
        max_length: The longest answer, in characters.
    """
    return {
        "type": "object",
        "properties": {TOPIC_KEY: {"const": ANSWER_TOPIC},
                       ANSWER_KEY: {"type": "string", "minLength": 1, "maxLength": max_length}},
        "required": [TOPIC_KEY, ANSWER_KEY],
        "additionalProperties": False,
    }


def callable_tools(tools: Iterable[Tool]) -> list[Tool]:
    """The tools this mode lists and lets the model call: all but the built-in final-answer tool, whose
    place the answer branch takes.

    Args:
        tools: The tools offered.
    """
    return [t for t in tools if not (t.terminal and t.name == BUILTIN_FINAL_TOOL)]


def format_call(tool: Tool, arguments: Mapping[str, Any]) -> str:
    """A call as the constrained model writes it (training data for fine-tuning uses exactly this).

    Args:
        tool: The tool called.
        arguments: The call's arguments.
    """
    return json.dumps({TOPIC_KEY: topic(tool), NAME_KEY: tool.name, ARGUMENTS_KEY: dict(arguments)},
                      ensure_ascii=False)


def format_answer(text: str) -> str:
    """An answer without a tool call, as the constrained model writes it (training data uses exactly this).

    Args:
        text: The answer.
    """
    return json.dumps({TOPIC_KEY: ANSWER_TOPIC, ANSWER_KEY: text}, ensure_ascii=False)


def format_result(tool_name: str, content: str) -> str:
    """The text of the message that carries a tool's result (or ``Error: ...``) back to the model.

    Args:
        tool_name: The name of the tool called.
        content: The result (or error) as text.
    """
    return f"Result of {tool_name}: {content}"


def read_answer(content: str | None) -> str | None:
    """The words of an answer-branch reply (:func:`format_answer`); None when ``content`` is not one.

    Args:
        content: The reply's content.
    """
    if not content:
        return None
    try:
        value = json.loads(content)
    except ValueError:
        return None
    if isinstance(value, dict) and NAME_KEY not in value and isinstance(value.get(ANSWER_KEY), str) \
            and value.get(TOPIC_KEY, ANSWER_TOPIC) == ANSWER_TOPIC:
        return cast(str, value[ANSWER_KEY]).strip()
    return None


def _placeholder(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return "..."
    if spec.get("default") is not None:
        return spec["default"]  # "max_results": 1 in the example primed the model to write 1
    if spec.get("enum"):
        return spec["enum"][0]
    if "const" in spec:
        return spec["const"]
    for key in ("anyOf", "oneOf"):
        for option in spec.get(key) or []:
            if isinstance(option, dict) and option.get("type") != "null":
                return _placeholder(option)
    kind = spec.get("type")
    return {"number": 1, "integer": 1, "boolean": True, "object": {}, "array": []}.get(kind if isinstance(kind, str) else "", "...")


def describe_tools(tools: Iterable[Tool], *, answer: bool = True) -> str:
    """Each tool as its one-line description, then the exact shape of a call to it; with ``answer``, the
    answer branch last, in the same form.

    Args:
        tools: The tools offered (the built-in final-answer tool is left out).
        answer: Describe the answer branch too.
    """
    blocks = []
    for tool in callable_tools(tools):
        properties = (tool.parameters or {}).get("properties") or {}
        example = {name: _placeholder(spec) for name, spec in properties.items()}
        call = json.dumps({TOPIC_KEY: topic(tool), NAME_KEY: tool.name, ARGUMENTS_KEY: example}, ensure_ascii=False)
        blocks.append(f"{_summary(tool)}\n{call}")
    if answer:
        blocks.append(f"{ANSWER_SUMMARY}\n{format_answer('...')}")
    return "\n\n".join(blocks)


SYSTEM_PROMPT = """Tools, each with what it does and the shape of a call:

{tools}

Reply with one JSON object: a call to the tool that fits the request, or an answer. Copy values from the request exactly."""


ANSWER_ONLY_PROMPT = """Reply to the user in words, as one JSON object:
{answer}"""


def system_prompt(tools: Iterable[Tool]) -> str:
    """The constrained mode's part of the system prompt; with no tools (a run's last round), the answer only.

    Args:
        tools: The tools offered.
    """
    tools = list(tools)
    if not callable_tools(tools):
        return ANSWER_ONLY_PROMPT.format(answer=format_answer("..."))
    return SYSTEM_PROMPT.format(tools=describe_tools(tools))
