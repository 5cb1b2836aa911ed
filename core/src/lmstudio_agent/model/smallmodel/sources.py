"""What a conversation offers to copy into a call: the texts to copy from, spans of their words that read as
values, the numbers, JSON objects and identifiers written in them, and the enum values they mention.

Pure functions of text (the core also runs under Pyodide).
"""

from __future__ import annotations

import json
import re
from typing import Any
from collections.abc import Iterable, Mapping, Sequence

from ..grammar_bounds import DEFAULT_MAX_STRING
from . import lexicon, routing, values
from .wire import NOTE_KEY

MAX_SPAN_WORDS = 24


MAX_SPANS = 1500


COPY_RECENT = 6


_WORD = re.compile(r"\S+")


_LEADING = "'\"([{<"


_CLOSING = "'\")]}>"


_TRAILING = ".,;:!?" + _CLOSING


def copy_sources(messages: Iterable[Mapping[str, Any]], recent: int = COPY_RECENT) -> list[str]:
    """The texts argument values may be copied from, in order: the content of the first user message (the
    request) and of the last ``recent`` user and tool messages (the latest results). Bounded, so a round
    costs the same however long the conversation has grown.

    Args:
        messages: The conversation's messages (the agent's own notes are left out).
        recent: How many of the latest user and tool messages to take after the request.
    """
    texts = [m["content"] for m in messages
             if m.get("role") in ("user", "tool") and isinstance(m.get("content"), str) and m["content"].strip()
             and not m.get(NOTE_KEY)]
    return texts if len(texts) <= recent + 1 else [texts[0], *texts[-recent:]]


# Words a copied value never ends with, and (but for articles and possessives) never starts with: a value is
# "Buenos Aires" or "the plants", not "in Buenos" or "plants at".
_ARTICLES = lexicon.ARTICLES


_LINKS = lexicon.LINKS


# Lowercase words inside a capitalised name ("Rio de Janeiro", "Bank of America").
_NAME_LINKS = lexicon.NAME_LINKS


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
    as there are more than ``limit`` (a long document would otherwise cost a second a round).

    Args:
        sources: The texts to take spans from.
        max_words: The most words in a span.
        max_length: The longest span, in characters.
        limit: Stop once there are more spans than this (None: no limit).
    """
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
    and the fraction (:func:`values.numbers`).

    Args:
        sources: The texts to read.
    """
    return values.numbers(sources)


def json_objects(sources: Sequence[str]) -> list[dict[str, Any]]:
    """The JSON objects written in the sources (a tool's result, or data pasted into a request).

    Args:
        sources: The texts to read.
    """
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


def _bare_code(word: str) -> str:
    return word.strip(_TRAILING + _LEADING + "’‘“”")


_QUANTITY_WORDS = lexicon.QUANTITY_WORDS


_MOMENT = re.compile(r"\d{1,4}[-/:.]\d{1,2}(?:[-/:.]\d{1,4})?")


_JOINED = re.compile(r"[A-Za-z0-9]+(?:[-_.:/@+][A-Za-z0-9]+)+")


def code_like(word: str) -> bool:
    """Whether a word reads as an identifier rather than as a word of the language: three characters or more,
    and a digit in it ("A-1042", "88231", a UUID), or parts joined by punctuation ("spring-fair-2",
    "ada@example.org", "north_gate"), or a capital after a small letter ("eBike9", "gitHub").

    Args:
        word: One word as written.
    """
    if len(word) < 3:
        return False
    return any(c.isdigit() for c in word) or bool(_JOINED.fullmatch(word)) or bool(re.search(r"[a-z][A-Z]", word))


def _codes(text: str) -> list[str]:
    """The words of ``text`` that read as identifiers (:func:`code_like`); a bare number only when it is not a
    date or time ("2027" of "May 10, 2027") and does not follow a word that makes it a quantity ("for 30",
    "over 200"), as "order 12345" does not."""
    words = text.split()
    out: list[str] = []
    dated: set[str] | None = None
    for index, raw in enumerate(words):
        word = _bare_code(raw).lstrip("#")  # "#88231": the number is the identifier
        if not code_like(word) or _MOMENT.fullmatch(word) or values.number_mentions(word) and not any(
                c.isdigit() for c in word):
            continue
        if any(c.isdigit() for c in word) and re.fullmatch(r"[\d.,]+", word):
            before = _bare_code(words[index - 1]).lower() if index else ""
            if dated is None:
                dated = {str(m.value) for m in values.number_mentions(text) if m.in_date}
            if before in _QUANTITY_WORDS or before.isdigit() or raw.endswith(",") and index + 1 < len(words) \
                    and _bare_code(words[index + 1]).isdigit() or word in dated:
                continue
        out.append(word)
    return out
