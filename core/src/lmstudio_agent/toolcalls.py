"""Tool calls written into a model's text, parsed without ever evaluating it.

Small models (and servers that fail to parse them) leave calls in ``message.content`` in several shapes:
LFM2's ``<|tool_call_start|>[f(a=1)]<|tool_call_end|>`` (or the bare list), LM Studio's
``[TOOL_REQUEST]{...}[END_TOOL_REQUEST]``, Hermes/Qwen ``<tool_call>{...}</tool_call>``, or plain JSON.
Python-style calls go through ``ast.parse`` and a literal-only walk of the tree: nothing is executed.
"""

from __future__ import annotations

import ast
import io
import json
import keyword
import math
import re
import tokenize
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = [
    "LFM2_CALL_END",
    "LFM2_CALL_START",
    "ParsedContent",
    "ToolCall",
    "format_lfm2_calls",
    "parse_openai_tool_calls",
    "parse_tool_calls",
]

LFM2_CALL_START = "<|tool_call_start|>"
LFM2_CALL_END = "<|tool_call_end|>"
MAX_PARSE_CHARS = 200_000  # beyond this a "call" is not worth parsing; it is reported instead

NAME_PATTERN = re.compile(r"[A-Za-z_][\w.-]*", re.ASCII)
_ARG_KEYS = ("arguments", "parameters", "args", "input")
_NAME_KEYS = ("name", "tool", "tool_name", "function_name")
_EXTRA_KEYS = {"id", "type", "call_id"}


@dataclass
class ToolCall:
    """One call the model asked for."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None

    def to_openai(self, call_id: str | None = None) -> dict[str, Any]:
        """The call as an OpenAI ``tool_calls`` entry (arguments as a JSON string)."""
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


class _CallError(ValueError):
    """A call was recognised but is not usable; the message is meant for the model."""


# ---------------------------------------------------------------------------------------------- parsing

_WRAPPED = re.compile(
    r"<\|tool_call_start\|>(?P<lfm2>.*?)(?:<\|tool_call_end\|>|\Z)"
    r"|\[TOOL_REQUEST\](?P<lmstudio>.*?)(?:\[END_TOOL_REQUEST\]|\Z)"
    r"|<tool_call>(?P<hermes>.*?)(?:</tool_call>|\Z)",
    re.DOTALL,
)
_STRAY = re.compile(r"<\|tool_call_(?:start|end)\|>|\[END_TOOL_REQUEST\]|\[TOOL_REQUEST\]|</?tool_call>")
_FENCE = re.compile(r"```[ \t]*(?:json|python|tool_call|tool_code)?[ \t]*\n?(.*?)\n?[ \t]*```", re.DOTALL | re.IGNORECASE)
_BARE_LIST = re.compile(r"\s*\[\s*[A-Za-z_][\w.-]*\s*\(.*\)\s*\]\s*", re.DOTALL | re.ASCII)
_LOOKS_LIKE_JSON_CALL = re.compile(r'["\'](?:name|tool|function)["\']\s*:.*["\'](?:arguments|args|parameters)["\']', re.DOTALL)


def parse_tool_calls(text: str | None) -> ParsedContent:
    """Find every tool call in ``text``; never raises, never evaluates anything."""
    if not text:
        return ParsedContent([], "", [])
    calls: list[ToolCall] = []
    errors: list[str] = []

    def wrapped(match: re.Match[str]) -> str:
        kind = match.lastgroup or "lfm2"
        payload = match.group(kind) or ""
        found, problem = _parse_payload(payload)
        calls.extend(found)
        if problem:
            errors.append(f"{_LABELS[kind]}: {problem}")
        return "\n"

    cleaned = _WRAPPED.sub(wrapped, text)
    cleaned = _STRAY.sub("", cleaned)
    if calls or errors:
        return ParsedContent(calls, _tidy(cleaned), errors)
    return _parse_unwrapped(cleaned)


_LABELS = {
    "lfm2": "could not parse the <|tool_call_start|> call",
    "lmstudio": "could not parse the [TOOL_REQUEST] call",
    "hermes": "could not parse the <tool_call> call",
}


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _parse_unwrapped(text: str) -> ParsedContent:
    """Calls without wrapper markup: the whole content as JSON or a bare list, a fenced block, or a line."""
    stripped = text.strip()
    whole = _unfence(stripped)
    result = _parse_standalone(whole, whole_content=True)
    if result is not None:
        found, problem = result
        return ParsedContent(found, "", [problem] if problem else [])

    calls: list[ToolCall] = []
    errors: list[str] = []

    def fenced(match: re.Match[str]) -> str:
        result = _parse_standalone(match.group(1).strip(), whole_content=False)
        if result is None:
            return match.group(0)
        calls.extend(result[0])
        if result[1]:
            errors.append(result[1])
        return ""

    remaining = _FENCE.sub(fenced, stripped)
    kept: list[str] = []
    for line in remaining.splitlines():
        result = _parse_standalone(line.strip(), whole_content=False) if line.strip()[:1] in ("[", "{") else None
        if result is None or (not result[0] and not result[1]):
            kept.append(line)
            continue
        calls.extend(result[0])
        if result[1]:
            errors.append(result[1])
    if not calls and not errors:
        return ParsedContent([], stripped, [])
    return ParsedContent(calls, _tidy("\n".join(kept)), errors)


def _unfence(text: str) -> str:
    match = _FENCE.fullmatch(text)
    return match.group(1).strip() if match else text


def _parse_standalone(text: str, *, whole_content: bool) -> tuple[list[ToolCall], str | None] | None:
    """Calls when ``text`` as a whole is a call list or call JSON; ``None`` when it is not meant as a call.

    A line inside prose that fails to parse is treated as prose; the whole content failing is reported.
    """
    if not text or text[0] not in "[{":
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = _NOT_JSON
    except RecursionError:
        return ([], "tool call is nested too deeply") if whole_content else None
    if value is not _NOT_JSON:
        shaped = _calls_from_json(value, strict=True)
        if shaped is None:
            return None
        return shaped
    if _BARE_LIST.fullmatch(text):
        try:
            return _parse_python(text), None
        except _CallError as exc:
            return ([], f"could not parse the tool call list: {exc}") if whole_content else None
    if text[0] == "{" and _LOOKS_LIKE_JSON_CALL.search(text):
        # JSON with Python literals (single quotes, True/None) from a model imitating JSON.
        try:
            value = _python_literal(text)
        except _CallError:
            value = _NOT_JSON
        if value is not _NOT_JSON:
            shaped = _calls_from_json(value, strict=True)
            if shaped is not None:
                return shaped
        return ([], "could not parse the tool call: it is not valid JSON") if whole_content else None
    return None


_NOT_JSON = object()


def _parse_payload(payload: str) -> tuple[list[ToolCall], str | None]:
    """The inside of a wrapper: JSON call(s), or a Python-style call list."""
    text = _unfence(payload.strip())
    if not text:
        return [], "the call is empty"
    if len(text) > MAX_PARSE_CHARS:
        return [], f"the call is too long ({len(text)} characters)"
    value = _load_json_prefix(text)
    if value is not _NOT_JSON:
        shaped = _calls_from_json(value, strict=False)
        if shaped is not None:
            return shaped
        return [], 'expected {"name": ..., "arguments": {...}} or a list of such objects'
    try:
        return _parse_python(text), None
    except _CallError as exc:
        return [], str(exc)


def _load_json_prefix(text: str) -> Any:
    """JSON, tolerating surplus closing brackets a small model sometimes adds."""
    try:
        return json.loads(text)
    except RecursionError:
        return _NOT_JSON
    except ValueError:
        pass
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        return _NOT_JSON
    return value if re.fullmatch(r"[\s\]}]*", text[end:]) else _NOT_JSON


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


def parse_openai_tool_calls(tool_calls: Iterable[Any]) -> tuple[list[ToolCall], list[str]]:
    """Native ``message.tool_calls`` entries (arguments as JSON strings) as :class:`ToolCall` objects + errors."""
    calls: list[ToolCall] = []
    errors: list[str] = []
    for entry in tool_calls or []:
        if not isinstance(entry, Mapping):
            errors.append("a tool call is not an object")
            continue
        function = entry.get("function") if isinstance(entry.get("function"), Mapping) else entry
        name = function.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            errors.append(f"invalid tool name {_short(name)}")
            continue
        try:
            arguments = _decode_arguments(function.get("arguments"))
        except _CallError as exc:
            errors.append(f"{name}: {exc}")
            continue
        call_id = entry.get("id") if isinstance(entry.get("id"), str) else None
        calls.append(ToolCall(name=name, arguments=arguments, id=call_id))
    return calls, errors


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
        raise _CallError(f"not a valid call list ({_syntax_reason(exc)}); write [name(arg=value, ...)]") from None
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


def _syntax_reason(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return exc.msg or "syntax error"
    return type(exc).__name__


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


def _dotted_name(node: ast.expr, aliases: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted_name(node.value, aliases)
        return None if base is None else f"{base}.{aliases.get(node.attr, node.attr)}"
    return None


_JSON_NAMES = {"true": True, "false": False, "null": None, "none": None}


def _literal(node: ast.AST, *, aliases: dict[str, str]) -> Any:
    """A JSON value from a literal-only expression (strings, numbers, True/true, None/null, lists, dicts)."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (str, bool, int, float)) or node.value is None:
            return node.value
        raise _CallError(f"unsupported value {_source(node)}")
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(item, aliases=aliases) for item in node.elts]
    if isinstance(node, ast.Dict):
        out: dict[str, Any] = {}
        for key, value in zip(node.keys, node.values):
            if key is None:
                raise _CallError("** inside a dict is not supported")
            decoded = _literal(key, aliases=aliases)
            if isinstance(decoded, (list, dict)):
                raise _CallError(f"unsupported dict key {_source(key)}")
            out[decoded if isinstance(decoded, str) else json.dumps(decoded)] = _literal(value, aliases=aliases)
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _literal(node.operand, aliases=aliases)
        if isinstance(operand, (int, float)) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Name) and node.id.lower() in _JSON_NAMES:
        return _JSON_NAMES[node.id.lower()]
    raise _CallError(f"unsupported value {_source(node)}: only literals (strings, numbers, lists, dicts) are allowed")


def _python_literal(text: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise _CallError(_syntax_reason(exc)) from None
    try:
        return _literal(tree, aliases={})
    except RecursionError:
        raise _CallError("nested too deeply") from None


def _source(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001 - only for an error message
        text = type(node).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _alias_names(text: str) -> tuple[str, dict[str, str]]:
    """Stand-ins for what Python cannot parse but tool calls use: ``get-weather(...)`` and ``from=...``.

    Works on tokens, so string contents are never touched.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except Exception:  # noqa: BLE001 - tokenize errors vary by version; ast.parse reports the real problem
        return text, {}
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))

    def offset(position: tuple[int, int]) -> int:
        return line_starts[position[0] - 1] + position[1]

    edits: list[tuple[int, int, str]] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type != tokenize.NAME:
            index += 1
            continue
        end = index
        while (
            end + 2 < len(tokens)
            and tokens[end + 1].string == "-"
            and tokens[end + 2].type in (tokenize.NAME, tokenize.NUMBER)
            and tokens[end].end == tokens[end + 1].start
            and tokens[end + 1].end == tokens[end + 2].start
        ):
            end += 2
            # "2fa" is NUMBER "2" then NAME "fa", touching
            while end + 1 < len(tokens) and tokens[end + 1].type == tokenize.NAME and tokens[end].end == tokens[end + 1].start:
                end += 1
        follower = tokens[end + 1].string if end + 1 < len(tokens) else ""
        is_kwarg = follower == "=" and (index == 0 or tokens[index - 1].string in ("(", ","))
        if end > index and follower in ("(", "="):
            edits.append((offset(token.start), offset(tokens[end].end), text[offset(token.start) : offset(tokens[end].end)]))
        elif keyword.iskeyword(token.string) and token.string not in ("True", "False", "None") and is_kwarg:
            edits.append((offset(token.start), offset(token.end), token.string))
        index = end + 1
    if not edits:
        return text, {}
    aliases: dict[str, str] = {}
    by_original: dict[str, str] = {}
    counter = 0
    pieces: list[str] = []
    cursor = 0
    for start, stop, original in edits:
        if original not in by_original:
            while f"_tc{counter}_" in text:
                counter += 1
            by_original[original] = f"_tc{counter}_"
            aliases[f"_tc{counter}_"] = original
            counter += 1
        pieces.append(text[cursor:start])
        pieces.append(by_original[original])
        cursor = stop
    pieces.append(text[cursor:])
    return "".join(pieces), aliases


# ---------------------------------------------------------------------------------------------- formatting


def format_lfm2_calls(calls: Iterable[ToolCall]) -> str:
    """LFM2's own call text, ``<|tool_call_start|>[f(a="x")]<|tool_call_end|>``; '' for no calls.

    The LFM2 template renders only ``content``, so this text is what keeps a call in the conversation.
    Calls a Python-style list cannot express (argument names like ``first-name``, infinities) are written as
    the JSON list LFM2 also emits; :func:`parse_tool_calls` reads both.
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
