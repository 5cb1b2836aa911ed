"""Whether a final answer tells the user the result, and the result in words when it does not.

Asked "What is the sentiment of this review? ...", SmolLM2-135M called the tool, which answered
``{"sentiment": "negative", "confidence": 0.97}``, then repeated the review word for word as its answer. An
answer counts when it states one of the last successful result's values (a short string, or a number in any
common writing: ``0.97``, ``97%``), and is not a copy of the request. :func:`in_words` writes a result for a
person when the model's answer does not (the small-model policy's ``ground_answers``).
"""

from __future__ import annotations

import json
import re
from typing import Any
from collections.abc import Iterable

__all__ = ["echoes", "in_words", "salient_values", "stated"]

MAX_VALUE_CHARS = 80
ECHO_CHARS = 40
# Values that say how a call went, not what it found: an answer need not repeat them.
_STATUS_WORDS = frozenset({"ok", "success", "succeeded", "successful", "done", "true", "false", "none", "null",
                           "error", "failed", "pending", "stored", "saved", "updated", "created"})


def _parsed(result: str) -> Any:
    try:
        return json.loads(result)
    except ValueError:
        return result


def _leaves(value: Any, depth: int = 0) -> Iterable[Any]:
    if depth > 3:
        return
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item, depth + 1)
    elif isinstance(value, list):
        for item in value[:5]:
            yield from _leaves(item, depth + 1)
    else:
        yield value


def salient_values(result: str) -> list[str | float]:
    """The values of a result (its text, as the model read it) an answer may state: short strings that are not
    a status word, and numbers; for a plain-text result, its words of four letters or more and its numbers.

    Args:
        result: A tool's result as the model read it (JSON text or plain text).
    """
    out: list[str | float] = []
    parsed = _parsed(result)
    if isinstance(parsed, str):  # plain text: each of its words that says something ("Sunny and 21 C in Bern")
        for word in dict.fromkeys(re.findall(r"[^\W_]+(?:[.,'-][^\W_]+)*", parsed)):
            if any(c.isdigit() for c in word):
                out.extend(_numbers_in(word) or [word])
            elif len(word) >= 4 and word.lower() not in _STATUS_WORDS:
                out.append(word)
        return out
    for leaf in _leaves(parsed):
        if isinstance(leaf, bool) or leaf is None:
            continue
        if isinstance(leaf, (int, float)):
            out.append(float(leaf))
        elif isinstance(leaf, str):
            text = leaf.strip()
            if 0 < len(text) <= MAX_VALUE_CHARS and text.lower() not in _STATUS_WORDS:
                out.append(text)
    return out


_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")


def _numbers_in(text: str) -> list[float]:
    found = []
    for match in _NUMBER.finditer(text):
        raw = match.group().replace(",", ".") if match.group().count(",") == 1 and "." not in match.group() \
            else match.group().replace(",", "")
        try:
            value = float(raw)
        except ValueError:
            continue
        found.append(value)
        if text[match.end():match.end() + 1] == "%":
            found.append(value / 100)
    return found


def _says_number(value: float, numbers: list[float]) -> bool:
    return any(abs(n - value) <= max(0.006 * max(abs(value), 1e-9), 0.0051) for n in numbers) or \
        any(abs(n - value * 100) <= 0.51 for n in numbers if abs(value) <= 1)


def echoes(answer: str, request: str | None) -> bool:
    """Whether ``answer`` copies a long run of the request (``ECHO_CHARS`` characters or more).

    Args:
        answer: The model's answer.
        request: The user's request (None: nothing to echo).
    """
    if not request:
        return False
    said = " ".join(answer.lower().split())
    asked = " ".join(request.lower().split())
    if len(said) < ECHO_CHARS:
        return False
    return any(said[i:i + ECHO_CHARS] in asked for i in range(0, len(said) - ECHO_CHARS + 1, 8))


def _mentions(text: str, value: str | float) -> bool:
    if isinstance(value, float):  # in digits, or in words ("five packets")
        from ..model.smallmodel.values import numbers as written_numbers  # loads only when a run grounds an answer

        return _says_number(value, _numbers_in(text) + [float(n) for n in written_numbers([text])])
    lowered = " ".join(text.lower().split())
    return re.search(rf"(?<![\w]){re.escape(' '.join(value.lower().split()))}(?![\w])", lowered) is not None


def stated(answer: str, result: str, request: str | None = None) -> bool:
    """Whether ``answer`` tells the user the result: it states one of :func:`salient_values` (case and spacing
    aside; a number in any common writing), and one that is new when the result has values the request did not
    already say (after "add five packets", the new total, not the five); or the result has no value to state.
    An echo of the request (:func:`echoes`) states nothing.

    Args:
        answer: The model's answer.
        result: The tool's result as the model read it.
        request: The user's request, to tell new values from repeated ones and an echo from a statement.
    """
    values = salient_values(result)
    if not values:
        return not echoes(answer, request)
    new = [v for v in values if not (request and _mentions(request, v))]
    return any(_mentions(answer, v) for v in new or values)


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)[:120]
    return str(value)


def in_words(tool: str, result: str) -> str:
    """A sentence that tells a person what ``tool`` returned: its ``message`` when it has one, else its fields.

    Args:
        tool: The tool's name.
        result: The tool's result as text (JSON or plain).
    """
    value = _parsed(result)
    if isinstance(value, dict):
        message = value.get("message")
        if isinstance(message, str) and message.strip():
            return message.strip().rstrip(".") + "."
        fields = [f"{key.replace('_', ' ')}: {_plain(item)}" for key, item in value.items()
                  if not isinstance(item, (dict, list))][:6]
        if fields:
            return f"{tool.replace('_', ' ').capitalize()}: " + "; ".join(fields) + "."
    if isinstance(value, list):
        return f"{tool.replace('_', ' ').capitalize()} found {len(value)} result{'s' if len(value) != 1 else ''}" \
            + (f", the first: {_plain(value[0])}." if value else ".")
    text = " ".join(str(value).split())
    return text if len(text) <= 400 else text[:400] + " …"
