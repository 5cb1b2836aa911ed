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
import threading
from typing import Any

from llama_cpp import Llama, StoppingCriteriaList

from lmstudio_agent.model import grammar_bounds

# The schema bounds are the core's (lmstudio_agent.model.grammar_bounds), so that every schema the agent's constrained
# mode writes is one this server accepts.
MAX_SCHEMA_BYTES = grammar_bounds.MAX_SCHEMA_BYTES
MAX_SCHEMA_DEPTH = grammar_bounds.MAX_SCHEMA_DEPTH
MAX_ENUM_VALUES = grammar_bounds.MAX_ENUM_VALUES
MAX_TOTAL_ENUM_VALUES = grammar_bounds.MAX_TOTAL_ENUM_VALUES
MAX_ALTERNATIVES = grammar_bounds.MAX_ALTERNATIVES
MAX_GRAMMAR_CHARS = 32 * 1024
DEFAULT_MAX_REQUEST_SECONDS = 300.0


class GrammarLimitError(ValueError):
    """A schema or grammar over the gateway's bounds; the message (with ``param``) goes back as a 400.

    Args:
        message: Which bound was passed.
        param: The request field that carried the schema or grammar.
    """

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def check_schema(schema: Any, param: str) -> None:
    """Raise GrammarLimitError if ``schema`` is over any of the bounds (size, depth, enum, alternatives)."""
    problem = grammar_bounds.schema_problem(schema)
    if problem is not None:
        raise GrammarLimitError(f"{param}: {problem}", param)


def safe_pattern(pattern: str, param: str) -> str:
    """``pattern`` as llama.cpp can compile it (:func:`lmstudio_agent.model.grammar_bounds.gbnf_pattern`); a pattern it
    cannot is a GrammarLimitError (a 400), never a grammar that takes the server down."""
    safe = grammar_bounds.gbnf_pattern(pattern)
    if safe is None:
        raise GrammarLimitError(f"{param}: the pattern uses an escape this server cannot compile", param)
    return safe


def _safe_patterns(node: Any, param: str) -> None:
    """Rewrite every ``pattern`` in a schema in place with :func:`safe_pattern`."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("pattern"), str):
                item["pattern"] = safe_pattern(item["pattern"], param)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_request_grammars(payload: dict[str, Any]) -> None:
    """Every schema and grammar a completion request may turn into a grammar, checked by :func:`check_schema`;
    their patterns are rewritten in place so that llama.cpp can parse the grammar (:func:`safe_pattern`)."""
    grammar = payload.get("grammar")
    if isinstance(grammar, str) and len(grammar) > MAX_GRAMMAR_CHARS:
        raise GrammarLimitError(f"grammar: {len(grammar)} characters; the limit is {MAX_GRAMMAR_CHARS}", "grammar")
    response_format = payload.get("response_format")
    if isinstance(response_format, dict):
        spec = response_format.get("json_schema")
        if isinstance(spec, dict) and "schema" in spec:
            check_schema(spec["schema"], "response_format")
            _safe_patterns(spec["schema"], "response_format")
        if "schema" in response_format:
            check_schema(response_format["schema"], "response_format")
            _safe_patterns(response_format["schema"], "response_format")
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
        _safe_patterns(schema, param)
    if schemas:
        check_schema([s for s, _ in schemas], "tools")  # all of them together under the same bounds


def check_token_ids(path: str, payload: dict[str, Any], n_vocab: int) -> None:
    """Token ids a request hands to llama.cpp must exist in the model's vocabulary: an id out of range
    crashes the whole server in ``/extras/detokenize`` (llama.cpp reads past its table). ``logit_bias`` keys
    (token ids unless ``logit_bias_type`` is ``tokens``) are held to the same range. GrammarLimitError."""
    if path == "/extras/detokenize":
        tokens = payload.get("tokens")
        if isinstance(tokens, list):
            # JSON's integers include 1.0 (llama_cpp's model takes it as 1); booleans are not ids.
            bad = [t for t in tokens if isinstance(t, bool) or not isinstance(t, (int, float))
                   or t != int(t) or not 0 <= t < n_vocab]
            if bad:
                raise GrammarLimitError(f"tokens: every id must be an integer from 0 to {n_vocab - 1}", "tokens")
    bias = payload.get("logit_bias")
    if isinstance(bias, dict) and payload.get("logit_bias_type") != "tokens":
        for key in bias:
            try:
                ok = 0 <= int(key) < n_vocab
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise GrammarLimitError(f"logit_bias: keys must be token ids from 0 to {n_vocab - 1}", "logit_bias")


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
