"""Scoring one call against the expected one.

The rule (documented in docs/readme/eval.md):

- The name must match exactly.
- The arguments are compared after the tool's own validation (what the tool would receive), with every
  omitted optional argument filled in with its schema default, on both sides. Then:
  numbers compare as numbers (``250 == 250.0``; a boolean is not a number); strings compare exactly after
  trimming surrounding whitespace; lists element by element; objects key by key with the same rules.
- An argument the expected call does not have, and that is not an optional argument equal to its default,
  fails the call (an extra argument fails). So does a missing one, and arguments that fail validation.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping

from pydantic import BaseModel

_MISSING = object()


@dataclass(frozen=True)
class Score:
    name_ok: bool
    exact: bool
    reason: str  # "" when exact; else why not, in a few words


def to_plain(value: Any) -> Any:
    """Validated arguments as plain JSON values (Enums by value, models dumped)."""
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if isinstance(value, BaseModel):
        return to_plain(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def with_defaults(arguments: Mapping[str, Any], parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """``arguments`` with each omitted optional parameter that has a schema default set to that default."""
    filled = dict(arguments)
    for name, spec in ((parameters or {}).get("properties") or {}).items():
        if name not in filled and isinstance(spec, Mapping) and "default" in spec:
            filled[name] = spec["default"]
    return filled


def values_equal(expected: Any, actual: Any) -> bool:
    """Equality under the scoring rule (numbers as numbers, trimmed strings, recursive)."""
    if _is_number(expected) and _is_number(actual):
        return math.isclose(float(expected), float(actual), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.strip() == actual.strip()
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None or actual is None:
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return set(expected) == set(actual) and all(values_equal(expected[k], actual[k]) for k in expected)
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        return len(expected) == len(actual) and all(values_equal(e, a) for e, a in zip(expected, actual, strict=True))
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare_arguments(expected: Mapping[str, Any], actual: Mapping[str, Any],
                      parameters: Mapping[str, Any] | None) -> str:
    """'' when the arguments match under the rule, else the first difference in words."""
    want = with_defaults(to_plain(expected), parameters)
    got = with_defaults(to_plain(actual), parameters)
    for name in sorted(set(want) | set(got)):
        left, right = want.get(name, _MISSING), got.get(name, _MISSING)
        if left is _MISSING:
            return f"extra argument '{name}'"
        if right is _MISSING:
            return f"missing argument '{name}'"
        if not values_equal(left, right):
            return f"'{name}': expected {_short(left)}, got {_short(right)}"
    return ""


def score_call(expected_name: str, expected_arguments: Mapping[str, Any], name: str | None,
               arguments: Mapping[str, Any] | None, parameters: Mapping[str, Any] | None,
               error: str | None = None) -> Score:
    """Score a model's first call. ``arguments`` are the validated ones (None when validation failed:
    ``error`` then says why)."""
    if name is None:
        return Score(False, False, error or "no tool call")
    if name != expected_name:
        return Score(False, False, f"called '{name}' instead of '{expected_name}'")
    if arguments is None:
        return Score(True, False, error or "invalid arguments")
    difference = compare_arguments(expected_arguments, arguments, parameters)
    return Score(True, not difference, difference)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
