"""Grammar-constrained tool calls for models with no tool support, shaped for very small models.

Servers that enforce ``response_format`` with a grammar (LM Studio, llama.cpp) can then only produce a
well-formed call. Each choice below was kept because it raised the evaluation harness's figures on
SmolLM2-135M (docs/readme/eval.md has the numbers):

- One object per tool (``anyOf``), whose keys come in this order: ``"type"`` (a few words naming the tool's
  topic, e.g. ``"weather"``), ``"tool"`` (the tool's name), then ``"arguments"`` (only that tool's schema).
  A tiny model picks a tool far better by writing a plain word first (``weather``) than a snake_case name,
  whose first token (``get``, ``set``) says little; and ``"tool"`` reads as a tool name where ``"name"``
  reads as a person's or a city's. The reader (``toolcalls.parse_tool_calls``) accepts ``"tool"`` as the
  name key and ignores ``"type"``.
- The system prompt lists each tool as its one-line description followed by the exact shape of a call.
- With ``sources`` (the request and the latest user and tool texts), argument values are copied, not invented:
  a free string must be a span of words from the sources, a number one that appears there, an enum value
  one the sources mention (when they mention enough of them; an optional enum argument is then required,
  and left out when they mention none), a free-form object one of the JSON objects in the sources; an
  optional number with nothing to copy is left to its default, and a tool that needs a free-form object
  while the sources hold none (``store_invoice`` before anything was extracted) is left out of the round's
  grammar. Small models otherwise "correct" values they should copy (Prague becomes Czechoslovakia). Terminal tools (the final answer)
  stay free.
- Strings and arrays get upper bounds: a tiny model can loop inside a string until the token cap.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping, Sequence

from .tools import Tool

DEFAULT_MAX_STRING = 600
DEFAULT_MAX_ITEMS = 20
TOPIC_KEY = "type"
NAME_KEY = "tool"
ARGUMENTS_KEY = "arguments"
# Leading verbs dropped from a tool's topic: the object of the action tells tools apart better for a tiny
# model (get_weather -> "weather", translate_text -> "text"); measured: 60% -> 80% right tool names.
LEADING_VERBS = frozenset({
    "add", "analyze", "analyse", "book", "calculate", "cancel", "check", "compute", "control", "convert", "create",
    "define", "delete", "do", "draft", "edit", "extract", "fetch", "find", "generate", "get", "list", "load",
    "lookup", "make", "open", "perform", "play", "post", "prompt", "query", "read", "remove", "run", "save",
    "schedule", "search", "send", "set", "show", "start", "stop", "store", "summarize", "translate", "update",
    "upload", "write",
})
FINAL_TOPIC = "final answer"
FINAL_SUMMARY = "Give the final answer, only after a tool result."
MAX_SPAN_WORDS = 24
MAX_SPANS = 1500
COPY_RECENT = 6
_WORD = re.compile(r"\S+")
_NUMBER = re.compile(r"(?<![\w.-])-?\d+(?:\.\d+)?(?![\w])")
_LEADING = "'\"([{<"
_CLOSING = "'\")]}>"
_TRAILING = ".,;:!?" + _CLOSING
_SPAN_DEF = "copied_text"


def bounded(schema: dict[str, Any], max_string: int = DEFAULT_MAX_STRING, max_items: int = DEFAULT_MAX_ITEMS) -> dict[str, Any]:
    """A copy of ``schema`` with every unbounded string and array given an upper bound, and every object
    closed to extra properties (an extra argument is never valid)."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    kind = out.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if "string" in kinds and "enum" not in out and "const" not in out:
        out.setdefault("maxLength", max_string)
    if "array" in kinds:
        out.setdefault("maxItems", max_items)
        if "items" in out:
            out["items"] = bounded(out["items"], max_string, max_items)
    if "object" in kinds and "properties" in out:
        out["properties"] = {k: bounded(v, max_string, max_items) for k, v in out["properties"].items()}
        out.setdefault("additionalProperties", False)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in out:
            out[key] = [bounded(s, max_string, max_items) for s in out[key]]
    return out


# ---------------------------------------------------------------------------------------------- topics


def topic(tool: Tool) -> str:
    """A few plain words for what the tool is about: its name's words without a generic leading verb."""
    if tool.terminal:
        return FINAL_TOPIC
    words = [w for w in re.split(r"[_\-.\s]+", tool.name) if w]
    if len(words) > 1 and words[0].lower() in LEADING_VERBS:
        words = words[1:]
    return " ".join(words) or tool.name


def _summary(tool: Tool) -> str:
    if tool.terminal:  # a tiny model over-picks a "finish the task" tool on the first turn
        return FINAL_SUMMARY
    return tool.description.strip().splitlines()[0].strip() if tool.description.strip() else tool.name


# ---------------------------------------------------------------------------------------------- copying


def copy_sources(messages: Iterable[Mapping[str, Any]], recent: int = COPY_RECENT) -> list[str]:
    """The texts argument values may be copied from, in order: the content of the first user message (the
    request) and of the last ``recent`` user and tool messages (the latest results). Bounded, so a round
    costs the same however long the conversation has grown."""
    texts = [m["content"] for m in messages
             if m.get("role") in ("user", "tool") and isinstance(m.get("content"), str) and m["content"].strip()]
    return texts if len(texts) <= recent + 1 else [texts[0], *texts[-recent:]]


def spans(sources: Sequence[str], max_words: int = MAX_SPAN_WORDS, max_length: int = DEFAULT_MAX_STRING,
          limit: int | None = None) -> list[str]:
    """Every run of up to ``max_words`` whole words of the sources, also without surrounding quotes and
    trailing punctuation. Runs that start a multi-word user request are left out: that is the request's
    verb ("Translate ..."), which small models otherwise copy into every value. Spans holding ``"`` or
    ``\\`` are left out too (llama.cpp's schema-to-grammar converter cannot escape them). With ``limit``,
    stops as soon as there are more than ``limit`` (a long document would otherwise cost a second a round)."""
    found: dict[str, None] = {}
    for text in sources:
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        for i, (start, _) in enumerate(words):
            for j in range(i, min(len(words), i + max_words)):
                raw = text[start:words[j][1]]
                for span in _trimmed(raw):
                    if len(span) <= max_length and '"' not in span and "\\" not in span and _quotes_paired(span):
                        if i == 0 and len(words) > 1 and text.startswith(span):
                            continue
                        found.setdefault(span)
                        if limit is not None and len(found) > limit:
                            return list(found)
    return list(found)


def _trimmed(raw: str) -> list[str]:
    """``raw`` with every part of its leading quote run and trailing punctuation run cut off (``'rent.'?``
    gives ``rent.'?``, ``rent.'``, ``rent.``, ``rent``), and without a possessive ``'s``."""
    body = raw.lstrip(_LEADING)
    heads = {raw[k:] for k in range(len(raw) - len(body) + 1) if not raw[k:k + 1].isspace()}
    out: list[str] = []
    for head in heads:
        core = head.rstrip(_TRAILING + " \t\r\n")
        out.extend(head[:end] for end in range(len(core), len(head) + 1) if not head[end - 1:end].isspace())
        if core.endswith(("'s", "’s")) and len(core) > 2:
            out.append(core[:-2])
    return [span for span in out if span.strip(_TRAILING + _LEADING)]


def _quotes_paired(span: str) -> bool:
    """False when the span holds an unpaired quote mark (an apostrophe inside a word does not count)."""
    quotes = [i for i, ch in enumerate(span) if ch in "'’"
              and not (0 < i < len(span) - 1 and span[i - 1].isalnum() and span[i + 1].isalnum())]
    return len(quotes) % 2 == 0


def numbers(sources: Sequence[str]) -> list[int | float]:
    """The numbers written in the sources, in order, without repeats."""
    found: list[int | float] = []
    for text in sources:
        for match in _NUMBER.finditer(text):
            value: int | float = float(match.group()) if "." in match.group() else int(match.group())
            if value not in found:
                found.append(value)
    return found


def json_objects(sources: Sequence[str]) -> list[dict[str, Any]]:
    """The JSON objects written in the sources (a tool's result, or data pasted into a request)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    for text in sources:
        index = text.find("{")
        while index != -1:
            try:
                value, end = decoder.raw_decode(text, index)
            except ValueError:
                index = text.find("{", index + 1)
                continue
            if isinstance(value, dict) and value and value not in found and '\\' not in json.dumps(value):
                found.append(value)
            index = text.find("{", end)
    return found


def _mentioned(values: Sequence[Any], sources: Sequence[str]) -> list[Any]:
    words = {w.strip(_TRAILING + _LEADING).lower() for text in sources for w in text.split()}
    return [v for v in values if isinstance(v, str) and v.lower() in words]


class _Copy:
    """What the sources offer to copy; applied to each tool's argument schema. ``references`` (the run's
    documents, ``"@doc:NAME"``) are offered for every string argument too, even where the spans are too many."""

    def __init__(self, sources: Sequence[str], references: Sequence[str] = ()) -> None:
        self.sources = list(sources)
        self.references = list(references)
        self.spans = spans(self.sources, limit=MAX_SPANS)
        self.use_spans = 0 < len(self.spans) <= MAX_SPANS  # beyond that the grammar gets too big: strings stay free
        self.numbers = numbers(self.sources)
        self.objects = json_objects(self.sources)

    def definitions(self) -> dict[str, Any]:
        if not self.use_spans:
            return {}
        return {_SPAN_DEF: {"type": "string", "enum": self.spans + [r for r in self.references if r not in self.spans]}}

    def value(self, spec: dict[str, Any]) -> dict[str, Any]:
        kind = spec.get("type")
        if "enum" in spec or "const" in spec:
            return spec
        if kind == "string" and self.use_spans and not {"pattern", "format"} & set(spec):
            return {"$ref": f"#/$defs/{_SPAN_DEF}"}
        if kind == "string" and self.references and not {"pattern", "format"} & set(spec):
            return {"anyOf": [{"type": "string", "enum": self.references}, spec]}
        if kind in ("number", "integer") and self.numbers:
            fitting = [n for n in self.numbers if kind == "number" or float(n).is_integer()]
            if fitting:
                return {"type": kind, "enum": [int(n) if kind == "integer" else n for n in fitting]}
        if _free_form_object(spec) and self.objects:
            return {"enum": self.objects}
        for key in ("anyOf", "oneOf"):
            if key in spec:
                return {**spec, key: [self.value(option) for option in spec[key]]}
        return spec

    def arguments(self, schema: dict[str, Any]) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return schema
        required = set(schema.get("required") or [])
        copied: dict[str, Any] = {}
        for name, spec in properties.items():
            if name not in required and not self.numbers and _numeric(spec):
                continue  # nothing to copy: an optional number keeps its default
            copied[name] = self.value(spec) if isinstance(spec, dict) else spec
        # enum values the sources mention, when they mention one for every argument sharing that enum
        groups: dict[tuple, list[str]] = {}
        for name, spec in copied.items():
            if isinstance(spec, dict) and isinstance(spec.get("enum"), list) and name in properties \
                    and "enum" in properties[name]:
                groups.setdefault(tuple(json.dumps(v) for v in spec["enum"]), []).append(name)
        for key, names in groups.items():
            hits = _mentioned([json.loads(v) for v in key], self.sources)
            if len(hits) >= len(names):
                for name in names:
                    copied[name] = {**copied[name], "enum": hits}
                    required.add(name)  # a value the request names is never left out
            elif not hits:
                for name in names:
                    if name not in required:
                        del copied[name]  # nothing mentioned: the argument keeps its default
        narrowed = {**schema, "properties": copied}
        if required:
            narrowed["required"] = [name for name in copied if name in required]
        return narrowed


def _needs_object(arguments: dict[str, Any]) -> bool:
    """True when a required argument is a free-form object (``dict``): a tiny model can only invent one."""
    properties = arguments.get("properties") or {}
    return any(_free_form_object(properties.get(name)) for name in arguments.get("required") or [])


def _free_form_object(spec: Any) -> bool:
    """An object schema with no declared shape (a plain ``dict`` argument)."""
    return (isinstance(spec, dict) and spec.get("type") == "object" and not spec.get("properties")
            and "additionalProperties" not in spec)


def _numeric(spec: Any) -> bool:
    if not isinstance(spec, dict):
        return False
    options = spec.get("anyOf") or spec.get("oneOf") or [spec]
    return any(isinstance(o, dict) and o.get("type") in ("number", "integer") for o in options)


# ---------------------------------------------------------------------------------------------- schema


def call_schema(tools: Iterable[Tool], sources: Sequence[str] = (), references: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON schema of one call to any of ``tools``: topic, name, then that tool's own arguments,
    with values copied from ``sources`` (and document ``references``) when given (see the module docstring)."""
    copy = _Copy(sources, references) if sources or references else None
    variants, waiting = [], []
    for tool in tools:
        arguments = bounded(tool.parameters or {"type": "object", "properties": {}})
        arguments.setdefault("type", "object")
        if copy is not None and not tool.terminal:
            if not copy.objects and _needs_object(arguments):
                waiting.append(tool)  # its data must come from somewhere: a later round, once a tool returns it
                continue
            arguments = copy.arguments(arguments)
        variants.append({
            "type": "object",
            "properties": {TOPIC_KEY: {"const": topic(tool)}, NAME_KEY: {"const": tool.name}, ARGUMENTS_KEY: arguments},
            "required": [TOPIC_KEY, NAME_KEY, ARGUMENTS_KEY],
            "additionalProperties": False,
        })
    if not variants:
        if waiting:  # nothing else to call: the waiting tools stay free
            return call_schema(waiting)
        raise ValueError("a constrained call needs at least one tool")
    schema = variants[0] if len(variants) == 1 else {"anyOf": variants}
    definitions = copy.definitions() if copy is not None else {}
    return {**schema, "$defs": definitions} if definitions else schema


def response_format(tools: Iterable[Tool], sources: Sequence[str] = (), references: Sequence[str] = ()) -> dict[str, Any]:
    """``response_format`` in the OpenAI/LM Studio ``json_schema`` form."""
    return {"type": "json_schema",
            "json_schema": {"name": "tool_call", "strict": True, "schema": call_schema(tools, sources, references)}}


def format_call(tool: Tool, arguments: Mapping[str, Any]) -> str:
    """A call as the constrained model writes it (training data for fine-tuning uses exactly this)."""
    return json.dumps({TOPIC_KEY: topic(tool), NAME_KEY: tool.name, ARGUMENTS_KEY: dict(arguments)},
                      ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- prompt


def _placeholder(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return "..."
    if spec.get("enum"):
        return spec["enum"][0]
    if "const" in spec:
        return spec["const"]
    for key in ("anyOf", "oneOf"):
        for option in spec.get(key) or []:
            if isinstance(option, dict) and option.get("type") != "null":
                return _placeholder(option)
    kind = spec.get("type")
    return {"number": 1, "integer": 1, "boolean": True, "object": {}, "array": []}.get(kind if isinstance(kind, str) else "", "...")


def describe_tools(tools: Iterable[Tool]) -> str:
    """Each tool as its one-line description, then the exact shape of a call to it."""
    blocks = []
    for tool in tools:
        properties = (tool.parameters or {}).get("properties") or {}
        example = {name: _placeholder(spec) for name, spec in properties.items()}
        call = json.dumps({TOPIC_KEY: topic(tool), NAME_KEY: tool.name, ARGUMENTS_KEY: example}, ensure_ascii=False)
        blocks.append(f"{_summary(tool)}\n{call}")
    return "\n\n".join(blocks)


SYSTEM_PROMPT = """Tools, each with what it does and the shape of a call:

{tools}

Reply with one JSON call to the tool that fits the request. Copy values from the request exactly."""


def system_prompt(tools: Iterable[Tool]) -> str:
    return SYSTEM_PROMPT.format(tools=describe_tools(tools))
