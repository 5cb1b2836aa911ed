"""Bounds on one JSON schema's grammar, and patterns as llama.cpp can compile them: shared by the constrained
mode (:mod:`.smallmodel`), which keeps its own schemas inside them, and gateway-model, which refuses a larger
schema (one that would hold the model for minutes). llama.cpp compiles an enum into alternatives: 2,000 values
cost about a second a request on a 2-core CPU, 20,000 cost most of a minute.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DEFAULT_MAX_ITEMS", "DEFAULT_MAX_STRING", "MAX_ALTERNATIVES", "MAX_ENUM_VALUES", "MAX_SCHEMA_BYTES",
           "MAX_SCHEMA_DEPTH", "MAX_TOTAL_ENUM_VALUES", "bounded", "gbnf_pattern", "schema_problem"]

DEFAULT_MAX_STRING = 600


DEFAULT_MAX_ITEMS = 20


# Bounds on one schema's grammar, shared by both sides: gateway-model refuses a larger schema (one that would
# hold the model for minutes), and this module keeps its own schemas inside them (:func:`call_schema` copies
# fewer or shorter spans until the schema fits). llama.cpp compiles an enum into alternatives: 2,000 values
# cost about a second a request on a 2-core CPU, 20,000 cost most of a minute.
MAX_SCHEMA_BYTES = 192 * 1024


MAX_SCHEMA_DEPTH = 16


MAX_ENUM_VALUES = 2048


MAX_TOTAL_ENUM_VALUES = 4096


MAX_ALTERNATIVES = 64


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is over the grammar bounds above (its size, depth, enums, alternatives), or None.

    Args:
        schema: A JSON schema.
    """
    size = len(json.dumps(schema, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > MAX_SCHEMA_BYTES:
        return f"the schema is {size} bytes; the limit is {MAX_SCHEMA_BYTES}"
    total_enum = 0
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)) and depth > MAX_SCHEMA_DEPTH:
            return f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels"
        if isinstance(node, dict):
            values = node.get("enum")
            if isinstance(values, list):
                if len(values) > MAX_ENUM_VALUES:
                    return f"an enum has {len(values)} values; the limit is {MAX_ENUM_VALUES}"
                total_enum += len(values)
            for key in ("anyOf", "oneOf", "allOf"):
                branches = node.get(key)
                if isinstance(branches, list) and len(branches) > MAX_ALTERNATIVES:
                    return f"{key} has {len(branches)} branches; the limit is {MAX_ALTERNATIVES}"
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
    if total_enum > MAX_TOTAL_ENUM_VALUES:
        return f"the schema's enums have {total_enum} values in all; the limit is {MAX_TOTAL_ENUM_VALUES}"
    return None


def bounded(schema: dict[str, Any], max_string: int = DEFAULT_MAX_STRING, max_items: int = DEFAULT_MAX_ITEMS) -> dict[str, Any]:
    """A copy of ``schema`` with every unbounded string and array given an upper bound, and every object
    closed to extra properties (an extra argument is never valid).

    Args:
        schema: A JSON schema (anything else is returned as it is).
        max_string: The ``maxLength`` given to a string with none.
        max_items: The ``maxItems`` given to an array with none.
    """
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
    if "object" in kinds and isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = bounded(out["additionalProperties"], max_string, max_items)
    if "object" in kinds and "properties" in out:
        out["properties"] = {k: bounded(v, max_string, max_items) for k, v in out["properties"].items()}
        out.setdefault("additionalProperties", False)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in out:
            out[key] = [bounded(s, max_string, max_items) for s in out[key]]
    return out


# llama.cpp's JSON-schema converter copies a pattern's escapes into GBNF string literals, whose parser knows only
# these; any other (\d, \., ...) makes the grammar unparsable, and llama.cpp (LM Studio, gateway-model) fails
# the request or goes down with it.
_GBNF_ESCAPES = frozenset('nrt\\"')


_CLASS_ESCAPES = {"d": "[0-9]", "w": "[A-Za-z0-9_]", "s": r"[ \t\n\r]"}


_PUNCTUATION = frozenset(".-+*?()[]{}|^$/:,@#&%!=<>~'`;")


def gbnf_pattern(pattern: str) -> str | None:
    r"""``pattern`` written with what llama.cpp's converter can compile: ``\d``, ``\w`` and ``\s`` as character
    classes, an escaped punctuation mark as a one-character class; None when it holds another escape.

    Args:
        pattern: A JSON-schema ``pattern`` (a regular expression).
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
        if nxt in _CLASS_ESCAPES:
            out.append(_CLASS_ESCAPES[nxt])
        elif nxt and nxt in _PUNCTUATION:
            out.append("[\\" + nxt + "]" if nxt in "]^\\-" else f"[{nxt}]")
        elif nxt and nxt in _GBNF_ESCAPES:
            out.append("\\" + nxt)
        else:
            return None
        i += 2
    return "".join(out)
