"""Which values each argument of a tool may take in the constrained grammar: copied from the conversation,
never invented (:class:`_Copy`).

A free string must be a span of words from the sources, a number one that appears there, an enum value one
the sources mention (when they mention enough of them; an optional enum argument is then required, and left
out when they mention none), a free-form object one of the JSON objects in the sources; an optional number
with nothing to copy is left to its default. Small models otherwise "correct" values they should copy (Prague
becomes Czechoslovakia). An identifier argument takes the code-like words of the sources, and an optional
switch the request never mentions keeps its default. The run's documents ("@doc:NAME") are offered for
string arguments, and are the only choice for an argument that takes a whole document.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from collections.abc import Iterable, Sequence

from ..grammar_bounds import DEFAULT_MAX_STRING, gbnf_pattern
from ..schema import validate as schema_errors
from . import lexicon, routing, values
from ..policy import SmallModelPolicy
from .sources import (
    _ARTICLES, _LEADING, _LINKS, _TRAILING, MAX_KEYS, MAX_SPAN_WORDS, MAX_SPANS, _bare_code, _codes, _mentioned,
    _source_and_target, json_objects, spans,
)

ON = SmallModelPolicy()

_SPAN_DEF = "copied_text"


# Measured switches (docs/readme/eval.md, "Lever 1, round 2"): a value the model writes itself is let
# through for numbers / strings (still checked against the schema), instead of only copied ones.
_FRACTION_HINTS = lexicon.FRACTION_HINTS


_RATE_HINTS = lexicon.RATE_HINTS


_PERCENT_HINTS = lexicon.PERCENT_HINTS


_DATE_FORMATS = {"date": "%Y-%m-%d", "date-time": "%Y-%m-%dT%H:%M:%S", "time": "%H:%M:%S"}


class _Copy:
    """What the sources offer to copy, normalised; applied to each tool's argument schema. ``references`` (the
    run's documents, ``"@doc:NAME"``) are offered for every free string argument too, even where the spans are
    too many."""

    def __init__(self, sources: Sequence[str], references: Sequence[str] = (), today: dt.date | None = None,
                 max_words: int = MAX_SPAN_WORDS, results: Sequence[tuple[str, str]] = (),
                 policy: SmallModelPolicy = ON, asked: Sequence[str] | None = None) -> None:
        self.sources = list(sources)
        # What was asked (the request, the plan's current step): an enum value it names wins over one that a
        # tool's result only reports ("give them the gold tier" after a lookup that said "bronze").
        self.asked = list(asked) if asked is not None else self.sources[:1]
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

    def for_tool(self, tool_name: str) -> _Copy:
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
        shape = value_shape(name, spec)
        if shape is not None:
            pattern = _SHAPES[shape]
            found = [w for text in self.sources for raw in text.split()
                     if pattern.fullmatch(w := re.sub(r"['’]s$", "", _bare_code(raw)))]
            return [o for o in dict.fromkeys(found) if not schema_errors(o, {k: v for k, v in spec.items() if k != "format"})]
        if self.takes_a_code(spec, name):
            if self._codes is None:
                self._codes = list(dict.fromkeys(code for text in self.sources for code in _codes(text)))
            codes = self._codes
            if codes:
                return [o for o in codes if not schema_errors(o, spec)]
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
            if kind in ("number", "integer") and self.copy_numbers and not self.number_options(spec, name) or kind == "string" and (spec.get("format") in _DATE_FORMATS or value_shape(name, spec)) \
                    and not self.string_options(spec, name) or kind == "string" and self.takes_a_code(spec, name) and not self.string_options(spec, name, True):
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
        groups: dict[tuple[Any, ...], list[str]] = {}
        for name, spec in copied.items():
            if isinstance(spec, dict) and isinstance(spec.get("enum"), list) and name in properties \
                    and "enum" in properties[name]:
                groups.setdefault(tuple(json.dumps(v) for v in spec["enum"]), []).append(name)
        for key, names in groups.items():
            options = [json.loads(v) for v in key]
            hits = _mentioned(options, self.asked) if self.asked else []
            if len(hits) < len(names):
                hits = _mentioned(options, self.sources, self.codes)
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


_DOCUMENT_WORDS = lexicon.DOCUMENT_WORDS


_SHAPES = {
    "email": re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}"),
    "uri": re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+"),
    "uuid": re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
}
_SHAPE_FORMATS = {"email": "email", "idn-email": "email", "uri": "uri", "url": "uri", "iri": "uri", "uuid": "uuid"}


def value_shape(name: str, spec: dict[str, Any]) -> str | None:
    """The shape a string argument's value must have, when its ``format``, name or description says one: an
    e-mail address, a URL or a UUID (``email``, ``uri``, ``uuid``). Such an argument takes only the words of
    that shape the sources write (a currency code is no e-mail address), and with none written, the tool waits."""
    fmt = spec.get("format")
    if isinstance(fmt, str) and fmt in _SHAPE_FORMATS:
        return _SHAPE_FORMATS[fmt]
    if fmt or {"enum", "const", "pattern"} & set(spec):
        return None
    said = f"{name.replace('_', ' ')} {spec.get('description') or ''}".lower().replace("e-mail", "email")
    words = set(re.findall(r"[a-z]+", said))
    return next((shape for shape, hints in lexicon.SHAPE_WORDS.items() if words & hints), None)


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


_SWITCH_VERBS = lexicon.SWITCH_VERBS


def _written_form(spec: Any) -> tuple[str, str] | None:
    """The form a string argument's value is written in: its date/time ``format`` or its ``pattern``."""
    if not isinstance(spec, dict) or spec.get("type") != "string" or "enum" in spec:
        return None
    if spec.get("format") in _DATE_FORMATS:
        return ("format", spec["format"])
    if isinstance(spec.get("pattern"), str):
        return ("pattern", spec["pattern"])
    return None


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
