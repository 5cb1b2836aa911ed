"""Tool calls written into a model's text, parsed without ever evaluating it.

Small models (and servers that fail to parse them) leave calls in ``message.content`` in several shapes:
LFM2's ``<|tool_call_start|>[f(a=1)]<|tool_call_end|>`` (or the bare list), LM Studio's
``[TOOL_REQUEST]{...}[END_TOOL_REQUEST]``, Hermes/Qwen ``<tool_call>{...}</tool_call>``, or plain JSON.
Python-style calls go through ``ast.parse`` and a literal-only walk of the tree: nothing is executed.

The literal-only readers live in :mod:`._call_syntax`; LFM2's call text is written by :mod:`._lfm2_text` (its
names are re-exported here).
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable, Mapping

from ._call_syntax import MAX_PARSE_CHARS as MAX_PARSE_CHARS  # the bound is part of this module's face
from ._call_syntax import (_FENCE, _NOT_JSON, _alias_names, _CallError, _dotted_name, _literal, _load_json_prefix,
                           _python_literal, _short, _source, _syntax_reason, _unfence)
from ._lfm2_text import LFM2_CALL_END, LFM2_CALL_START, format_lfm2_calls

__all__ = [
    "LFM2_CALL_END",
    "LFM2_CALL_START",
    "ParsedContent",
    "ToolCall",
    "format_lfm2_calls",
    "parse_openai_tool_calls",
    "parse_tool_calls",
]

NAME_PATTERN = re.compile(r"[A-Za-z_][\w.-]*", re.ASCII)
_ARG_KEYS = ("arguments", "parameters", "args", "input")
_NAME_KEYS = ("name", "tool", "tool_name", "function_name")
_EXTRA_KEYS = {"id", "type", "call_id"}


@dataclass
class ToolCall:
    """One call the model asked for.

    ``invalid`` is set when the call named a tool but its arguments could not be read (not JSON, not an
    object): it says so to the model, and nothing runs.
    """

    name: str
    arguments: dict[str, Any]
    id: str | None = None
    invalid: str | None = None

    def to_openai(self, call_id: str | None = None) -> dict[str, Any]:
        """The call as an OpenAI ``tool_calls`` entry (arguments as a JSON string).

        Args:
            call_id: The id to give the call (default: its own, or '').
        """
        return {
            "id": call_id or self.id or "",
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)},
        }


@dataclass
class ParsedContent:
    """The calls found in a text, the text without the call markup, and markup that could not be parsed."""

    calls: list[ToolCall] = field(default_factory=list)
    text: str = ""
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- parsing

_WRAPPED = re.compile(
    r"<\|tool_call_start\|>(?P<lfm2>.*?)(?P<lfm2_end><\|tool_call_end\|>|\Z)"
    r"|\[TOOL_REQUEST\](?P<lmstudio>.*?)(?P<lmstudio_end>\[END_TOOL_REQUEST\]|\Z)"
    r"|<tool_call>(?P<hermes>.*?)(?P<hermes_end></tool_call>|\Z)",
    re.DOTALL,
)
_KINDS = ("lfm2", "lmstudio", "hermes")
_LABELS = {
    "lfm2": "could not parse the <|tool_call_start|> call",
    "lmstudio": "could not parse the [TOOL_REQUEST] call",
    "hermes": "could not parse the <tool_call> call",
}
_STRAY = re.compile(r"<\|tool_call_(?:start|end)\|>|\[END_TOOL_REQUEST\]|\[TOOL_REQUEST\]|</?tool_call>")
_LIST_START = re.compile(r"\[\s*[A-Za-z_][\w.-]*\s*\(", re.ASCII)
_BARE_LIST = re.compile(r"\[\s*[A-Za-z_][\w.-]*\s*\(.*\)\s*\]", re.DOTALL | re.ASCII)
_JSON_CALL_START = re.compile(r'\{\s*"(?:name|tool|tool_name|function|type|id)"\s*:')
_LOOKS_LIKE_JSON_CALL = re.compile(
    r'^\{\s*["\'](?:name|tool|function)["\']\s*:.*["\'](?:arguments|args|parameters)["\']', re.DOTALL
)
_MAX_PREFIX_TRIES = 32
_MAX_SCAN_TRIES = 64  # bounds the work on adversarial text full of call openings


def parse_tool_calls(text: str | None) -> ParsedContent:
    """Find every tool call in ``text``; never raises, never evaluates anything.

    ``text`` of the result is the content with all call markup removed; ``errors`` describes markup that
    was meant as a call but could not be read, in words a model can act on.

    Args:
        text: A model's reply text (None or empty: no calls).
    """
    if not text:
        return ParsedContent([], "", [])
    calls: list[ToolCall] = []
    errors: list[str] = []

    def wrapped(match: re.Match[str]) -> str:
        kind = next(name for name in _KINDS if match.group(name) is not None)
        closed = bool(match.group(f"{kind}_end"))
        found, problem, rest = _parse_payload(match.group(kind), closed=closed)
        calls.extend(found)
        if problem:
            errors.append(f"{_LABELS[kind]}: {problem}")
        return f"\n{rest}\n" if rest else "\n"

    cleaned = _STRAY.sub("", _WRAPPED.sub(wrapped, text))
    if calls or errors:
        return ParsedContent(calls, _tidy(cleaned), errors)
    return _parse_unwrapped(cleaned)


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _parse_payload(payload: str, *, closed: bool) -> tuple[list[ToolCall], str | None, str]:
    """The inside of a wrapper: JSON call(s) or a Python-style call list; plus the text after an unclosed one."""
    text = _unfence(payload.strip())
    if not text:
        return [], "the call is empty", ""
    if len(text) > MAX_PARSE_CHARS:
        return [], f"the call is too long ({len(text)} characters)", ""
    value, rest = _load_json_prefix(text)
    if value is not _NOT_JSON:
        shaped = _calls_from_json(value, strict=False)
        if shaped is None:
            problem = "the call list is empty" if value == [] else (
                'expected [name(arg=value, ...)] or {"name": ..., "arguments": {...}}'
            )
            return [], problem, ""
        # Trailing text inside a closed wrapper is markup noise; after an unclosed one it is the answer.
        return shaped[0], shaped[1], "" if closed else rest.strip()
    try:
        return _parse_python(text), None, ""
    except _CallError as exc:
        if not exc.syntax:
            return [], str(exc), ""
        first_error = exc
    try:
        leading = _leading_call_list(text)
    except _CallError as exc:
        return [], str(exc), ""
    if leading is None:
        return [], str(first_error), ""
    return leading[0], None, "" if closed else leading[1].strip()


def _leading_call_list(text: str) -> tuple[list[ToolCall], str] | None:
    """A ``[f(...)]`` list at the start of ``text`` followed by other text: the calls and that text.

    Raises :class:`_CallError` when the list is found but refused (positional arguments, non-literals).
    """
    if not _LIST_START.match(text) or len(text) > MAX_PARSE_CHARS // 4:
        return None
    for tries, match in enumerate(re.finditer(r"\]", text)):
        if tries >= _MAX_PREFIX_TRIES:
            break
        try:
            return _parse_python(text[: match.end()]), text[match.end() :]
        except _CallError as exc:
            if not exc.syntax:
                raise
    return None


def _parse_unwrapped(text: str) -> ParsedContent:
    """Calls without wrapper markup: the whole content as call JSON or a bare list, else fenced blocks,
    JSON call objects inside prose, and lines that start with a call list."""
    stripped = text.strip()
    whole = _unfence(stripped)
    if whole[:1] in ("[", "{"):
        value, rest = _load_json_prefix(whole)
        if value is not _NOT_JSON and not rest:
            shaped = _calls_from_json(value, strict=True)
            if shaped is None:  # a JSON answer (structured output), not a call
                return ParsedContent([], stripped, [])
            return ParsedContent(shaped[0], "", [shaped[1]] if shaped[1] else [])
    whole_problem: str | None = None
    if _BARE_LIST.fullmatch(whole):
        try:
            return ParsedContent(_parse_python(whole), "", [])
        except _CallError as exc:
            if not exc.syntax:
                return ParsedContent([], "", [f"could not parse the tool call list: {exc}"])
            whole_problem = f"could not parse the tool call list: {exc}"
    elif _LOOKS_LIKE_JSON_CALL.search(whole):
        try:  # JSON written with Python literals (single quotes, True/None) by a model imitating JSON
            shaped = _calls_from_json(_python_literal(whole), strict=True)
        except _CallError:
            shaped = None
        if shaped is not None:
            return ParsedContent(shaped[0], "", [shaped[1]] if shaped[1] else [])
        whole_problem = "could not parse the tool call: it is not valid JSON"

    calls: list[ToolCall] = []
    errors: list[str] = []

    def collect(found: list[ToolCall], problem: str | None) -> None:
        calls.extend(found)
        if problem:
            errors.append(problem)

    def fenced(match: re.Match[str]) -> str:
        body = match.group(1).strip()
        value, rest = _load_json_prefix(body) if body else (_NOT_JSON, "")
        shaped = _calls_from_json(value, strict=True) if value is not _NOT_JSON and not rest else None
        if shaped is None and _BARE_LIST.fullmatch(body):
            try:
                shaped = _parse_python(body), None
            except _CallError:
                shaped = None
        if shaped is None:
            return match.group(0)
        collect(*shaped)
        return ""

    remaining = _scan_json_calls(_FENCE.sub(fenced, stripped), collect)
    kept: list[str] = []
    for line in remaining.splitlines():
        found = _line_calls(line.strip())
        if found is None:
            kept.append(line)
            continue
        collect(found[0], found[1])
        if found[2]:
            kept.append(found[2])
    if not calls and not errors:
        return ParsedContent([], stripped, [whole_problem] if whole_problem else [])
    return ParsedContent(calls, _tidy("\n".join(kept)), errors)


def _scan_json_calls(text: str, collect: Any) -> str:
    """Remove JSON call objects written inside prose (``I'll call {"name": ..., "arguments": ...}``)."""
    if '"' not in text or len(text) > MAX_PARSE_CHARS:
        return text
    decoder = json.JSONDecoder()
    pieces: list[str] = []
    cursor = position = 0
    for _ in range(_MAX_SCAN_TRIES):
        match = _JSON_CALL_START.search(text, position)
        if match is None:
            break
        try:
            value, end = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            position = match.end()
            continue
        shaped = _calls_from_json(value, strict=True)
        if shaped is None:
            position = match.end()
            continue
        collect(*shaped)
        pieces.append(text[cursor : match.start()])
        cursor = position = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _line_calls(line: str) -> tuple[list[ToolCall], str | None, str] | None:
    """Calls on a line that starts with a call list (bare LFM2.5 style or JSON); ``None`` for prose."""
    if line[:1] != "[":
        return None
    value, rest = _load_json_prefix(line)
    if value is not _NOT_JSON:
        shaped = _calls_from_json(value, strict=True)
        return None if shaped is None else (shaped[0], shaped[1], rest.strip())
    if not _LIST_START.match(line):
        return None
    try:
        leading = _leading_call_list(line)
    except _CallError:
        return None  # a refused list inside prose stays prose; the whole-content path reports errors
    if leading is None:
        return None
    return leading[0], None, leading[1].strip()


# ---------------------------------------------------------------------------------------------- JSON shapes


def _calls_from_json(value: Any, *, strict: bool) -> tuple[list[ToolCall], str | None] | None:
    """Calls from decoded JSON; ``None`` when it does not have a call's shape at all.

    ``strict`` (content without markup) also requires an arguments key, so an answer like
    ``{"name": "Paris"}`` stays an answer.
    """
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list) and len(value) <= 2:
        value = value["tool_calls"]
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    calls: list[ToolCall] = []
    problems: list[str] = []
    for item in items:
        shaped = _json_call(item, strict=strict)
        if shaped is None:
            return None
        call, problem = shaped
        if call is not None:
            calls.append(call)
        if problem:
            problems.append(problem)
    return calls, "; ".join(problems) or None


def _json_call(item: Mapping[str, Any], *, strict: bool) -> tuple[ToolCall | None, str | None] | None:
    function = item.get("function")
    if isinstance(function, Mapping):  # OpenAI's {"type": "function", "function": {...}}
        if not set(item) <= {"function", *_EXTRA_KEYS}:
            return None
        call_id = item.get("id") if isinstance(item.get("id"), str) else None
        inner = _json_call(function, strict=False)
        if inner is None:
            return None
        call, problem = inner
        if call is not None:
            call.id = call_id
        return call, problem
    name_key = next((key for key in _NAME_KEYS if key in item), None)
    if name_key is None:
        return None
    arg_keys = [key for key in _ARG_KEYS if key in item]
    if len(arg_keys) > 1 or not set(item) <= {name_key, *arg_keys, *_EXTRA_KEYS}:
        return None
    if strict and not arg_keys:
        return None
    name = item[name_key]
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return None if strict else (None, f"invalid tool name {_short(name)}")
    try:
        arguments = _decode_arguments(item[arg_keys[0]] if arg_keys else None)
    except _CallError as exc:
        return None, f"{name}: {exc}"
    call_id = item.get("id") if isinstance(item.get("id"), str) else None
    return ToolCall(name=name, arguments=arguments, id=call_id), None


def _decode_arguments(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return {}
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError):
            try:
                raw = _python_literal(text)
            except _CallError:
                raise _CallError("arguments are not valid JSON") from None
    if not isinstance(raw, dict):
        raise _CallError(f"arguments must be an object, got {type(raw).__name__}")
    return raw


def parse_openai_tool_calls(tool_calls: Iterable[Any], *, keep_invalid: bool = False) -> tuple[list[ToolCall], list[str]]:
    """Native ``message.tool_calls`` entries (arguments as JSON strings) as :class:`ToolCall` objects + errors.

    The one decoder of native tool calls (the chat client's answers, training rows). With ``keep_invalid`` (what
    the agent loop reads), a call that names a tool but whose arguments cannot be read is kept, with
    :attr:`ToolCall.invalid` saying why, so the model's call gets its answer ("your arguments were not valid
    JSON"); and any non-empty name is kept, for the agent to answer "unknown tool".

    Args:
        tool_calls: The ``tool_calls`` entries of a message.
        keep_invalid: Keep calls whose arguments cannot be read, marked invalid, instead of dropping them.
    """
    calls: list[ToolCall] = []
    errors: list[str] = []
    for entry in tool_calls or []:
        if not isinstance(entry, Mapping):
            errors.append("a tool call is not an object")
            continue
        nested = entry.get("function")
        function: Mapping[str, Any] = nested if isinstance(nested, Mapping) else entry
        name = function.get("name")
        call_id = entry.get("id") if isinstance(entry.get("id"), str) else None
        named = isinstance(name, str) and (NAME_PATTERN.fullmatch(name) or (keep_invalid and name.strip()))
        if not isinstance(name, str) or not named:
            errors.append(f"invalid tool name {_short(name)}")
            continue
        try:
            arguments = _decode_arguments(function.get("arguments"))
        except _CallError as exc:
            errors.append(f"{name}: {exc}")
            if keep_invalid:
                calls.append(ToolCall(name=name, arguments={}, id=call_id, invalid=_invalid_arguments(name, exc)))
            continue
        calls.append(ToolCall(name=name, arguments=arguments, id=call_id))
    return calls, errors


def _invalid_arguments(name: str, problem: _CallError) -> str:
    """What the model is told about a call whose arguments could not be read."""
    if "not valid JSON" in str(problem):
        return (f"Your arguments to {name} were not valid JSON. Call {name} again with its arguments as one JSON "
                "object.")
    return f"Your arguments to {name} could not be used: {problem}. Send them as one JSON object."


# ---------------------------------------------------------------------------------------------- Python calls


def _parse_python(text: str) -> list[ToolCall]:
    """``[f(a=1), g(b="x")]`` (or one bare call) via ``ast``: only names, keywords and literals are accepted."""
    if len(text) > MAX_PARSE_CHARS:
        raise _CallError(f"the call is too long ({len(text)} characters)")
    source, aliases = _alias_names(text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes in a model's strings
            tree = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError, UnicodeError) as exc:
        raise _CallError(
            f"not a valid call list ({_syntax_reason(exc)}); write [name(arg=value, ...)]", syntax=True
        ) from None
    if isinstance(tree, (ast.List, ast.Tuple)):
        nodes = tree.elts
    elif isinstance(tree, ast.Call):
        nodes = [tree]
    else:
        raise _CallError("expected a list of calls like [name(arg=value, ...)]")
    if not nodes:
        raise _CallError("the call list is empty")
    calls: list[ToolCall] = []
    for node in nodes:
        if isinstance(node, ast.Call):
            calls.append(_call_from_node(node, aliases))
        elif isinstance(node, ast.Dict):
            shaped = _json_call(_literal(node, aliases={}), strict=False)
            if shaped is None or shaped[0] is None:
                raise _CallError(shaped[1] if shaped and shaped[1] else "expected name(arg=value, ...)")
            calls.append(shaped[0])
        else:
            raise _CallError(f"expected name(arg=value, ...), got {_source(node)}")
    return calls


def _call_from_node(node: ast.Call, aliases: dict[str, str]) -> ToolCall:
    name = _dotted_name(node.func, aliases)
    if name is None or not NAME_PATTERN.fullmatch(name):
        raise _CallError(f"unsupported call {_source(node)}: a call must be a tool name with name=value arguments")
    if node.args:
        raise _CallError(f"{name}: positional arguments are not supported; write {name}(arg=value, ...)")
    arguments: dict[str, Any] = {}
    for item in node.keywords:
        if item.arg is None:
            raise _CallError(f"{name}: ** arguments are not supported")
        arguments[aliases.get(item.arg, item.arg)] = _literal(item.value, aliases={})
    return ToolCall(name=name, arguments=arguments)


