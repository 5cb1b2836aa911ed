"""LFM2's own tool-call text, written back into a conversation (the reader is :mod:`.toolcalls`)."""

from __future__ import annotations

import json
import keyword
import math
import re
from typing import TYPE_CHECKING, Any
from collections.abc import Iterable

if TYPE_CHECKING:
    from .toolcalls import ToolCall

LFM2_CALL_START = "<|tool_call_start|>"
LFM2_CALL_END = "<|tool_call_end|>"


def format_lfm2_calls(calls: Iterable[ToolCall]) -> str:
    """LFM2's own call text, ``<|tool_call_start|>[f(a="x")]<|tool_call_end|>``; '' for no calls.

    The LFM2 template renders only ``content``, so this text is what keeps a call in the conversation.
    Calls a Python-style list cannot express (argument names like ``first-name``, infinities) are written as
    the JSON list LFM2 also emits; :func:`parse_tool_calls` reads both.

    Args:
        calls: The calls to write.
    """
    calls = list(calls)
    if not calls:
        return ""
    if all(_python_expressible(call) for call in calls):
        body = ", ".join(
            f"{call.name}({', '.join(f'{key}={_py_value(value)}' for key, value in call.arguments.items())})"
            for call in calls
        )
    else:
        body = json.dumps(
            [{"name": call.name, "arguments": call.arguments} for call in calls], ensure_ascii=False
        )[1:-1]
    return f"{LFM2_CALL_START}[{body}]{LFM2_CALL_END}"


_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _python_expressible(call: ToolCall) -> bool:
    segments = re.split(r"[.-]", call.name)
    if not all(_SEGMENT.fullmatch(part) and not keyword.iskeyword(part) for part in segments):
        return False
    if not all(_SEGMENT.fullmatch(key) and not keyword.iskeyword(key) for key in call.arguments):
        return False
    return _finite(call.arguments)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(item) for item in value)
    return True


def _py_value(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        # A lone surrogate cannot be encoded, so such a string keeps its \u escapes.
        return text if not re.search("[\ud800-\udfff]", text) else json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_py_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py_value(str(key))}: {_py_value(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} as a tool-call argument")
