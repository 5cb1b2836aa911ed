"""Bounds on what one request may make the model do: grammar size, a wall-clock limit, and stopping when the
client has gone.

llama_cpp.server compiles any JSON schema it is given into a grammar and generates under it; a schema with
an enum of 200,000 strings holds the one model for minutes, and generation goes on after the client has hung
up. Three guards close that:

* :func:`check_request_grammars` refuses, with a clear 400, schemas (``response_format``, ``tools`` and
  ``functions`` parameters) over ``MAX_SCHEMA_BYTES``, nesting deeper than ``MAX_SCHEMA_DEPTH``, with an
  ``enum`` of more than ``MAX_ENUM_VALUES`` (or ``MAX_TOTAL_ENUM_VALUES`` in all), more than
  ``MAX_ALTERNATIVES`` ``anyOf``/``oneOf``/``allOf`` branches, and raw ``grammar`` strings over
  ``MAX_GRAMMAR_CHARS``.
* :class:`RequestControl`: one per request, in a context variable that llama_cpp's worker threads inherit.
  :func:`guard_llama` adds a stopping criterion to every ``create_completion`` of the served model that ends
  generation at the next token once the request is cancelled (client gone, or past its wall-clock limit).
"""

from __future__ import annotations

import contextvars
import json
import threading
from typing import Any

from llama_cpp import Llama, StoppingCriteriaList

MAX_SCHEMA_BYTES = 32 * 1024
MAX_SCHEMA_DEPTH = 16
MAX_ENUM_VALUES = 256
MAX_TOTAL_ENUM_VALUES = 1024
MAX_ALTERNATIVES = 64
MAX_GRAMMAR_CHARS = 32 * 1024
DEFAULT_MAX_REQUEST_SECONDS = 300.0


class GrammarLimitError(ValueError):
    """A schema or grammar over the gateway's bounds; the message (with ``param``) goes back as a 400."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def check_schema(schema: Any, param: str) -> None:
    """Raise GrammarLimitError if ``schema`` is over any of the bounds (size, depth, enum, alternatives)."""
    size = len(json.dumps(schema, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > MAX_SCHEMA_BYTES:
        raise GrammarLimitError(f"{param}: the schema is {size} bytes; the limit is {MAX_SCHEMA_BYTES}", param)
    total_enum = 0
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_SCHEMA_DEPTH:
                raise GrammarLimitError(f"{param}: the schema nests deeper than {MAX_SCHEMA_DEPTH} levels", param)
            for key in ("enum",):
                values = node.get(key)
                if isinstance(values, list):
                    if len(values) > MAX_ENUM_VALUES:
                        raise GrammarLimitError(
                            f"{param}: an enum has {len(values)} values; the limit is {MAX_ENUM_VALUES}", param
                        )
                    total_enum += len(values)
            for key in ("anyOf", "oneOf", "allOf"):
                branches = node.get(key)
                if isinstance(branches, list) and len(branches) > MAX_ALTERNATIVES:
                    raise GrammarLimitError(
                        f"{param}: {key} has {len(branches)} branches; the limit is {MAX_ALTERNATIVES}", param
                    )
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            if depth > MAX_SCHEMA_DEPTH:
                raise GrammarLimitError(f"{param}: the schema nests deeper than {MAX_SCHEMA_DEPTH} levels", param)
            stack.extend((value, depth + 1) for value in node)
    if total_enum > MAX_TOTAL_ENUM_VALUES:
        raise GrammarLimitError(
            f"{param}: the schema's enums have {total_enum} values in all; the limit is {MAX_TOTAL_ENUM_VALUES}", param
        )


def check_request_grammars(payload: dict[str, Any]) -> None:
    """Every schema and grammar a completion request may turn into a grammar, checked by :func:`check_schema`."""
    grammar = payload.get("grammar")
    if isinstance(grammar, str) and len(grammar) > MAX_GRAMMAR_CHARS:
        raise GrammarLimitError(f"grammar: {len(grammar)} characters; the limit is {MAX_GRAMMAR_CHARS}", "grammar")
    response_format = payload.get("response_format")
    if isinstance(response_format, dict):
        spec = response_format.get("json_schema")
        if isinstance(spec, dict) and "schema" in spec:
            check_schema(spec["schema"], "response_format")
        if "schema" in response_format:
            check_schema(response_format["schema"], "response_format")
    schemas: list[tuple[Any, str]] = []
    for i, tool in enumerate(payload.get("tools") or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and "parameters" in function:
            schemas.append((function["parameters"], f"tools[{i}].function.parameters"))
    for i, function in enumerate(payload.get("functions") or []):
        if isinstance(function, dict) and "parameters" in function:
            schemas.append((function["parameters"], f"functions[{i}].parameters"))
    for schema, param in schemas:
        check_schema(schema, param)
    if schemas:
        check_schema([s for s, _ in schemas], "tools")  # all of them together under the same bounds


class RequestControl:
    """One request's cancellation: set when the client disconnects or the wall-clock limit passes."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.reason = ""

    def cancel(self, reason: str) -> None:
        if not self.cancelled.is_set():
            self.reason = reason
            self.cancelled.set()

    def should_stop(self, input_ids: Any, logits: Any) -> bool:
        """A llama_cpp stopping criterion: true once the request is cancelled."""
        return self.cancelled.is_set()


current_request: contextvars.ContextVar[RequestControl | None] = contextvars.ContextVar(
    "lmstudio_gateway_request", default=None
)


def guard_llama(llama: Llama) -> Llama:
    """Make every ``create_completion`` of ``llama`` (the chat handlers call it too) stop at the next token
    once the current request's :class:`RequestControl` is cancelled. Idempotent."""
    if getattr(llama, "_lmstudio_guarded", False):
        return llama
    original = llama.create_completion

    def create_completion(*args: Any, **kwargs: Any) -> Any:
        control = current_request.get()
        if control is not None:
            criteria = StoppingCriteriaList([control.should_stop])
            if kwargs.get("stopping_criteria"):
                criteria.extend(kwargs["stopping_criteria"])
            kwargs["stopping_criteria"] = criteria
        return original(*args, **kwargs)

    llama.create_completion = create_completion  # type: ignore[method-assign]
    llama._lmstudio_guarded = True  # type: ignore[attr-defined]
    return llama
