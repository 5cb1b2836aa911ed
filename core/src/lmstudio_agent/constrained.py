"""Grammar-constrained tool calls for models with no tool support.

The schema makes the model choose the tool's name first, then write only that tool's arguments: an ``anyOf``
of one object per tool, ``{"name": <const>, "arguments": <that tool's schema>}``. Servers that enforce
``response_format`` with a grammar (LM Studio, llama.cpp) can then only produce a well-formed call.
Strings and arrays get upper bounds, because a tiny model can loop inside a string until the token cap.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from .tools import Tool

DEFAULT_MAX_STRING = 600
DEFAULT_MAX_ITEMS = 20


def bounded(schema: dict[str, Any], max_string: int = DEFAULT_MAX_STRING, max_items: int = DEFAULT_MAX_ITEMS) -> dict[str, Any]:
    """A copy of ``schema`` with every unbounded string and array given an upper bound, and every object
    closed to extra properties (an extra argument is never valid)."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    kind = out.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if "string" in kinds and "enum" not in out and "const" not in out:
        out.setdefault("maxLength", max_string)
    if "array" in kinds:
        out.setdefault("maxItems", max_items)
        if "items" in out:
            out["items"] = bounded(out["items"], max_string, max_items)
    if "object" in kinds and "properties" in out:
        out["properties"] = {k: bounded(v, max_string, max_items) for k, v in out["properties"].items()}
        out.setdefault("additionalProperties", False)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in out:
            out[key] = [bounded(s, max_string, max_items) for s in out[key]]
    return out


def call_schema(tools: Iterable[Tool]) -> dict[str, Any]:
    """The JSON schema of one call to any of ``tools``: name first, then that tool's own arguments."""
    variants = []
    for tool in tools:
        arguments = bounded(tool.parameters or {"type": "object", "properties": {}})
        arguments.setdefault("type", "object")
        variants.append(
            {
                "type": "object",
                "properties": {"name": {"const": tool.name}, "arguments": arguments},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    if not variants:
        raise ValueError("a constrained call needs at least one tool")
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def response_format(tools: Iterable[Tool]) -> dict[str, Any]:
    """``response_format`` in the OpenAI/LM Studio ``json_schema`` form."""
    return {"type": "json_schema", "json_schema": {"name": "tool_call", "strict": True, "schema": call_schema(tools)}}


def describe_tools(tools: Iterable[Tool]) -> str:
    """A compact, signature-style listing that a small model can read: ``name(arg: type, opt?: type) - what it does``."""
    lines = []
    for tool in tools:
        props = (tool.parameters or {}).get("properties", {})
        required = set((tool.parameters or {}).get("required", []))
        args = ", ".join(f"{name}{'' if name in required else '?'}: {_type_hint(spec)}" for name, spec in props.items())
        summary = tool.description.strip().splitlines()[0] if tool.description.strip() else ""
        lines.append(f"- {tool.name}({args}): {summary}")
    return "\n".join(lines)


def _type_hint(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "|".join(json.dumps(v) for v in spec["enum"])
    if "const" in spec:
        return json.dumps(spec["const"])
    for key in ("anyOf", "oneOf"):
        if key in spec:
            return "|".join(_type_hint(s) for s in spec[key] if s.get("type") != "null")
    kind = spec.get("type", "any")
    if isinstance(kind, list):
        return "|".join(k for k in kind if k != "null")
    if kind == "array":
        return f"list[{_type_hint(spec.get('items', {}))}]"
    return str(kind)


SYSTEM_PROMPT = """You can use these tools:
{tools}

Reply with one JSON object that calls one tool: {{"name": "<tool name>", "arguments": {{...}}}}.
Copy values from the request exactly. When the task is done, call terminate with your final answer."""


def system_prompt(tools: Iterable[Tool]) -> str:
    return SYSTEM_PROMPT.format(tools=describe_tools(tools))
