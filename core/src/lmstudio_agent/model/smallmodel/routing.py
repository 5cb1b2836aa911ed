"""Which offered tools a request is about, by the words they share: a lexical prior for very small models.

A 135M model picks the right tool's arguments far more often than it picks the right tool among near
neighbours (``get_X_details``, ``update_X``, ``cancel_X``). The words of the request usually settle it: the
constrained mode's system prompt lists only the tools some step of the request names (:func:`named`), and
each round's grammar offers only those the current step names (:func:`shortlist`).

Relevance is a small TF-IDF over the offered tools only: a request word scores when a tool's name (twice)
or description (once) has it, weighted by how few of the offered tools do, so the words that tell the
tools apart (the verb, when every tool is about the same thing) count most. Words are compared by stem,
and a few everyday verbs by meaning (``change`` is ``update``). When no word tells the tools apart, every
tool stays offered and the model decides alone.

A request of several steps ("find the cheapest flight, then book it", "extract the data and store it") is
split at its sequencing words, and at an "and" before the verb an offered tool's name starts with; the round
after n successful calls is routed by step n+1. Once every step has had its call, a tool that succeeded is
not offered again: a small model otherwise repeats its last call instead of answering.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ...agent.tools import Tool
from . import lexicon

# A tool that scores this much more than the next is the only one offered; tools within it of the best
# stay offered together (measured on the unseen-tool split: docs/readme/eval.md, "Round 2").
MARGIN = 1.0

PLAIN_WORDS = lexicon.PLAIN_WORDS

# Everyday verbs that mean one action a tool name says otherwise; only unambiguous ones ("show" and "look"
# can mean a search or a lookup, so they are left alone).
SYNONYMS = lexicon.SYNONYMS

_STEPS = re.compile("|".join(rf",?\s*\b{re.escape(w)}\b" for w in lexicon.STEP_WORDS), re.IGNORECASE)
_NAME_PARTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def stem(word: str) -> str:
    """A crude English stem: the word less one plural or verb ending ("courts", "booked": "court", "book").

    Args:
        word: A lower-case word.
    """
    for suffix in ("ing", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str, plain: frozenset[str] = PLAIN_WORDS) -> list[str]:
    """The words of ``text`` that carry meaning: lower case, longer than two letters, not a ``plain`` word.

    Args:
        text: Any text.
        plain: The words that carry no meaning here.
    """
    return [w for w in re.findall(r"[a-z][a-z0-9]+", text.lower().replace("_", " "))
            if len(w) > 2 and w not in plain]


# For routing, the everyday verbs that start tool names ("get_order", "show_menu") count, at half weight:
# "get me a taxi" is a booking more often than a lookup.
_WEAK_VERBS = lexicon.WEAK_VERBS
_ROUTING_PLAIN = PLAIN_WORDS - _WEAK_VERBS


# Phrasal verbs, read as the one word they mean before the words are split.
_PHRASES = [(re.compile(rf"\b{re.escape(phrase)}\b", re.IGNORECASE), meaning)
            for phrase, meaning in sorted(lexicon.PHRASAL_VERBS.items(), key=lambda item: -len(item[0]))]


def meaning(word: str) -> str:
    """A word's stem, in the meaning :data:`SYNONYMS` gives it ("changed": "update", "booking": "book").

    Args:
        word: A lower-case word.
    """
    base = stem(word)
    return SYNONYMS.get(word, SYNONYMS.get(base, base))


def _terms(words: Sequence[str]) -> set[str]:
    return {meaning(word) for word in words}


def _name_terms(name: str) -> set[str]:
    parts = [p.lower() for p in _NAME_PARTS.findall(name)]
    return _terms([p for p in parts if len(p) > 2 and p not in _ROUTING_PLAIN] or parts)


def steps(request: str, verbs: Sequence[str] = ()) -> list[str]:
    """The steps of a request, split at its sequencing words ("then", "after that"), and at an "and" that
    comes before one of ``verbs`` ("... and cancel the first one").

    Args:
        request: The user's request.
        verbs: Verbs that start a step (the tools' leading verbs).
    """
    parts = _STEPS.split(request)
    if verbs:
        joined = "|".join(sorted({re.escape(v) for v in verbs if v}, key=len, reverse=True))
        before_verb = re.compile(rf",?\s+and\s+(?=(?:{joined})\b)", re.IGNORECASE)
        parts = [piece for part in parts for piece in before_verb.split(part)]
    parts = [p.strip(" ,.;") for p in parts]
    return [p for p in parts if p] or [request]


def leading_verb(name: str) -> str:
    """The first word of a tool's name, lower case, in the meaning :data:`SYNONYMS` gives it.

    Args:
        name: A tool's name.
    """
    parts = _NAME_PARTS.findall(name)
    first = parts[0].lower() if parts else ""
    return SYNONYMS.get(first, first)


def leading_verbs(tools: Sequence[Tool]) -> list[str]:
    """The first word of each tool's name ("cancel" for ``cancel_order``) and the everyday verbs that mean it.

    Args:
        tools: The tools offered.
    """
    firsts = {parts[0].lower() for t in tools if (parts := _NAME_PARTS.findall(t.name))}
    return sorted(firsts | {word for word, meaning in SYNONYMS.items() if meaning in firsts})


def relevance(request: str, tools: Sequence[Tool]) -> list[float]:
    """How much of ``request`` each tool's name and description share, weighted by how rare each shared word
    is among ``tools`` (see the module docstring). Zero when a tool shares no word.

    Args:
        request: A request, or one of its steps.
        tools: The tools offered.
    """
    names = [_name_terms(t.name) for t in tools]
    descriptions = [_terms(content_words(t.description or "", _ROUTING_PLAIN)) for t in tools]
    frequency: dict[str, int] = {}
    for name, description in zip(names, descriptions, strict=True):
        for term in name | description:
            frequency[term] = frequency.get(term, 0) + 1
    for phrase, meaning in _PHRASES:
        request = phrase.sub(meaning, request)
    asked = _terms(content_words(request, _ROUTING_PLAIN))
    scores = []
    for name, description in zip(names, descriptions, strict=True):
        score = 0.0
        for term in asked:
            if term not in frequency:
                continue
            weight = math.log(1 + len(tools) / frequency[term]) * (0.5 if term in _WEAK_VERBS else 1.0)
            score += 2 * weight if term in name else weight if term in description else 0.0
        scores.append(score)
    return scores


def ranked_steps(tools: Sequence[Tool], request: str) -> list[tuple[str, list[float]]]:
    """Each step of ``request`` (:func:`steps`) with each tool's :func:`relevance` to it. A piece that shares no
    word with any tool ("Go ahead" of "Go ahead and search ...") is no step.

    Args:
        tools: The tools offered.
        request: The user's request.
    """
    return [(part, scores) for part in steps(request, leading_verbs(tools))
            if max(scores := relevance(part, tools), default=0) > 0]


def _ranked_steps(tools: Sequence[Tool], request: str) -> list[list[float]]:
    return [scores for _, scores in ranked_steps(tools, request)]


def name_overlap(text: str, tools: Sequence[Tool]) -> list[float]:
    """How many of each tool's name words ``text`` has (in meaning), each weighted by how few tools share it.

    Args:
        text: A request, or one of its steps.
        tools: The tools offered.
    """
    names = [_name_terms(t.name) for t in tools]
    frequency: dict[str, int] = {}
    for name in names:
        for term in name:
            frequency[term] = frequency.get(term, 0) + 1
    asked = _terms(content_words(text, _ROUTING_PLAIN))
    return [sum(math.log(1 + len(tools) / frequency[t]) for t in asked & name) for name in names]


def tool_words(tool: Tool) -> set[str]:
    """The stems of a tool's name, description, argument names and descriptions and enum values.

    Args:
        tool: The tool.
    """
    parts = [tool.name, tool.description or ""]
    for name, spec in ((tool.parameters or {}).get("properties") or {}).items():
        parts.append(name)
        if isinstance(spec, dict):
            parts.append(str(spec.get("description") or ""))
            parts.extend(str(v) for v in spec.get("enum") or [])
    return {stem(w) for w in content_words(" ".join(parts))}


def shares_words(request: str, tools: Sequence[Tool]) -> bool:
    """True when ``request`` shares a content word with one of ``tools`` (:func:`tool_words`: the same stem, or
    the same first five letters: "invest" and "investment").

    Args:
        request: The user's request.
        tools: The tools offered.
    """
    known = set().union(*(tool_words(t) for t in tools)) if tools else set()
    for word in content_words(request):
        base = stem(word)
        if base in known or (len(base) >= 5 and any(len(k) >= 5 and k[:5] == base[:5] for k in known)):
            return True
    return False


def named(tools: Sequence[Tool], request: str | None, margin: float = MARGIN) -> list[Tool]:
    """The tools any step of ``request`` names (within ``margin`` of that step's best); all of ``tools`` when
    there is no request, or it shares no word with any of them.

    Args:
        tools: The tools offered.
        request: The user's request (None: no request).
        margin: How far below a step's best score a tool may be and still count as named.
    """
    ranked = _ranked_steps(tools, request) if request else []
    if not ranked:
        return list(tools)
    chosen = {i for scores in ranked for i, score in enumerate(scores) if score >= max(scores) - margin}
    return [tool for i, tool in enumerate(tools) if i in chosen]


def pending(tools: Sequence[Tool], request: str | None, succeeded: Sequence[str] = ()) -> bool:
    """Whether the request has a step left after the ``succeeded`` calls (see :func:`shortlist`).

    Args:
        tools: The tools offered.
        request: The user's request (None: no step is left).
        succeeded: The names of the tools whose calls succeeded, in order.
    """
    return bool(request) and len(succeeded) < len(_ranked_steps(tools, request or ""))


def shortlist(tools: Sequence[Tool], request: str | None, succeeded: Sequence[str] = (),
              margin: float = MARGIN) -> list[Tool]:
    """The tools a round should offer. ``succeeded`` names the calls that succeeded so far, in order; the
    round is for the request's next step. Offered: the tools whose relevance to that step is within
    ``margin`` of the best, or all of ``tools`` when no tool shares a word with it; once every step has
    had its call, every tool but those that already succeeded (nothing is done twice; an empty list leaves
    only the answer).

    Args:
        tools: The tools offered.
        request: The user's request (None: every tool is offered).
        succeeded: The names of the tools whose calls succeeded, in order.
        margin: How far below the step's best score a tool may be and still be offered.
    """
    if not request:
        return list(tools)
    ranked = _ranked_steps(tools, request)
    done = len(succeeded)
    if done >= max(len(ranked), 1):
        return [tool for tool in tools if tool.name not in succeeded]
    if done >= len(ranked) or len(tools) < 2:
        return list(tools)
    best = max(ranked[done])
    return [tool for tool, score in zip(tools, ranked[done], strict=True) if score >= best - margin]
