"""The small-model rules' English lexicon, loaded once from ``lexicon.json`` beside this module: one data file
for the function words, everyday verbs and their meanings, and the words that mark quantities, switches and
documents. Keeping them out of the code makes them easy to see, review and change, and keeps any of them from
being fitted to an evaluation suite's own wording unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

__all__ = ["ACTION_VERBS", "ARTICLES", "CHANGE_VERBS", "DOCUMENT_WORDS", "FRACTION_HINTS", "LINKS", "NAME_LINKS",
           "PERCENT_HINTS", "PHRASAL_VERBS", "PLAIN_WORDS", "QUANTITY_WORDS", "RATE_HINTS", "STEP_WORDS",
           "SHAPE_WORDS", "SWITCH_VERBS", "SYNONYMS", "WEAK_VERBS", "load"]


def load(path: Path | None = None) -> dict[str, Any]:
    """The lexicon as stored (``lexicon.json``, or ``path``).

    Args:
        path: Another lexicon file of the same shape.
    """
    text = (path or Path(__file__).with_name("lexicon.json")).read_text(encoding="utf-8")
    return cast(dict[str, Any], json.loads(text))


_DATA = load()
PLAIN_WORDS: frozenset[str] = frozenset(_DATA["plain_words"])
SYNONYMS: dict[str, str] = dict(_DATA["synonyms"])
WEAK_VERBS: frozenset[str] = frozenset(_DATA["weak_verbs"])
PHRASAL_VERBS: dict[str, str] = dict(_DATA["phrasal_verbs"])
STEP_WORDS: tuple[str, ...] = tuple(_DATA["step_words"])
ARTICLES: frozenset[str] = frozenset(_DATA["articles"])
LINKS: frozenset[str] = frozenset(_DATA["links"])
NAME_LINKS: frozenset[str] = frozenset(_DATA["name_links"])
QUANTITY_WORDS: frozenset[str] = frozenset(_DATA["quantity_words"])
FRACTION_HINTS: tuple[str, ...] = tuple(_DATA["fraction_hints"])
RATE_HINTS: tuple[str, ...] = tuple(_DATA["rate_hints"])
PERCENT_HINTS: tuple[str, ...] = tuple(_DATA["percent_hints"])
DOCUMENT_WORDS: frozenset[str] = frozenset(_DATA["document_words"])
SWITCH_VERBS: frozenset[str] = frozenset(_DATA["switch_verbs"])
CHANGE_VERBS: frozenset[str] = frozenset(_DATA["change_verbs"])
ACTION_VERBS: frozenset[str] = frozenset(_DATA["action_verbs"])
# The words by which an argument's name or description says the shape of its value (an e-mail address, a URL, a UUID).
SHAPE_WORDS: dict[str, frozenset[str]] = {shape: frozenset(words) for shape, words in _DATA["shape_words"].items()}
