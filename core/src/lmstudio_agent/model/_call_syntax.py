"""The literal-only readers under the tool-call parser (:mod:`.toolcalls`): nothing in a model's text is evaluated.

A JSON value at the start of a text, a code fence's body, a Python-style expression read through ``ast`` as
literals only (strings, numbers, True/true, None/null, lists, dicts), and stand-ins for the names Python cannot
parse but tool calls use (``get-weather(...)``, ``from=...``); and the error they raise, in words for the model.
"""

from __future__ import annotations

import ast
import io
import json
import keyword
import re
import tokenize
import warnings
from typing import Any

MAX_PARSE_CHARS = 200_000  # beyond this a "call" is not worth parsing; it is reported instead

_FENCE = re.compile(r"```[ \t]*(?:json|python|tool_call|tool_code)?[ \t]*\n?(.*?)\n?[ \t]*```", re.DOTALL | re.IGNORECASE)
_NOT_JSON = object()


class _CallError(ValueError):
    """A call was recognised but is not usable; the message is meant for the model."""

    def __init__(self, message: str, *, syntax: bool = False) -> None:
        super().__init__(message)
        self.syntax = syntax  # the text is not even an expression (as opposed to a call we refuse)


def _unfence(text: str) -> str:
    match = _FENCE.fullmatch(text)
    return match.group(1).strip() if match else text


def _load_json_prefix(text: str) -> tuple[Any, str]:
    """JSON at the start of ``text`` and what follows it (surplus closing brackets dropped)."""
    if text[0] not in "[{":
        return _NOT_JSON, text
    try:
        return json.loads(text), ""
    except RecursionError:
        return _NOT_JSON, text
    except ValueError:
        pass
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        return _NOT_JSON, text
    return value, re.sub(r"^[\s\]}]*", "", text[end:])


def _syntax_reason(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return exc.msg or "syntax error"
    return type(exc).__name__


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
        for key, value in zip(node.keys, node.values, strict=True):
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
            and tokens[end + 1].string in ("-", ".")
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
        hyphenated = any(tokens[at].string == "-" for at in range(index, end + 1))
        if hyphenated and follower in ("(", "="):
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
