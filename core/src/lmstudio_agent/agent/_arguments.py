"""A model's arguments for a tool, prepared and explained: JSON strings decoded where only a container fits, the
keyword names a function accepts, and each validation problem as one short line a small model can act on.

:meth:`Tool.validate_arguments <lmstudio_agent.agent.tools.Tool.validate_arguments>` uses these; the rules of
which arguments are valid stay the tool's (its pydantic model, or its JSON schema).
"""

from __future__ import annotations

import inspect
import json
from typing import Any
from collections.abc import Callable

from pydantic import ValidationError

__all__ = ["accepted_names", "decode_json_strings", "describe_validation_error", "schema_types", "strip_root"]


def schema_types(schema: Any) -> set[str]:
    """The JSON types a property's schema allows, its ``anyOf``/``oneOf`` options included."""
    if not isinstance(schema, dict):
        return set()
    declared = schema.get("type")
    kinds = set(declared) if isinstance(declared, list) else {declared} if isinstance(declared, str) else set()
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key) or []:
            kinds |= schema_types(option)
    return kinds


def decode_json_strings(args: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Small models often write an object or list argument as a JSON string; decode it where only a
    container fits (never where a string is also allowed)."""
    declared = schema.get("properties")
    properties: dict[str, Any] = declared if isinstance(declared, dict) else {}
    out = dict(args)
    for name, value in args.items():
        if not isinstance(value, str) or value.strip()[:1] not in ("{", "["):
            continue
        kinds = schema_types(properties.get(name))
        if "string" in kinds or not kinds & {"object", "array"}:
            continue
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            continue
        if (isinstance(decoded, dict) and "object" in kinds) or (isinstance(decoded, list) and "array" in kinds):
            out[name] = decoded
    return out


def strip_root(problem: str) -> str:
    """A schema problem without the ``$.`` its path starts with (the arguments object is the root)."""
    return problem[2:] if problem.startswith("$.") else problem


def describe_validation_error(exc: ValidationError, schema: dict[str, Any]) -> list[str]:
    """Pydantic's errors, shortened to one line per field a small model can act on."""
    allowed = ", ".join((schema.get("properties") or {}).keys()) or "none"
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error.get("loc", ())) or "arguments"
        kind = error.get("type", "")
        if kind == "missing":
            text = f"{location}: missing required argument"
        elif kind == "extra_forbidden":
            text = f"{location}: unknown argument (allowed: {allowed})"
        else:
            message = str(error.get("msg", "invalid value")).split("\n")[0]
            given = error.get("input")
            shown = repr(given) if len(repr(given)) <= 40 else repr(given)[:37] + "..."
            text = f"{location}: {message} (got {shown})"
        if text not in problems:
            problems.append(text)
    return problems


def accepted_names(func: Callable[..., Any]) -> set[str] | None:
    """Keyword names ``func`` accepts, or ``None`` when it takes ``**kwargs``."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(param.kind is param.VAR_KEYWORD for param in params):
        return None
    return {param.name for param in params if param.kind is not param.POSITIONAL_ONLY}
