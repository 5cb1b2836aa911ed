"""Values as people write them, in the forms a tool's schema wants: the normalised candidates the constrained
mode offers next to the words it copies (:mod:`.copying`).

- numbers glued to units or currency signs (``70kg``, ``$25``, ``1.75m``, ``298K``), with thousands separators
  (``2,000,000``), scale words (``2.5 million``, ``$3k``), percentages (``8%``: 8, and 0.08 where a fraction is
  wanted) and number words (``three``, ``a dozen``, ``twenty-five``, ``from rest``: 0);
- dates (``August 16, 2022``, ``16 Aug 2022``, ``08/16/2022``, ``tomorrow``, ``next Friday``) and times
  (``3pm``, ``15:30``, ``noon``) in ISO form;
- ISO codes for currency names (``US dollars``: USD), country names (``Japan``: JP / JPN), US state names
  (``California``: CA) and language names (``German``: de), from small built-in tables (:mod:`.iso_codes`,
  re-exported here).

Pure functions of text; no dependency beyond the standard library (the core also runs under Pyodide).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterable, Sequence

from .iso_codes import COUNTRIES, CURRENCIES, LANGUAGES, US_STATES, codes

__all__ = [
    "Mention", "UNIT_GROUPS", "unit_group", "units_named", "codes", "fraction", "out_of_bounds", "dates", "date_times", "number_mentions", "numbers", "times", "words_to_number",
    "CURRENCIES", "COUNTRIES", "US_STATES", "LANGUAGES",
]

Number = int | float


@dataclass(frozen=True)
class Mention:
    """A number as written: its value, whether it was a percentage, and its value after a scale word or
    suffix (``2.5 million``: 2.5 and 2500000)."""

    value: Number
    percent: bool = False
    scaled: Number | None = None
    unit: str | None = None  # the unit written with it ("70kg", "10 seconds"), one of UNIT_GROUPS' names
    in_date: bool = False  # a part of a date or a clock time ("August 16, 2022", "7:30")


# ---------------------------------------------------------------------------------------------- numbers

# Units written as a name or a symbol: one group per unit.
UNIT_GROUPS: list[frozenset[str]] = [frozenset(g) for g in (
    {"km", "kilometer", "kilometers", "kilometre", "kilometres"}, {"m", "meter", "meters", "metre", "metres"},
    {"cm", "centimeter", "centimeters", "centimetre", "centimetres"}, {"mm", "millimeter", "millimeters"},
    {"mi", "mile", "miles"}, {"ft", "foot", "feet"}, {"in", "inch", "inches"}, {"yd", "yard", "yards"},
    {"kg", "kilogram", "kilograms", "kilo", "kilos"}, {"g", "gram", "grams"}, {"mg", "milligram", "milligrams"},
    {"lb", "lbs", "pound", "pounds"}, {"oz", "ounce", "ounces"}, {"t", "ton", "tons", "tonne", "tonnes"},
    {"l", "liter", "liters", "litre", "litres"}, {"ml", "milliliter", "milliliters", "millilitre", "millilitres"},
    {"gal", "gallon", "gallons"}, {"c", "°c", "celsius", "centigrade"}, {"f", "°f", "fahrenheit"},
    {"k", "kelvin"}, {"s", "sec", "secs", "second", "seconds"}, {"min", "mins", "minute", "minutes"},
    {"h", "hr", "hrs", "hour", "hours"}, {"d", "day", "days"}, {"wk", "week", "weeks"}, {"mo", "month", "months"},
    {"yr", "yrs", "year", "years"}, {"mph"}, {"kmh", "km/h", "kph"}, {"atm", "atmosphere", "atmospheres"},
    {"pa", "pascal", "pascals"}, {"kpa"}, {"bar"}, {"mol", "mole", "moles"}, {"m²", "m2", "sqm", "square meters", "square metres"},
    {"°", "degree", "degrees"}, {"w", "watt", "watts"}, {"kw", "kilowatt", "kilowatts"}, {"kwh"},
    {"gb", "gigabyte", "gigabytes"}, {"mb", "megabyte", "megabytes"}, {"px", "pixel", "pixels"},
    {"people", "persons", "guests", "person", "passengers", "travelers", "travellers", "adults"}, {"night", "nights"},
)]
_UNIT_OF = {name: group for group in UNIT_GROUPS for name in group}


def unit_group(word: str) -> frozenset[str] | None:
    """The group of unit names ``word`` belongs to (``"kilograms"``: kg, kilogram, ...), or None.

    Args:
        word: A word as written (case and surrounding punctuation do not matter).
    """
    return _UNIT_OF.get(word.lower().strip(".,;:!?()"))


def units_named(name: str, description: str = "") -> set[frozenset[str]]:
    """The unit groups an argument's name and description name ("Weight in kilograms", ``height_m``,
    "square meters"). A one- or two-letter unit counts only as a part of the name (``height_m``), never as a
    word of the description ("in", "m").

    Args:
        name: An argument's name.
        description: The argument's description.
    """

    def square(text: str) -> str:
        return re.sub(r"\bsquare[ _](?:meters?|metres?)\b|\bsq\.? ?m\b", "m²", text.lower())

    parts = set(square(name).split("_"))
    out = set()
    for word in re.findall(r"[a-z°²³]+(?:/[a-z0-9^²³]+)?", square(f"{name.replace('_', ' ')} {description}")):
        group = unit_group(word)
        if group is not None and (len(word) >= 3 or word in parts):
            out.add(group)
    return out


def _unit_after(text: str, end: int) -> str | None:
    """The unit named right after a number ending at ``end`` ("10 seconds", "75 m²"); a compound unit such
    as ``m/s`` is a unit of its own, not meters."""
    following = re.match(r"[ \t]*(°?[A-Za-z²³]+(?:/[A-Za-z²³^0-9]+)?)", text[end:])
    if following and unit_group(following.group(1)):
        return following.group(1).lower()
    return None


_SCALES = {"thousand": 1_000, "k": 1_000, "million": 1_000_000, "mn": 1_000_000, "m": 1_000_000,
           "billion": 1_000_000_000, "bn": 1_000_000_000, "b": 1_000_000_000, "trillion": 1_000_000_000_000}
_NUM = re.compile(
    r"(?<![\w.\-])(?P<sign>[-−])?(?P<cur>[$€£¥₹])?\s?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<unit>[A-Za-z°µ%²]+)?(?![\w])"
    r"(?P<after>\s*(?:%|percent\b|per cent\b|thousand\b|million\b|billion\b|trillion\b|bn\b|mn\b))?",
    re.IGNORECASE,
)
_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
          "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
# "the first one", "the second result": a position in a list the run was given, not a quantity to pass on.
_REFERENCE = re.compile(r"\s+(?:one|ones|result|results|match|matches|item|items|entry|entries|hit|hits|record|"
                        r"records|option|options|row|rows)\b")
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
             "ninth": 9, "tenth": 10, "twelfth": 12, "twentieth": 20}
_WORD_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
# Fixed phrases for amounts (longest first when matching).
_PHRASES = {"half a dozen": 6, "a dozen": 12, "dozen": 12, "a couple of": 2, "a couple": 2, "a pair of": 2,
            "a pair": 2, "a half": 0.5, "half": 0.5,
            "a quarter": 0.25, "quarter": 0.25, "once": 1, "twice": 2, "thrice": 3, "single": 1, "double": 2,
            "triple": 3, "a score": 20, "noon": 12, "midnight": 0,
            # implied values
            "from rest": 0, "at rest": 0, "stationary": 0, "nothing": 0, "none": 0, "no one": 0, "free of charge": 0}
_NUMBER_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")


def _as_number(text: str) -> Number:
    text = text.replace(",", "")
    value = float(text)
    return int(value) if "." not in text and value.is_integer() else value


def _tidy(value: float) -> Number:
    value = round(value, 10)
    return int(value) if float(value).is_integer() and abs(value) < 1e15 else value


def number_mentions(text: str) -> list[Mention]:
    """Every number written in ``text`` in digits or words, in order (see the module docstring).

    Args:
        text: The text to read.
    """
    found: list[tuple[int, Mention]] = []
    for match in _NUM.finditer(text):
        value = _as_number(match.group("num"))
        if match.group("sign"):
            value = -value
        unit = (match.group("unit") or "").lower()
        after = (match.group("after") or "").strip().lower()
        percent = unit == "%" or after in ("%", "percent", "per cent")
        raw_unit = match.group("unit") or ""
        scale = _SCALES.get(after) or (_SCALES.get(unit) if raw_unit in ("k", "bn", "mn") or (
            unit in ("k", "m", "b") and match.group("cur")) else None)  # 298K is kelvin; $3K, 3k are thousands
        scaled = _tidy(value * scale) if scale else None
        unit_name = None
        if raw_unit and unit_group(raw_unit):
            unit_name = raw_unit.lower()
        elif not raw_unit and not after:
            unit_name = _unit_after(text, match.end())
        found.append((match.start(), Mention(value, percent, scaled, unit_name)))
    found.extend(_word_numbers(text))
    found.sort(key=lambda item: item[0])
    spans = [(m.start(), m.end()) for form in (*_DATE_FORMS, _TIME) for m in form.finditer(text)]
    return [Mention(m.value, m.percent, m.scaled, m.unit, True) if any(a <= start < b for a, b in spans) else m
            for start, m in found]


def _word_numbers(text: str) -> list[tuple[int, Mention]]:
    lowered = text.lower()
    out: list[tuple[int, Mention]] = []
    taken: list[tuple[int, int]] = []
    for phrase in sorted(_PHRASES, key=len, reverse=True):
        for match in re.finditer(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", lowered):
            if any(a < match.end() and match.start() < b for a, b in taken):
                continue
            taken.append((match.start(), match.end()))
            out.append((match.start(), Mention(_PHRASES[phrase])))
    words = [(m.start(), m.end(), m.group()) for m in _NUMBER_WORD.finditer(lowered)]
    # "a hundred", "a thousand": "a" is one there
    words = [(s, e, "one" if w == "a" and k + 1 < len(words) and words[k + 1][2] in _WORD_SCALES else w)
             for k, (s, e, w) in enumerate(words)]
    index = 0
    while index < len(words):
        start, end, word = words[index]
        if any(a <= start < b for a, b in taken):
            index += 1
            continue
        value, used = words_to_number([w for _, _, w in words[index:index + 8]])
        if used:
            # "a hundred and five": the words must be next to each other in the text (only spaces or "and" between)
            out.append((start, Mention(value, unit=_unit_after(text, words[index + used - 1][1]))))
            index += used
        else:
            if word in _ORDINALS and _REFERENCE.match(lowered, end):
                # "the first one": neither "first" nor "one" is a quantity
                index += 2 if index + 1 < len(words) and words[index + 1][2] == "one" else 1
                continue
            if word in _ORDINALS:
                out.append((start, Mention(_ORDINALS[word])))
            index += 1
    return out


def words_to_number(words: Sequence[str]) -> tuple[Number, int]:
    """The number that the leading number words of ``words`` spell (``["twenty-five", "people"]``: 25, 1 word
    used); ``(0, 0)`` when they spell none.

    Args:
        words: Lower-case words, the number words first.
    """
    total, current, used, seen = 0, 0, 0, False
    for position, word in enumerate(words):
        parts = word.split("-")
        if all(p in _UNITS or p in _TENS for p in parts) and len(parts) <= 2:
            current += sum(_UNITS.get(p, 0) + _TENS.get(p, 0) for p in parts)
        elif word in _WORD_SCALES and seen:
            scale = _WORD_SCALES[word]
            if scale == 100:
                current = (current or 1) * 100
            else:
                total += (current or 1) * scale
                current = 0
        elif word == "and" and seen and position + 1 < len(words) and (
                words[position + 1] in _UNITS or words[position + 1].split("-")[0] in _TENS):
            used = position + 1
            continue
        else:
            break
        seen = True
        used = position + 1
    return (total + current, used) if seen else (0, 0)


def fraction(percent: Number) -> Number:
    """A percentage as a fraction (8 -> 0.08).

    Args:
        percent: The percentage.
    """
    return _tidy(percent / 100)


def out_of_bounds(value: Number, spec: dict[str, Any]) -> bool:
    """True when ``value`` breaks the schema's ``minimum``/``maximum`` (or their exclusive forms).

    Args:
        value: The number.
        spec: The JSON schema of the argument.
    """
    checks: tuple[tuple[str, Callable[[Number], bool]], ...] = (
        ("minimum", lambda b: value < b), ("maximum", lambda b: value > b),
        ("exclusiveMinimum", lambda b: value <= b), ("exclusiveMaximum", lambda b: value >= b))
    return any(isinstance(spec.get(key), (int, float)) and not isinstance(spec.get(key), bool) and broken(spec[key])
               for key, broken in checks)


def numbers(texts: Iterable[str], *, fractions: bool = True) -> list[Number]:
    """The numbers the texts write, in order, without repeats: each as written, a scaled value after it
    (``2.5 million``), and for a percentage, with ``fractions``, the fraction (``8%``: 8 and 0.08).

    Args:
        texts: The texts to read.
        fractions: Add the fraction after each percentage.
    """
    found: list[Number] = []

    def add(value: Number) -> None:
        if not any(value == v and type(value) is type(v) for v in found) and value not in found:
            found.append(value)

    for text in texts:
        for mention in number_mentions(text):
            add(mention.value)
            if mention.scaled is not None:
                add(mention.scaled)
            if mention.percent and fractions:
                add(_tidy(mention.value / 100))
    return found


# ---------------------------------------------------------------------------------------------- dates

_MONTHS = {name: number for number, names in enumerate([
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
    ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
    ("december", "dec")], start=1) for name in names}
_WEEKDAYS = {name: number for number, names in enumerate([
    ("monday", "mon"), ("tuesday", "tue", "tues"), ("wednesday", "wed"), ("thursday", "thu", "thurs"),
    ("friday", "fri"), ("saturday", "sat"), ("sunday", "sun")]) for name in names}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"
_DATE_FORMS = [
    re.compile(rf"\b{_YEAR}-(?P<m>\d{{1,2}})-(?P<d>\d{{1,2}})\b"),
    re.compile(rf"\b{_MONTH}\s+{_DAY}(?:\s*,?\s*{_YEAR})?\b", re.IGNORECASE),
    re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:\s*,?\s*{_YEAR})?\b", re.IGNORECASE),
    re.compile(r"\b(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4}|\d{2})\b"),
]
_RELATIVE = re.compile(r"\b(?P<word>today|tonight|tomorrow|yesterday|day after tomorrow)\b"
                       r"|\b(?:(?P<which>next|this|coming|last)\s+)?(?P<weekday>"
                       + "|".join(n for n in _WEEKDAYS if len(n) > 3) + r")\b"
                       r"|\bin\s+(?P<count>\d+|[a-z]+)\s+(?P<unit>days?|weeks?)\b", re.IGNORECASE)


def _valid(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def dates(texts: Iterable[str], today: dt.date | None = None) -> list[dt.date]:
    """The calendar dates the texts name, in order, without repeats. A date without a year is the next one
    from ``today``; ``tomorrow`` and weekday names count from ``today`` (default: the local date).

    Args:
        texts: The texts to read.
        today: The date relative dates count from (default: the local date).
    """
    today = today or dt.date.today()
    found: list[tuple[int, int, dt.date]] = []
    for order, text in enumerate(texts):
        for form in _DATE_FORMS:
            for match in form.finditer(text):
                groups = match.groupdict()
                if groups.get("m"):
                    value = _valid(int(groups["year"]), int(groups["m"]), int(groups["d"]))
                elif groups.get("a"):
                    a, b, year = int(groups["a"]), int(groups["b"]), int(groups["y"])
                    year += 2000 if year < 100 else 0
                    value = _valid(year, a, b) if a <= 12 else _valid(year, b, a)  # US order unless the first is a day
                else:
                    month = _MONTHS[groups["month"].lower().rstrip(".")]
                    day = int(groups["day"])
                    if groups.get("year"):
                        value = _valid(int(groups["year"]), month, day)
                    else:
                        value = _valid(today.year, month, day)
                        if value is not None and value < today:
                            value = _valid(today.year + 1, month, day)
                if value is not None:
                    found.append((order, match.start(), value))
        for match in _RELATIVE.finditer(text):
            value = _relative(match, today)
            if value is not None:
                found.append((order, match.start(), value))
    out: list[dt.date] = []
    for _, _, value in sorted(found, key=lambda item: item[:2]):
        if value not in out:
            out.append(value)
    return out


def _relative(match: re.Match[str], today: dt.date) -> dt.date | None:
    word = (match.group("word") or "").lower()
    if word:
        return today + dt.timedelta(days={"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1,
                                          "day after tomorrow": 2}[word])
    if match.group("weekday"):
        target = _WEEKDAYS[match.group("weekday").lower()]
        ahead = (target - today.weekday()) % 7
        which = (match.group("which") or "").lower()
        if which == "last":
            return today - dt.timedelta(days=(today.weekday() - target) % 7 or 7)
        if ahead == 0 and which != "this":
            ahead = 7
        return today + dt.timedelta(days=ahead)
    count_text = match.group("count").lower()
    count = int(count_text) if count_text.isdigit() else words_to_number([count_text])[0] or \
        _PHRASES.get(count_text, 0)
    if not count:
        return None
    return today + dt.timedelta(days=int(count) * (7 if match.group("unit").lower().startswith("week") else 1))


_TIME = re.compile(
    r"\b(?P<h>[01]?\d|2[0-3])(?::(?P<m>[0-5]\d))?(?::(?P<s>[0-5]\d))?\s*(?P<ampm>[ap]\.?m\.?)(?![\w])"
    r"|\b(?P<h24>[01]?\d|2[0-3]):(?P<m24>[0-5]\d)(?::(?P<s24>[0-5]\d))?\b"
    r"|\b(?P<word>noon|midday|midnight)\b",
    re.IGNORECASE,
)


def times(texts: Iterable[str]) -> list[dt.time]:
    """The clock times the texts name (``3pm``, ``3:30 p.m.``, ``15:30``, ``noon``), in order, without repeats.

    Args:
        texts: The texts to read.
    """
    out: list[dt.time] = []
    for text in texts:
        for match in _TIME.finditer(text):
            if match.group("word"):
                value = dt.time(0 if match.group("word").lower() == "midnight" else 12)
            elif match.group("ampm"):
                hour = int(match.group("h"))
                if hour == 0 or hour > 12:
                    continue
                pm = match.group("ampm").lower().startswith("p")
                hour = (hour % 12) + (12 if pm else 0)
                value = dt.time(hour, int(match.group("m") or 0), int(match.group("s") or 0))
            else:
                value = dt.time(int(match.group("h24")), int(match.group("m24")), int(match.group("s24") or 0))
            if value not in out:
                out.append(value)
    return out


def date_times(texts: Sequence[str], today: dt.date | None = None) -> list[dt.datetime]:
    """Each date named with each time named (a time alone is on ``today``; a date alone at midnight).

    Args:
        texts: The texts to read.
        today: The date relative dates count from, and the date of a time named alone (default: the local date).
    """
    found_dates, found_times = dates(texts, today), times(texts)
    if not found_dates and found_times:
        found_dates = [today or dt.date.today()]
    return [dt.datetime.combine(day, moment) for day in found_dates for moment in (found_times or [dt.time(0)])]
