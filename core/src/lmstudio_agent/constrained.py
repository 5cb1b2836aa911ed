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
- Or no call at all: the last ``anyOf`` branch is an answer in words, ``{"type": "answer", "answer": "..."}``
  (:func:`format_answer`), for a request no offered tool fits and to finish after a tool result. It takes the
  place of the built-in final-answer tool (``terminate``), which this mode neither lists nor offers; a run's
  last round offers only this branch, so the final answer is always words, never a serialized call.
- The system prompt lists each tool as its one-line description followed by the exact shape of a call, and
  the answer last, in the same form.
- With ``sources`` (the request and the latest user and tool texts), argument values are copied, not invented:
  a free string must be a span of words from the sources, a number one that appears there, an enum value
  one the sources mention (when they mention enough of them; an optional enum argument is then required,
  and left out when they mention none), a free-form object one of the JSON objects in the sources; an
  optional number with nothing to copy is left to its default, and a tool that needs a free-form object
  while the sources hold none (``store_invoice`` before anything was extracted) is left out of the round's
  grammar. Small models otherwise "correct" values they should copy (Prague becomes Czechoslovakia). The answer
  and terminal tools stay free.
- Strings and arrays get upper bounds: a tiny model can loop inside a string until the token cap.
- Each round's grammar offers only the tools the request's current step names (:func:`round_tools`, by
  :mod:`.routing`), and none whose required number, date or identifier the conversation does not hold
  (:func:`unfilled`); with none left, the answer alone, so the model asks rather than invents. An identifier
  argument takes the code-like words of the sources ("PX-1042"), and an optional switch the request never
  mentions keeps its default.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Iterable, Mapping, Sequence

from . import routing, values
from .policy import SmallModelPolicy
from .rounds import RoundContext
from .schema import validate as schema_errors
from .tools import Tool

ON = SmallModelPolicy()

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
# The "answer without a tool" branch: {"type": "answer", "answer": "<words for the user>"}. It replaces the
# built-in final-answer tool (``terminate``) in this mode: no call, the reply is the answer.
ANSWER_TOPIC = "answer"
ANSWER_KEY = "answer"
ANSWER_SUMMARY = "No tool fits the request, or a tool's result already answers it: answer in words."
BUILTIN_FINAL_TOOL = "terminate"
DEFAULT_MAX_ANSWER = 600
MAX_SPAN_WORDS = 24
MAX_SPANS = 1500
COPY_RECENT = 6
_WORD = re.compile(r"\S+")
_LEADING = "'\"([{<"
_CLOSING = "'\")]}>"
_TRAILING = ".,;:!?" + _CLOSING
_SPAN_DEF = "copied_text"


# Bounds on one schema's grammar, shared by both sides: gateway-model refuses a larger schema (one that would
# hold the model for minutes), and this module keeps its own schemas inside them (:func:`call_schema` copies
# fewer or shorter spans until the schema fits). llama.cpp compiles an enum into alternatives: 2,000 values
# cost about a second a request on a 2-core CPU, 20,000 cost most of a minute.
MAX_SCHEMA_BYTES = 192 * 1024
MAX_SCHEMA_DEPTH = 16
MAX_ENUM_VALUES = 2048
MAX_TOTAL_ENUM_VALUES = 4096
MAX_ALTERNATIVES = 64


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is over the grammar bounds above (its size, depth, enums, alternatives), or None."""
    size = len(json.dumps(schema, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > MAX_SCHEMA_BYTES:
        return f"the schema is {size} bytes; the limit is {MAX_SCHEMA_BYTES}"
    total_enum = 0
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)) and depth > MAX_SCHEMA_DEPTH:
            return f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels"
        if isinstance(node, dict):
            values = node.get("enum")
            if isinstance(values, list):
                if len(values) > MAX_ENUM_VALUES:
                    return f"an enum has {len(values)} values; the limit is {MAX_ENUM_VALUES}"
                total_enum += len(values)
            for key in ("anyOf", "oneOf", "allOf"):
                branches = node.get(key)
                if isinstance(branches, list) and len(branches) > MAX_ALTERNATIVES:
                    return f"{key} has {len(branches)} branches; the limit is {MAX_ALTERNATIVES}"
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
    if total_enum > MAX_TOTAL_ENUM_VALUES:
        return f"the schema's enums have {total_enum} values in all; the limit is {MAX_TOTAL_ENUM_VALUES}"
    return None


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
    if "object" in kinds and isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = bounded(out["additionalProperties"], max_string, max_items)
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


# Marks a message the agent itself wrote to steer the model ("your reply could not be read ..."): it is sent
# as a user turn, but no value is ever copied from it. The client drops keys that start with "_".
NOTE_KEY = "_agent_note"


def agent_note(text: str) -> dict[str, Any]:
    """A user turn the agent writes itself (a correction, a nudge to finish), kept out of the copy sources."""
    return {"role": "user", "content": text, NOTE_KEY: True}


def copy_sources(messages: Iterable[Mapping[str, Any]], recent: int = COPY_RECENT) -> list[str]:
    """The texts argument values may be copied from, in order: the content of the first user message (the
    request) and of the last ``recent`` user and tool messages (the latest results). Bounded, so a round
    costs the same however long the conversation has grown."""
    texts = [m["content"] for m in messages
             if m.get("role") in ("user", "tool") and isinstance(m.get("content"), str) and m["content"].strip()
             and not m.get(NOTE_KEY)]
    return texts if len(texts) <= recent + 1 else [texts[0], *texts[-recent:]]


# Words a copied value never ends with, and (but for articles and possessives) never starts with: a value is
# "Buenos Aires" or "the plants", not "in Buenos" or "plants at".
_ARTICLES = frozenset({"a", "an", "the", "my", "your", "his", "her", "its", "our", "their", "this", "these",
                       "those", "some", "any"})
_LINKS = frozenset({"of", "in", "on", "at", "to", "for", "from", "with", "by", "and", "or", "but", "into", "onto",
                    "about", "as", "via", "per", "than", "that", "which", "who", "whose", "whom", "if", "so", "nor",
                    "between", "during", "until", "till", "within", "is", "are", "was", "were", "be", "am"})
# Lowercase words inside a capitalised name ("Rio de Janeiro", "Bank of America").
_NAME_LINKS = frozenset({"of", "de", "la", "le", "du", "del", "da", "do", "dos", "das", "der", "den", "von", "van",
                         "y", "al", "el", "di", "upon"})
_QUOTED = re.compile(r"(?<![\w])(['\"“‘«])(.+?)(['\"”’»])(?![\w])")
_SENTENCE_END = (".", "!", "?", ":", ";")


def _bare(word: str) -> str:
    return word.strip(_TRAILING + _LEADING + "’‘“”").lower()


def _name_groups(text: str, words: Sequence[tuple[int, int]]) -> list[int]:
    """For each word, the index of the first word of the capitalised name it belongs to (itself when none).
    A sentence's first word never joins the name after it ("Tell Anna Smith": "Anna Smith")."""
    raw = [text[s:e] for s, e in words]
    capital = [w.lstrip(_LEADING + "“‘")[:1].isupper() for w in raw]
    starts = [i == 0 or raw[i - 1].endswith(_SENTENCE_END) for i in range(len(raw))]
    group = list(range(len(raw)))
    for i in range(1, len(raw)):
        prev = raw[i - 1]
        if not capital[i] or prev.rstrip("'’").endswith(tuple(_TRAILING)):
            continue  # punctuation ends a name
        if capital[i - 1] and not starts[i - 1]:
            group[i] = group[i - 1]
        elif prev.lower() in _NAME_LINKS and i >= 2 and capital[i - 2] and not starts[i - 2] \
                and not raw[i - 2].endswith(tuple(_TRAILING)):
            group[i] = group[i - 1] = group[i - 2]
    return group


def _quotations(text: str, words: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """(first word, last word) of each quotation of two or more words."""
    ranges = []
    for match in _QUOTED.finditer(text):
        inside = [i for i, (s, e) in enumerate(words) if s >= match.start() and e <= match.end()]
        if len(inside) >= 2:
            ranges.append((inside[0], inside[-1]))
    return ranges


def spans(sources: Sequence[str], max_words: int = MAX_SPAN_WORDS, max_length: int = DEFAULT_MAX_STRING,
          limit: int | None = None) -> list[str]:
    """Runs of up to ``max_words`` whole words of the sources that read as a value: whole names ("Buenos
    Aires", never "Buenos"), whole quotations, no run that ends with an article, preposition or conjunction
    or starts with a preposition or conjunction; each also without surrounding quotes and trailing
    punctuation. Runs that start a multi-word user request are left out: that is the request's verb
    ("Translate ..."), which small models otherwise copy into every value. Spans holding ``"`` or ``\\`` are
    left out too (llama.cpp's schema-to-grammar converter cannot escape them). With ``limit``, stops as soon
    as there are more than ``limit`` (a long document would otherwise cost a second a round)."""
    found: dict[str, None] = {}
    for text in sources:
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        short = len(words) <= 400
        bare = [_bare(text[s:e]) for s, e in words]
        names = _name_groups(text, words) if short else list(range(len(words)))
        quotes = _quotations(text, words) if short else []
        quote_starts = {first for first, _ in quotes}
        quote_ends = {last for _, last in quotes}
        for i, (start, _) in enumerate(words):
            if i > 0 and names[i] == names[i - 1]:
                continue  # inside a name
            if bare[i] in _LINKS and i not in quote_starts:
                continue
            if any(first < i <= last for first, last in quotes):
                continue  # inside a quotation
            for j in range(i, min(len(words), i + max_words)):
                if j + 1 < len(words) and names[j + 1] == names[j]:
                    continue  # would cut a name
                if (bare[j] in _LINKS or bare[j] in _ARTICLES) and j not in quote_ends:
                    continue
                if any(first <= j < last for first, last in quotes):
                    continue  # would cut a quotation
                for span in _trimmed(text[start:words[j][1]]):
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
    """The numbers written in the sources, in order, without repeats: in digits (also glued to a unit or
    currency sign, with thousands separators or a scale word) or in words; for a percentage both the number
    and the fraction (:func:`values.numbers`)."""
    return values.numbers(sources)


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
            # No escapes the grammar converter could get wrong (quotes, backslashes, control characters);
            # letters beyond ASCII are fine (written as \\uXXXX, which the grammar reads as the letter).
            if isinstance(value, dict) and value and value not in found \
                    and '\\' not in json.dumps(value, ensure_ascii=False):
                found.append(value)
            index = text.find("{", end)
    return found


_GLUED_UNIT = re.compile(r"\d(?:[\d,.]*\d)?\s?(°?[A-Za-z]+(?:/[A-Za-z]+)?)\b")


def _mentioned(options: Sequence[Any], sources: Sequence[str], found_codes: Mapping[str, list[str]] | None = None
               ) -> list[Any]:
    """The enum values the sources mention: as a word, as words (``high_priority``: "high priority"), by the
    name of the code (``USD``: "US dollars"; ``CA``: "California") or of the unit (``kg``: "kilograms")."""
    text = " ".join(sources)
    lowered = text.lower()
    words = {w.strip(_TRAILING + _LEADING).lower() for w in text.split()}
    words |= {routing.stem(w) for w in words}  # "heating" names "heat", "cats" names "cat"
    units = {m.group(1).lower() for m in _GLUED_UNIT.finditer(text)}
    codes = {code.upper() for kind in (found_codes or values.codes(sources)).values() for code in kind}
    out = []
    for option in options:
        if not isinstance(option, str) or not option.strip():
            continue
        low = option.lower()
        phrase = re.sub(r"[_\-]+", " ", low).strip()
        group: frozenset[str] | set[str] = values.unit_group(low) or set()
        if low in words or option.upper() in codes and len(option) >= 2 \
                or (" " in phrase and re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", lowered)) \
                or any(name in units or (len(name) > 2 and (name in words or " " in name and name in lowered))
                       for name in group):
            out.append(option)
    return out


# Measured switches (docs/readme/eval.md, "Lever 1, round 2"): a value the model writes itself is let
# through for numbers / strings (still checked against the schema), instead of only copied ones.
_FRACTION_HINTS = ("fraction", "decimal", "ratio", "between 0 and 1", "0-1", "0 to 1", "0..1", "probability")
_RATE_HINTS = ("rate",)
_PERCENT_HINTS = ("percent", "percentage", "%")
_DATE_FORMATS = {"date": "%Y-%m-%d", "date-time": "%Y-%m-%dT%H:%M:%S", "time": "%H:%M:%S"}


class _Copy:
    """What the sources offer to copy, normalised; applied to each tool's argument schema. ``references`` (the
    run's documents, ``"@doc:NAME"``) are offered for every free string argument too, even where the spans are
    too many."""

    def __init__(self, sources: Sequence[str], references: Sequence[str] = (), today: dt.date | None = None,
                 max_words: int = MAX_SPAN_WORDS, results: Sequence[tuple[str, str]] = (),
                 policy: SmallModelPolicy = ON) -> None:
        self.sources = list(sources)
        self.copy_strings = policy.copy_strings
        self.copy_numbers = policy.copy_numbers
        self.references = list(references)
        self.spans = spans(self.sources, max_words=max_words, limit=MAX_SPANS) if max_words > 0 else []
        self.use_spans = 0 < len(self.spans) <= MAX_SPANS  # beyond that the grammar gets too big: strings stay free
        self.mentions = [m for text in self.sources for m in values.number_mentions(text)]
        self.all_objects = json_objects(self.sources)
        # Which tool's result each object came from: a tool is never offered its own output as input (a
        # store_invoice that was just told {"status": "success", ...} would store that).
        self.owners = {json.dumps(o, sort_keys=True): owner for owner, text in results for o in json_objects([text])}
        self.objects = self.all_objects
        self.dates = values.dates(self.sources, today)
        self.times = values.times(self.sources)
        self.date_times = values.date_times(self.sources, today) if self.dates or self.times else []
        self.codes = values.codes(self.sources)
        if self.use_spans:  # normal forms next to the words: ISO dates, 24-hour times, codes
            normal = [d.isoformat() for d in self.dates] + [t.strftime("%H:%M") for t in self.times] + [
                code for kind in ("currency", "country", "state", "language") for code in self.codes[kind]]
            self.spans += [n for n in normal if n not in self.spans]
        self.numbers = values.numbers(self.sources)
        self.claimed: set[frozenset[str]] = set()  # the units the arguments of the tool at hand are in
        self._said: set[str] | None = None  # the stems of the sources' words, once asked for
        self._codes: list[str] | None = None  # the sources' code-like words (:func:`_codes`), once asked for

    def for_tool(self, tool_name: str) -> "_Copy":
        """Offer ``tool_name`` only the objects that did not come from its own results."""
        self.objects = [o for o in self.all_objects if self.owners.get(json.dumps(o, sort_keys=True)) != tool_name]
        return self

    def definitions(self) -> dict[str, Any]:
        if not self.use_spans:
            return {}
        return {_SPAN_DEF: {"type": "string", "enum": self.spans + [r for r in self.references if r not in self.spans]}}

    # -------------------------------------------------------------------------------- one value

    def number_options(self, spec: dict[str, Any], name: str = "") -> list[int | float]:
        """The numbers this argument may take. Each one written (and its scaled value), narrowed by what the
        argument's name and description say: a percentage argument takes the percentages written, a
        fraction (or a rate) their fractions; an argument in a unit ("Weight in kilograms", ``height_m``)
        takes the numbers written with that unit, and never one written with another unit."""
        hint = f"{name.replace('_', ' ')} {spec.get('description') or ''}".lower()
        maximum = spec.get("maximum")

        def says(hints: Iterable[str]) -> bool:
            return any(re.search(rf"(?<![a-z0-9]){re.escape(h)}(?![a-z0-9])", hint) for h in hints)

        fraction = says(_FRACTION_HINTS) or (isinstance(maximum, (int, float)) and maximum <= 1)
        # "as a fraction, e.g. 0.05 for 5%": the fraction is what is asked; the % only explains it
        percent = says(_PERCENT_HINTS) and not fraction
        rate = says(_RATE_HINTS)
        units = values.units_named(name, str(spec.get("description") or ""))
        mentions = self.mentions
        if not says(("year", "years", "month", "day", "date", "hour", "minute", "minutes", "time")):
            mentions = [m for m in mentions if not m.in_date]  # "August 16, 2022" is no party of 16
        if (percent or fraction or rate) and any(m.percent for m in mentions):
            mentions = [m for m in mentions if m.percent]
        elif not (percent or fraction or rate):
            mentions = [m for m in mentions if not m.percent] or mentions  # "8%" is a rate, not an amount
        if units:
            same = [m for m in mentions if m.unit and values.unit_group(m.unit) in units]
            mentions = same or [m for m in mentions if not m.unit]
        else:  # "5 years" is no principal when another argument is in years
            mentions = [m for m in mentions if not (m.unit and values.unit_group(m.unit) in self.claimed)] or mentions
        found: list[int | float] = []
        for mention in mentions:
            if mention.percent:
                choices = [mention.value] if percent else [values.fraction(mention.value)] if (fraction or rate) else [
                    mention.value, values.fraction(mention.value)]
            else:
                choices = [mention.value] + ([mention.scaled] if mention.scaled is not None else [])
            found.extend(c for c in choices if c not in found)
        if fraction:
            found = [n for n in found if abs(n) <= 1] or found
        kind = spec.get("type")
        return [int(n) if kind == "integer" else n for n in found
                if (kind != "integer" or float(n).is_integer()) and not values.out_of_bounds(n, spec)]

    def string_options(self, spec: dict[str, Any], name: str = "", identifier_only: bool = False) -> list[str] | None:
        """The strings this argument may take (None: the shared span list, unfiltered). An identifier
        (``order_id``, "Order ID") takes the single words of three characters or more with a digit in them
        when the sources have some ("PX-1042" of "parcel PX-1042"; not the "12" of "12 Baker Street"), and
        of those the ones with letters too when there are such; with ``identifier_only``, none but those."""
        fmt = spec.get("format")
        if self.takes_a_code(spec, name):
            if self._codes is None:
                self._codes = list(dict.fromkeys(code for text in self.sources for code in _codes(text)))
            codes = self._codes
            lettered = [s for s in codes if any(c.isalpha() for c in s)]
            if codes:
                return [o for o in lettered or codes if not schema_errors(o, spec)]
            if identifier_only:
                return []
        if fmt in _DATE_FORMATS:
            by_format: dict[str, list[Any]] = {"date": self.dates, "time": self.times, "date-time": self.date_times}
            moments = by_format[fmt]
            options = [m.strftime(_DATE_FORMATS[fmt]) for m in moments]
        elif fmt == "email":
            options = [s for s in self.spans if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", s)] if self.use_spans else []
        elif fmt in ("uri", "url"):
            options = [s for s in self.spans if re.match(r"[a-z][a-z0-9+.-]*://\S+$", s)] if self.use_spans else []
        elif not self.use_spans:
            return []
        elif not {"pattern", "minLength"} & set(spec) and spec.get("maxLength", DEFAULT_MAX_STRING) >= DEFAULT_MAX_STRING:
            return None
        else:
            options = list(self.spans)
        return [o for o in options if not schema_errors(o, {k: v for k, v in spec.items() if k != "format"})]

    def value(self, spec: dict[str, Any], name: str = "") -> dict[str, Any]:
        kind = spec.get("type")
        if "enum" in spec or "const" in spec:
            return spec
        if kind == "string" and self.copy_strings:
            if self.references and _takes_a_document(name, spec):
                # The run carries documents and this argument is one: the model chooses which, never retypes
                # it (a tiny model otherwise copies a few words of the request as the "document").
                return {"type": "string", "enum": list(self.references)}
            options = self.string_options(spec, name)
            if options is None:
                return {"$ref": f"#/$defs/{_SPAN_DEF}"}
            refs = [] if {"pattern", "format"} & set(spec) else [r for r in self.references if r not in options]
            if options:
                return {"type": "string", "enum": options + refs}
            if refs:
                return {"anyOf": [{"type": "string", "enum": refs}, _grammar_safe(spec)]}
            return _grammar_safe(spec)
        if kind in ("number", "integer") and self.copy_numbers:
            numbers = self.number_options(spec, name)
            if numbers:
                return {"type": kind, "enum": numbers}
        if kind == "array" and isinstance(spec.get("items"), dict):
            return {**spec, "items": self.value(spec["items"], name)}
        if kind == "object" and isinstance(spec.get("properties"), dict):
            return self.arguments(spec)
        if _free_form_object(spec) and self.objects:
            return {"enum": self.objects}
        if _keyed_object(spec) and (spec.get("minProperties") or 0) >= 1:
            return self.keyed(spec)
        for key in ("anyOf", "oneOf"):
            if key in spec:
                return {**spec, key: [self.value(option, name) for option in spec[key]]}
        return _grammar_safe(spec) if kind == "string" else spec

    def keyed(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A map that needs at least one entry (``minProperties``, which llama.cpp's grammars cannot say):
        one branch per key the sources offer (their words), each requiring that key."""
        keys: list[str] = []
        for number, text in enumerate(self.sources[:1] + self.sources[-1:]):
            for index, word in enumerate(text.split()):
                if number == 0 and index == 0:
                    continue  # the request's verb
                bare = word.strip(_TRAILING + _LEADING + "’‘“”")
                if re.fullmatch(r"[A-Za-z][\w-]{1,40}", bare) and bare.lower() not in _LINKS | _ARTICLES \
                        and bare not in keys:
                    keys.append(bare)
        extra = spec.get("additionalProperties")
        entry = extra if isinstance(extra, dict) else {}
        if not keys:
            return spec
        return {"anyOf": [{"type": "object", "properties": {key: entry}, "required": [key],
                           "additionalProperties": extra if extra is not None else True} for key in keys[:MAX_KEYS]]}

    def missing(self, schema: dict[str, Any]) -> list[str]:
        """The required arguments of ``schema`` the sources hold no value for, where a guess would be an
        invented value: a number with no number written, a date or time with none written, an identifier
        with no code-like word (:meth:`string_options`)."""
        properties = schema.get("properties") or {}
        out = []
        for name in schema.get("required") or []:
            spec = properties.get(name)
            if not isinstance(spec, dict) or "enum" in spec or "const" in spec or "default" in spec:
                continue
            kind = spec.get("type")
            if kind in ("number", "integer") and self.copy_numbers and not self.number_options(spec, name):
                out.append(name)
            elif kind == "string" and spec.get("format") in _DATE_FORMATS and not self.string_options(spec, name):
                out.append(name)
            elif kind == "string" and self.takes_a_code(spec, name) and not self.string_options(spec, name, True):
                out.append(name)
        return out

    def takes_a_code(self, spec: dict[str, Any], name: str) -> bool:
        """Whether a string argument is an identifier whose value is one of the sources' code-like words: the
        spans are in use, and no format, pattern or enum says what it takes."""
        return self.use_spans and not spec.get("format") and not {"pattern", "enum"} & set(spec) \
            and _identifier(name, spec)

    def names(self, argument: str) -> bool:
        """Whether the sources name the thing an argument is about: a word of its name past a leading verb
        (``include_history``: "history"; ``child_seat``: "child" or "seat")."""
        words = [w for w in routing.content_words(argument) if w not in _SWITCH_VERBS]
        if self._said is None:
            self._said = {routing.stem(w) for text in self.sources for w in routing.content_words(text)}
        return any(routing.stem(w) in self._said for w in words)

    def arguments(self, schema: dict[str, Any]) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return schema
        outer, self.claimed = self.claimed, set().union(*(
            values.units_named(name, str(spec.get("description") or "")) for name, spec in properties.items()
            if isinstance(spec, dict) and _numeric(spec)))
        try:
            return self._arguments(schema, properties)
        finally:
            self.claimed = outer

    def _arguments(self, schema: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
        required = set(schema.get("required") or [])
        copied: dict[str, Any] = {}
        numeric = [name for name, spec in properties.items() if _numeric(spec)]
        for name, spec in properties.items():
            if name not in required and _numeric(spec) and isinstance(spec, dict):
                number = next((o for o in spec.get("anyOf") or spec.get("oneOf") or [spec]
                               if isinstance(o, dict) and o.get("type") in ("number", "integer")), spec)
                options = self.number_options(number, name)
                if not options:
                    continue  # nothing to copy: an optional number keeps its default
                units = values.units_named(name, str(number.get("description") or ""))
                if numeric == [name] or any(m.unit and values.unit_group(m.unit) in units for m in self.mentions):
                    required.add(name)  # the tool's one number, or one written in its unit: never left out
            form = _written_form(spec)
            if form is not None and name not in required and (form[0] == "format" or self.use_spans) \
                    and not self.string_options(spec, name):
                continue  # a date, time or code nobody wrote keeps its default, never an invented one
            if name not in required and _boolean(spec) and not self.names(name):
                continue  # a switch the request never mentions keeps its default
            if _boolean(spec) and self.names(name):
                required.add(name)  # "with its full history", "without a child seat": said, so never left out
            copied[name] = self.value(spec, name) if isinstance(spec, dict) else spec
        # A date, time or code the sources write in an optional argument's form ("in Swiss francs": CHF) is
        # never left out, when they write one for every argument in that form.
        forms: dict[tuple[str, str], list[str]] = {}
        for name in copied:
            if name in properties and (form := _written_form(properties[name])) is not None:
                forms.setdefault(form, []).append(name)
        for (kind, _), names in forms.items():
            written = {o for name in names for o in self.string_options(properties[name], name) or []}
            # a loose pattern ("^[\w ]+$") that many spans match says nothing about what was meant
            if len(written) >= len(names) and (kind == "format" or len(written) <= 2 * len(names) + 2):
                required.update(names)
        # enum values the sources mention, when they mention one for every argument sharing that enum
        groups: dict[tuple, list[str]] = {}
        for name, spec in copied.items():
            if isinstance(spec, dict) and isinstance(spec.get("enum"), list) and name in properties \
                    and "enum" in properties[name]:
                groups.setdefault(tuple(json.dumps(v) for v in spec["enum"]), []).append(name)
        for key, names in groups.items():
            hits = _mentioned([json.loads(v) for v in key], self.sources, self.codes)
            if len(hits) >= len(names):
                for name in names:
                    copied[name] = {**copied[name], "enum": hits}
                    required.add(name)  # a value the request names is never left out
                for name, value in _source_and_target(names, hits, self.sources).items():
                    copied[name] = {**copied[name], "enum": [value]}
            elif not hits:
                for name in names:
                    if name not in required:
                        del copied[name]  # nothing mentioned: the argument keeps its default
        narrowed = {**schema, "properties": copied}
        if required:
            narrowed["required"] = [name for name in copied if name in required]
        return narrowed


MAX_KEYS = 40
_TARGET_NAME = re.compile(r"(?:^|_)(?:to|target|dest|destination|into|output)(?:_|$)")
_SOURCE_NAME = re.compile(r"(?:^|_)(?:from|source|src|base|origin|input)(?:_|$)")


def _source_and_target(names: Sequence[str], hits: Sequence[Any], sources: Sequence[str]) -> dict[str, Any]:
    """For a from/to pair of arguments sharing an enum (``from_unit``/``to_unit``, ``base``/``target``) with
    two values mentioned: the value written after "to", "into" or "in" is the target, the other the source
    ("100 degrees Fahrenheit to Celsius", "300 kelvin in celsius"). Empty when the text does not say."""
    if len(names) != 2 or len(hits) != 2:
        return {}
    target = next((n for n in names if _TARGET_NAME.search(n)), None)
    source = next((n for n in names if _SOURCE_NAME.search(n)), None)
    if target is None or source is None or target == source:
        return {}
    text = " ".join(sources[:1]).lower()
    after_to = [h for h in hits if isinstance(h, str) and re.search(
        rf"\b(?:to|into|in)\s+(?:\w+\s+)?{re.escape(h.lower().replace('_', ' '))}", text)]
    if len(after_to) != 1:
        return {}
    return {target: after_to[0], source: next(h for h in hits if h != after_to[0])}



# llama.cpp's JSON-schema converter copies a pattern's escapes into GBNF string literals, whose parser knows only
# these; any other (\d, \., ...) makes the grammar unparsable, and llama.cpp (LM Studio, gateway-model) fails
# the request or goes down with it.
_GBNF_ESCAPES = frozenset('nrt\\"')
_CLASS_ESCAPES = {"d": "[0-9]", "w": "[A-Za-z0-9_]", "s": r"[ \t\n\r]"}
_PUNCTUATION = frozenset(".-+*?()[]{}|^$/:,@#&%!=<>~'`;")


def gbnf_pattern(pattern: str) -> str | None:
    r"""``pattern`` written with what llama.cpp's converter can compile: ``\d``, ``\w`` and ``\s`` as character
    classes, an escaped punctuation mark as a one-character class; None when it holds another escape."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
        if nxt in _CLASS_ESCAPES:
            out.append(_CLASS_ESCAPES[nxt])
        elif nxt and nxt in _PUNCTUATION:
            out.append("[\\" + nxt + "]" if nxt in "]^\\-" else f"[{nxt}]")
        elif nxt and nxt in _GBNF_ESCAPES:
            out.append("\\" + nxt)
        else:
            return None
        i += 2
    return "".join(out)


_DOCUMENT_WORDS = frozenset({"document", "documents", "text", "content", "contents", "body", "file", "invoice",
                             "report", "article", "transcript", "email", "letter", "page", "source"})


def _takes_a_document(name: str, spec: dict[str, Any]) -> bool:
    """Whether a free string argument is meant to hold a whole document (its name or description says text,
    document, content, body, ...), so that a run's documents go to it by reference."""
    if {"pattern", "format", "enum", "const"} & set(spec):
        return False
    words = set(re.findall(r"[a-z]+", f"{name.replace('_', ' ')} {spec.get('description') or ''}".lower()))
    return bool(words & _DOCUMENT_WORDS)


def _grammar_safe(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` as llama.cpp's converter can compile it: a ``pattern`` must be anchored (``^...$``) and written
    with escapes it knows (:func:`gbnf_pattern`); one that is not is left to the tool's validation."""
    pattern = spec.get("pattern")
    if not isinstance(pattern, str):
        return spec
    safe = gbnf_pattern(pattern)
    if safe is None or not (pattern.startswith("^") and pattern.endswith("$")):
        return {k: v for k, v in spec.items() if k != "pattern"}
    return {**spec, "pattern": safe}


def _keyed_object(spec: Any) -> bool:
    """A map with a declared value type (``dict[str, str]``) and no named properties."""
    return (isinstance(spec, dict) and spec.get("type") == "object" and not spec.get("properties")
            and "additionalProperties" in spec and spec["additionalProperties"] is not False)


def _needs_object(arguments: dict[str, Any]) -> bool:
    """True when a required argument is a free-form object (``dict``): a tiny model can only invent one."""
    properties = arguments.get("properties") or {}
    return any(_free_form_object(properties.get(name)) for name in arguments.get("required") or [])


def _free_form_object(spec: Any) -> bool:
    """An object schema with no declared shape (a plain ``dict`` argument)."""
    return (isinstance(spec, dict) and spec.get("type") == "object" and not spec.get("properties")
            and "additionalProperties" not in spec)


_SWITCH_VERBS = frozenset({"include", "is", "has", "use", "enable", "allow", "with", "add", "send", "notify",
                           "show", "only", "require", "want", "need", "keep"})


# The leading verbs of update tools (``routing.leading_verb`` reads "change", "modify", "edit" as "update").
_CHANGE_VERBS = frozenset({"update", "set", "reschedule", "rename", "move", "patch"})


def _with_a_change(tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """An update tool's arguments (``update_order``, ``reschedule_visit``) with at least one of the optional
    ones: an update that names only what to update changes nothing (a tiny model otherwise stops after the
    ID). One branch per optional argument, each requiring it."""
    verb = routing.leading_verb(tool.name)
    properties = arguments.get("properties") or {}
    required = list(arguments.get("required") or [])
    optional = [name for name in properties if name not in required]
    if verb not in _CHANGE_VERBS or not optional or not required or len(optional) > 8:
        return arguments
    return {"anyOf": [{**arguments, "required": [n for n in properties if n in required or n == choice]}
                      for choice in optional]}


def _written_form(spec: Any) -> tuple[str, str] | None:
    """The form a string argument's value is written in: its date/time ``format`` or its ``pattern``."""
    if not isinstance(spec, dict) or spec.get("type") != "string" or "enum" in spec:
        return None
    if spec.get("format") in _DATE_FORMATS:
        return ("format", spec["format"])
    if isinstance(spec.get("pattern"), str):
        return ("pattern", spec["pattern"])
    return None


def _bare_code(word: str) -> str:
    return word.strip(_TRAILING + _LEADING + "’‘“”")


_QUANTITY_WORDS = frozenset({"for", "of", "at", "to", "by", "over", "under", "about", "around", "than", "from",
                             "in", "on", "until", "since", "before", "after", "is", "was", "costs", "cost"})
_MOMENT = re.compile(r"\d{1,4}[-/:.]\d{1,2}(?:[-/:.]\d{1,4})?")


def _codes(text: str) -> list[str]:
    """The words of ``text`` that read as identifiers: three characters or more, with a digit; a bare number
    only when it is not a date or time ("2027" of "May 10, 2027") and does not follow a word that makes it a
    quantity ("for 1140000"), as "order 12345" does not."""
    words = text.split()
    out: list[str] = []
    dated: set[str] | None = None
    for index, raw in enumerate(words):
        word = _bare_code(raw).lstrip("#")  # "#88231": the number is the identifier
        if len(word) < 3 or not any(c.isdigit() for c in word) or _MOMENT.fullmatch(word):
            continue
        if not any(c.isalpha() for c in word):
            before = _bare_code(words[index - 1]).lower() if index else ""
            if dated is None:
                dated = {str(m.value) for m in values.number_mentions(text) if m.in_date}
            if before in _QUANTITY_WORDS or before.isdigit() or raw.endswith(",") and index + 1 < len(words) \
                    and _bare_code(words[index + 1]).isdigit() or word in dated:
                continue
        out.append(word)
    return out


def _identifier(name: str, spec: dict[str, Any]) -> bool:
    """Whether an argument is an identifier: its name is ``id`` or ends so (``order_id``, ``orderId``), or its
    description calls it one."""
    if re.search(r"(?:^|_)id$|[a-z]Id$|ID$", name) or name.lower() == "id":
        return True
    return bool(re.search(r"\b(?:ID|identifier)\b", str(spec.get("description") or "")))


def _boolean(spec: Any) -> bool:
    if not isinstance(spec, dict):
        return False
    options = spec.get("anyOf") or spec.get("oneOf") or [spec]
    kinds = {o.get("type") for o in options if isinstance(o, dict)}
    return "boolean" in kinds and kinds <= {"boolean", "null"}


def _numeric(spec: Any) -> bool:
    if not isinstance(spec, dict):
        return False
    options = spec.get("anyOf") or spec.get("oneOf") or [spec]
    return any(isinstance(o, dict) and o.get("type") in ("number", "integer") for o in options)


# ---------------------------------------------------------------------------------------------- schema


def answer_schema(max_length: int = DEFAULT_MAX_ANSWER) -> dict[str, Any]:
    """The "answer without a tool" branch: ``{"type": "answer", "answer": "<words>"}``."""
    return {
        "type": "object",
        "properties": {TOPIC_KEY: {"const": ANSWER_TOPIC},
                       ANSWER_KEY: {"type": "string", "minLength": 1, "maxLength": max_length}},
        "required": [TOPIC_KEY, ANSWER_KEY],
        "additionalProperties": False,
    }


def related(request: str, tools: Iterable[Tool]) -> bool:
    """True when the request shares a content word with an offered tool (:func:`routing.shares_words`)."""
    return routing.shares_words(request, callable_tools(tools))


def answer_offered(tools: Sequence[Tool], context: RoundContext, policy: SmallModelPolicy = ON) -> bool:
    """Whether this round's grammar offers the answer in words. On the first round, as the policy's
    ``answer_first_round`` says ("unrelated": only for a request that shares no word with any tool; the base
    SmolLM2-135M otherwise answers in words for most requests a tool fits: docs/readme/eval.md, "Lever 1,
    round 2"); afterwards always, but right after a successful call while the plan has a step left ("find
    ..., then cancel the first one": the cancel is still to do)."""
    if not context.first:
        return not (policy.hold_answer_mid_plan and context.just_succeeded and context.step_pending)
    if policy.answer_first_round == "always":
        return True
    return context.request is None or not related(context.request, tools)


def listed_tools(tools: Sequence[Tool], context: RoundContext | None = None,
                 policy: SmallModelPolicy = ON) -> list[Tool]:
    """The callable tools the system prompt lists: with the policy's ``route``, those a step of the plan names
    (all when it names none)."""
    callable_ = callable_tools(tools)
    if not policy.route or context is None or not context.plan:
        return callable_
    return [t for t in callable_ if t.name in context.plan.tool_names] or callable_


def round_tools(tools: Sequence[Tool], context: RoundContext, policy: SmallModelPolicy = ON) -> list[Tool]:
    """The tools this round's grammar lets the model call, among those listed (:func:`listed_tools`): with the
    policy's ``route``, the plan's current step's tools; once every step is done, those that have not yet
    succeeded (nothing is done twice; an empty list leaves only the answer)."""
    listed = listed_tools(tools, context, policy)
    if not policy.route or not context.plan:
        return listed
    step = context.plan.next_step(context.succeeded)
    if step is None:
        return [t for t in listed if t.name not in context.succeeded]
    return [t for t in listed if t.name in step.tools] or listed


def callable_tools(tools: Iterable[Tool]) -> list[Tool]:
    """The tools this mode lists and lets the model call: all but the built-in final-answer tool, whose
    place the answer branch takes."""
    return [t for t in tools if not (t.terminal and t.name == BUILTIN_FINAL_TOOL)]


def call_schema(tools: Iterable[Tool], sources: Sequence[str] = (), references: Sequence[str] = (), *,
                answer: bool = True, leave_out_unfilled: bool = False, results: Sequence[tuple[str, str]] = (),
                policy: SmallModelPolicy = ON) -> dict[str, Any]:
    """The JSON schema of one reply (:func:`_call_schema`), kept inside the grammar bounds: when the copied
    values make it too large, spans get shorter (24, 8, 4 words), and at last strings are left free. With
    ``leave_out_unfilled``, the tools :func:`unfilled` names are left out, and with none left, the answer is
    offered (the model can ask for what is missing)."""
    tools = list(tools)
    schema: dict[str, Any] = {}
    skipped: set[str] = set()
    for max_words in (MAX_SPAN_WORDS, 8, 4, 0):
        copy = _Copy(sources, references, max_words=max_words, results=results, policy=policy) \
            if sources or references else None
        if leave_out_unfilled and max_words == MAX_SPAN_WORDS and sources and copy is not None:
            skipped = set(_unfilled(tools, copy))
        schema = _call_schema([t for t in tools if t.name not in skipped], copy,
                              answer=answer or bool(skipped) and all(t.name in skipped for t in callable_tools(tools)))
        if not sources or schema_problem(schema) is None:
            return schema
    return schema


def unfilled(tools: Iterable[Tool], sources: Sequence[str], references: Sequence[str] = ()) -> list[str]:
    """The names of the tools whose required values ``sources`` do not hold (:meth:`_Copy.missing`): a
    number, date, time or identifier the model could only invent."""
    return _unfilled(tools, _Copy(sources, references)) if sources else []


def _unfilled(tools: Iterable[Tool], copy: _Copy) -> list[str]:
    return [t.name for t in callable_tools(tools) if not t.terminal and copy.missing(t.parameters or {})]


def _call_schema(tools: Iterable[Tool], copy: _Copy | None = None, *, answer: bool = True) -> dict[str, Any]:
    """The JSON schema of one reply: a call to any of ``tools`` (topic, name, then that tool's own arguments,
    with values copied as ``copy`` offers them, from the sources and the documents' references; see the module
    docstring), or, with ``answer``, an answer in words (:func:`answer_schema`). With no tools left, only the
    answer."""
    variants, waiting = [], []
    for tool in callable_tools(tools):
        arguments = bounded(tool.parameters or {"type": "object", "properties": {}})
        arguments.setdefault("type", "object")
        if copy is not None and not tool.terminal:
            if not copy.for_tool(tool.name).objects and _needs_object(arguments):
                waiting.append(tool)  # its data must come from somewhere: a later round, once a tool returns it
                continue
            arguments = _with_a_change(tool, copy.arguments(arguments))
        variants.append({
            "type": "object",
            "properties": {TOPIC_KEY: {"const": topic(tool)}, NAME_KEY: {"const": tool.name}, ARGUMENTS_KEY: arguments},
            "required": [TOPIC_KEY, NAME_KEY, ARGUMENTS_KEY],
            "additionalProperties": False,
        })
    if not variants and waiting:  # no other tool to call: the waiting tools stay free
        variants = _call_schema(waiting, answer=False).get("anyOf") or [_call_schema(waiting, answer=False)]
    if answer:
        variants.append(answer_schema())
    if not variants:
        raise ValueError("a constrained call needs at least one tool, or the answer")
    schema = variants[0] if len(variants) == 1 else {"anyOf": variants}
    definitions = copy.definitions() if copy is not None else {}
    return {**schema, "$defs": definitions} if definitions else schema


def response_format(tools: Iterable[Tool], sources: Sequence[str] = (), references: Sequence[str] = (), *,
                    answer: bool = True, leave_out_unfilled: bool = False, results: Sequence[tuple[str, str]] = (),
                    policy: SmallModelPolicy = ON) -> dict[str, Any]:
    """``response_format`` in the OpenAI/LM Studio ``json_schema`` form (:func:`call_schema`)."""
    return {"type": "json_schema", "json_schema": {"name": "tool_call", "strict": True, "schema": call_schema(
        tools, sources, references, answer=answer, leave_out_unfilled=leave_out_unfilled, results=results,
        policy=policy)}}


def format_call(tool: Tool, arguments: Mapping[str, Any]) -> str:
    """A call as the constrained model writes it (training data for fine-tuning uses exactly this)."""
    return json.dumps({TOPIC_KEY: topic(tool), NAME_KEY: tool.name, ARGUMENTS_KEY: dict(arguments)},
                      ensure_ascii=False)


def format_answer(text: str) -> str:
    """An answer without a tool call, as the constrained model writes it (training data uses exactly this)."""
    return json.dumps({TOPIC_KEY: ANSWER_TOPIC, ANSWER_KEY: text}, ensure_ascii=False)


def format_result(tool_name: str, content: str) -> str:
    """The text of the message that carries a tool's result (or ``Error: ...``) back to the model."""
    return f"Result of {tool_name}: {content}"


def read_answer(content: str | None) -> str | None:
    """The words of an answer-branch reply (:func:`format_answer`); None when ``content`` is not one."""
    if not content:
        return None
    try:
        value = json.loads(content)
    except ValueError:
        return None
    if isinstance(value, dict) and NAME_KEY not in value and isinstance(value.get(ANSWER_KEY), str) \
            and value.get(TOPIC_KEY, ANSWER_TOPIC) == ANSWER_TOPIC:
        return value[ANSWER_KEY].strip()
    return None


# ---------------------------------------------------------------------------------------------- prompt


def _placeholder(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return "..."
    if spec.get("default") is not None:
        return spec["default"]  # "max_results": 1 in the example primed the model to write 1
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


def describe_tools(tools: Iterable[Tool], *, answer: bool = True) -> str:
    """Each tool as its one-line description, then the exact shape of a call to it; with ``answer``, the
    answer branch last, in the same form."""
    blocks = []
    for tool in callable_tools(tools):
        properties = (tool.parameters or {}).get("properties") or {}
        example = {name: _placeholder(spec) for name, spec in properties.items()}
        call = json.dumps({TOPIC_KEY: topic(tool), NAME_KEY: tool.name, ARGUMENTS_KEY: example}, ensure_ascii=False)
        blocks.append(f"{_summary(tool)}\n{call}")
    if answer:
        blocks.append(f"{ANSWER_SUMMARY}\n{format_answer('...')}")
    return "\n\n".join(blocks)


SYSTEM_PROMPT = """Tools, each with what it does and the shape of a call:

{tools}

Reply with one JSON object: a call to the tool that fits the request, or an answer. Copy values from the request exactly."""

ANSWER_ONLY_PROMPT = """Reply to the user in words, as one JSON object:
{answer}"""


def system_prompt(tools: Iterable[Tool]) -> str:
    """The constrained mode's part of the system prompt; with no tools (a run's last round), the answer only."""
    tools = list(tools)
    if not callable_tools(tools):
        return ANSWER_ONLY_PROMPT.format(answer=format_answer("..."))
    return SYSTEM_PROMPT.format(tools=describe_tools(tools))
