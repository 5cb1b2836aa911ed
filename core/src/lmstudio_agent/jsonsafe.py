"""JSON from untrusted peers: one parser for every edge (the contract, the bridge's frames, gateway-model).

``json.loads`` alone lets two kinds of hostile input through to code that cannot cope with them: nesting
deep enough to raise ``RecursionError`` (a 500 wherever it was not expected) and ``\\ud800``-style escapes
that decode to lone surrogates, strings that are not Unicode and that no encoder can write back out (so an
error message echoing one fails again). :func:`loads` turns both, and anything else wrong, into
``AgentError(INVALID_REQUEST)`` with a message that says what, never echoing the input.
"""

from __future__ import annotations

import json
from typing import Any, Union

from .errors import AgentError, ErrorCode

# Deeper than any request, frame or schema this project accepts; far below the interpreter's recursion limit.
MAX_JSON_DEPTH = 64

Raw = Union[bytes, bytearray, str]


def is_unicode(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogate), i.e. can be written as UTF-8.

    Args:
        text: The string to check.
    """
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def loads(raw: Raw, *, what: str = "Request body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse ``raw`` (UTF-8 bytes or text) as JSON, checked by :func:`check`.

    Raises AgentError(INVALID_REQUEST): invalid UTF-8, invalid JSON, nesting deeper than ``max_depth``, or a
    string (value or key) that is not valid Unicode. ``what`` names the input in the message.

    Args:
        raw: The JSON, as UTF-8 bytes or text.
        what: Names the input in error messages.
        max_depth: The deepest nesting allowed.
    """
    if isinstance(raw, str) and not is_unicode(raw):
        raise AgentError(ErrorCode.INVALID_REQUEST, f"{what} is not valid Unicode (it holds a lone surrogate)")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise _too_deep(what, max_depth) from None
    except UnicodeDecodeError as exc:
        raise AgentError(ErrorCode.INVALID_REQUEST, f"{what} is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    except ValueError as exc:
        raise AgentError(ErrorCode.INVALID_REQUEST, f"{what} is not valid JSON: {exc}") from None
    check(data, what=what, max_depth=max_depth)
    return data


def check(data: Any, *, what: str = "Request body", max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise AgentError(INVALID_REQUEST) if ``data`` nests deeper than ``max_depth`` or holds a string (a value
    or a key) that is not valid Unicode. Iterative, so it is safe on any depth.

    Args:
        data: Parsed JSON.
        what: Names the input in error messages.
        max_depth: The deepest nesting allowed.
    """
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, str):
            if not is_unicode(value):
                raise _not_unicode(what, where)
        elif isinstance(value, dict):
            if depth > max_depth:
                raise _too_deep(what, max_depth)
            for key, item in value.items():
                if isinstance(key, str) and not is_unicode(key):
                    raise _not_unicode(what, where, key=True)
                stack.append((item, depth + 1, f"{where}.{key}" if where else str(key)))
        elif isinstance(value, (list, tuple)):
            if depth > max_depth:
                raise _too_deep(what, max_depth)
            stack.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))


def _too_deep(what: str, max_depth: int) -> AgentError:
    return AgentError(ErrorCode.INVALID_REQUEST, f"{what} is nested too deeply (the limit is {max_depth} levels)")


def _not_unicode(what: str, where: str, *, key: bool = False) -> AgentError:
    # ``where`` is built from keys already checked, so it is itself valid Unicode.
    place = f" at {where[:200]}" if where else ""
    kind = "a key" if key else "a string"
    return AgentError(ErrorCode.INVALID_REQUEST, f"{what} holds {kind} that is not valid Unicode (a lone surrogate){place}")
