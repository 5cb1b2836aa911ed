"""Value kinds of the tool corpus: each one a JSON schema, a generator of right values and the ways people
write them ("70kg", "2,000,000", "8%" for 0.08, "three", "August 16, 2022", "US dollars", "California").

A kind's :meth:`Kind.draw` gives ``(value, text)``: the value a tool must receive, and how the request
writes it. The corpus (:mod:`.corpus`) builds tool parameters and requests from these.
"""

from __future__ import annotations

import datetime as _dt
import random
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

# ---------------------------------------------------------------------------------------------- pools

CITIES = (
    "Buenos Aires", "New York", "Rio de Janeiro", "Kuala Lumpur", "Cape Town", "Los Angeles", "Hong Kong",
    "Mexico City", "Salt Lake City", "San Francisco", "Oslo", "Lima", "Nairobi", "Lisbon", "Seoul", "Warsaw",
    "Dublin", "Toronto", "Auckland", "Marrakesh", "Reykjavik", "Hanoi", "Porto", "Krakow", "Santiago",
    "Tel Aviv", "Abu Dhabi", "Las Vegas", "New Delhi", "St. Louis", "Ho Chi Minh City", "Edinburgh",
    "Vienna", "Bogota", "Montreal", "Cairo", "Helsinki", "Zurich", "Perth", "Sao Paulo",
)
PEOPLE = (
    "Ana Lopez", "Mary Ann Smith", "Kenji Watanabe", "Fatima Al-Sayed", "Liam O'Brien", "Priya Raman",
    "Jean-Luc Martin", "Olga Petrova", "Diego Fernandez", "Chloe Dubois", "Tomasz Nowak", "Amara Okafor",
    "Lucas Silva", "Emma Johansson", "Noah Williams", "Sofia Rossi", "Ahmed Hassan", "Grace Kim",
    "Marcus Brown", "Ingrid Berg", "Rafael Torres", "Hannah Schmidt", "Yuki Tanaka", "Daniel Cohen",
)
DISHES = (
    "pasta carbonara", "chicken tikka masala", "pad thai", "beef stroganoff", "vegetable lasagna",
    "mushroom risotto", "fish and chips", "caesar salad", "shrimp fried rice", "lamb tagine",
    "french onion soup", "margherita pizza", "falafel wrap", "eggs benedict", "banana bread",
)
PRODUCTS = (
    "wireless headphones", "standing desk", "coffee grinder", "running shoes", "yoga mat", "smart watch",
    "electric kettle", "office chair", "mechanical keyboard", "air purifier", "hiking backpack",
    "phone charger", "desk lamp", "water bottle", "noise cancelling earbuds", "cast iron pan",
)
COMPANIES = (
    "Acme Corp", "Globex", "Initech", "Blue Harbor Logistics", "Northwind Traders", "Sunrise Bakery",
    "Redwood Analytics", "Pine Valley Clinic", "Silver Line Transport", "Oak & Stone Legal",
    "Bright Path Tutoring", "Green Leaf Gardens",
)
TITLES = (
    "The Long Way Home", "Midnight in Paris", "A Brief History of Time", "The Silent Sea", "Blue Monday",
    "Echoes of Autumn", "The Last Lighthouse", "Paper Moon", "City of Glass", "Northern Lights",
    "The Quiet Garden", "Summer Rain",
)
TOPICS = (
    "quarterly budget review", "team offsite planning", "website redesign", "customer onboarding",
    "security audit", "product launch", "hiring plan", "annual report", "database migration",
    "marketing campaign", "supplier contract", "office move",
)
STREETS = (
    "12 Baker Street", "450 Oak Avenue", "7 Rue de Rivoli", "221 Elm Road", "88 Harbour Lane",
    "15 King's Road", "3 Station Square", "1200 Pine Street", "9 Mill Lane", "64 Park Crescent",
)
POSTCODES = ("NW1 6XE", "94110", "75001", "10115", "2000", "SW3 4LY", "00120", "M5V 2T6", "3011", "1010")
NOTES = (
    "running late, start without me", "please bring the signed contract", "the gate code is 4471",
    "call me when you arrive", "leave the package at the back door", "lunch is on me today",
    "the meeting moved to the blue room", "don't forget the charger", "the client prefers email",
    "we need two more chairs", "thanks for covering my shift", "the printer on floor 3 is broken",
)
TAGS = ("urgent", "finance", "travel", "personal", "work", "family", "health", "school", "home", "review",
        "draft", "archive", "red", "blue", "green")
ITEMS = ("milk", "eggs", "bread", "apples", "rice", "coffee", "butter", "tomatoes", "cheese", "pasta",
         "onions", "yogurt", "spinach", "chicken")
EMAIL_DOMAINS = ("example.com", "mail.example.org", "company.example")

CURRENCIES = {
    "USD": ("US dollars", "dollars", "USD"), "EUR": ("euros", "EUR", "euro"), "GBP": ("British pounds", "pounds sterling", "GBP"),
    "JPY": ("Japanese yen", "yen", "JPY"), "CAD": ("Canadian dollars", "CAD"), "AUD": ("Australian dollars", "AUD"),
    "CHF": ("Swiss francs", "CHF"), "INR": ("Indian rupees", "rupees", "INR"), "MXN": ("Mexican pesos", "MXN"),
    "BRL": ("Brazilian reais", "BRL"), "SEK": ("Swedish kronor", "SEK"), "CNY": ("Chinese yuan", "yuan", "CNY"),
}
STATES = {
    "CA": "California", "TX": "Texas", "NY": "New York State", "FL": "Florida", "WA": "Washington State",
    "IL": "Illinois", "MA": "Massachusetts", "CO": "Colorado", "OR": "Oregon", "GA": "Georgia",
    "AZ": "Arizona", "NV": "Nevada", "NC": "North Carolina", "NJ": "New Jersey", "MI": "Michigan",
}
COUNTRIES = {
    "DE": "Germany", "FR": "France", "JP": "Japan", "BR": "Brazil", "IN": "India", "ES": "Spain",
    "IT": "Italy", "CA": "Canada", "MX": "Mexico", "KE": "Kenya", "NO": "Norway", "AR": "Argentina",
    "KR": "South Korea", "NZ": "New Zealand", "ZA": "South Africa", "US": "the United States",
    "GB": "the United Kingdom", "NL": "the Netherlands",
}
LANGUAGES = {
    "es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese", "ja": "Japanese",
    "ko": "Korean", "zh": "Chinese", "ar": "Arabic", "ru": "Russian", "nl": "Dutch", "sv": "Swedish",
}
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 15: "fifteen", 20: "twenty"}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def with_commas(value: int | float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def join_words(values: list[str]) -> str:
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + " and " + values[-1]


# ---------------------------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class Kind:
    """A value kind: its JSON schema and a draw of (value, text as written in a request)."""

    name: str
    schema: dict[str, Any]
    draw: Callable[[random.Random], tuple[Any, str]]
    words: tuple[str, str] | None = None  # booleans: how a request says true / false
    extra: dict[str, Any] = field(default_factory=dict)


def _pick(pool):
    return lambda rng: (lambda v: (v, v))(rng.choice(pool))


def _date(rng: random.Random) -> tuple[str, str]:
    day = _dt.date(2022, 1, 1) + _dt.timedelta(days=rng.randrange(0, 6 * 365))
    month = MONTHS[day.month - 1]
    forms = (f"{month} {day.day}, {day.year}", f"{day.day} {month} {day.year}", f"{month[:3]} {day.day}, {day.year}",
             day.isoformat(), f"the {ordinal(day.day)} of {month} {day.year}", f"{month} {ordinal(day.day)}, {day.year}")
    return day.isoformat(), rng.choice(forms)


def _time(rng: random.Random) -> tuple[str, str]:
    hour, minute = rng.randrange(6, 22), rng.choice((0, 0, 15, 30, 45))
    h12 = hour % 12 or 12
    ampm = "am" if hour < 12 else "pm"
    forms = [f"{hour:02d}:{minute:02d}", f"{h12}:{minute:02d} {ampm}", f"{h12}:{minute:02d}{ampm}"]
    if minute == 0:
        forms += [f"{h12}{ampm}", f"{h12} {ampm}", f"{h12} o'clock in the {'morning' if hour < 12 else 'afternoon' if hour < 18 else 'evening'}"]
        if hour == 12:
            forms.append("noon")
    return f"{hour:02d}:{minute:02d}", rng.choice(forms)


def _datetime(rng: random.Random) -> tuple[str, str]:
    day, day_text = _date(rng)
    time, time_text = _time(rng)
    return f"{day}T{time}:00", rng.choice((f"{day_text} at {time_text}", f"{time_text} on {day_text}"))


def _count(low: int, high: int):
    def draw(rng: random.Random) -> tuple[int, str]:
        value = rng.randint(low, high)
        roll = rng.random()
        if value in NUMBER_WORDS and roll < 0.4:
            return value, NUMBER_WORDS[value]
        if value == 12 and roll < 0.6:
            return value, "a dozen"
        return value, with_commas(value) if value >= 1000 else str(value)
    return draw


def _big(low: int, high: int, step: int):
    def draw(rng: random.Random) -> tuple[int, str]:
        value = rng.randrange(low, high, step)
        forms = [with_commas(value), with_commas(value), str(value)]
        if value % 1_000_000 == 0:
            forms.append(f"{value // 1_000_000} million")
        elif value % 1000 == 0 and value < 1_000_000:
            forms.append(f"{value // 1000}k")
        return value, rng.choice(forms)
    return draw


def _money(low: int, high: int, symbol: str = "$"):
    def draw(rng: random.Random) -> tuple[int | float, str]:
        value: int | float = rng.randint(low, high)
        if rng.random() < 0.25 and value < 1000:
            value = value + rng.choice((0.5, 0.25, 0.99))
        text = with_commas(value)
        return value, rng.choice((f"{symbol}{text}", f"{text} dollars" if symbol == "$" else f"{text} {symbol}",
                                  f"{symbol}{text}", text))
    return draw


def _unit(low: float, high: float, units: tuple[str, ...], decimals: int = 0):
    def draw(rng: random.Random) -> tuple[int | float, str]:
        value = round(rng.uniform(low, high), decimals)
        value = int(value) if decimals == 0 else value
        unit = rng.choice(units)
        glued = rng.random() < 0.5 and len(unit) <= 3
        return value, f"{value}{unit}" if glued else f"{value} {unit}"
    return draw


def _fraction(rng: random.Random) -> tuple[float, str]:
    percent = rng.choice((1, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 7.5, 8, 10, 12, 15, 20, 25))
    value = round(percent / 100, 4)
    return value, rng.choice((f"{percent}%", f"{percent}%", f"{percent} percent", f"{percent} per cent"))


def _percent(rng: random.Random) -> tuple[int, str]:
    value = rng.choice((5, 10, 12, 15, 18, 20, 25, 30, 40, 50))
    return value, rng.choice((f"{value}%", f"{value} percent"))


def _code(table: dict[str, Any]):
    def draw(rng: random.Random) -> tuple[str, str]:
        code = rng.choice(sorted(table))
        names = table[code]
        names = names if isinstance(names, tuple) else (names,)
        return code, rng.choice(names)
    return draw


def _email(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(PEOPLE).lower().replace("'", "").split(" ")[:2]
    value = f"{first}.{last}@{rng.choice(EMAIL_DOMAINS)}".replace("-", "")
    return value, value


def _phone(rng: random.Random) -> tuple[str, str]:
    value = f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
    return value, value


def _ident(prefix: str):
    def draw(rng: random.Random) -> tuple[str, str]:
        value = f"{prefix}-{rng.randint(1000, 99999)}"
        return value, value
    return draw


def _list(pool: tuple[str, ...], low: int = 2, high: int = 4):
    def draw(rng: random.Random) -> tuple[list[str], str]:
        values = rng.sample(pool, rng.randint(low, high))
        return values, join_words(values)
    return draw


def _int_list(rng: random.Random) -> tuple[list[int], str]:
    values = sorted(rng.sample(range(1, 60), rng.randint(2, 4)))
    return values, join_words([str(v) for v in values])


def _address(rng: random.Random) -> tuple[dict[str, str], str]:
    street, city, code = rng.choice(STREETS), rng.choice(CITIES), rng.choice(POSTCODES)
    return {"street": street, "city": city, "postal_code": code}, f"{street}, {city}, {code}"


def _range(low: int, high: int):
    def draw(rng: random.Random) -> tuple[dict[str, int], str]:
        a = rng.randrange(low, high, 10)
        b = a + rng.randrange(20, 400, 10)
        text = rng.choice((f"between ${a} and ${b}", f"from {a} to {b} dollars", f"${a}-${b}"))
        return {"min": a, "max": b}, text
    return draw


def _contact(rng: random.Random) -> tuple[dict[str, str], str]:
    name = rng.choice(PEOPLE)
    email, _ = _email(rng)
    return {"name": name, "email": email}, f"{name} ({email})"


def _quoted(pool: tuple[str, ...]):
    def draw(rng: random.Random) -> tuple[str, str]:
        value = rng.choice(pool)
        return value, rng.choice((f"'{value}'", f'"{value}"', value))
    return draw


S = {"type": "string"}
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("city", S, _pick(CITIES)),
    Kind("person", S, _pick(PEOPLE)),
    Kind("dish", S, _pick(DISHES)),
    Kind("product", S, _pick(PRODUCTS)),
    Kind("company", S, _pick(COMPANIES)),
    Kind("title", S, _quoted(TITLES)),
    Kind("topic", S, _pick(TOPICS)),
    Kind("note", S, _quoted(NOTES)),
    Kind("email", {"type": "string", "format": "email"}, _email),
    Kind("phone", S, _phone),
    Kind("date", {"type": "string", "format": "date", "description": "YYYY-MM-DD"}, _date),
    Kind("time", {"type": "string", "format": "time", "description": "HH:MM, 24-hour"}, _time),
    Kind("datetime", {"type": "string", "format": "date-time", "description": "YYYY-MM-DDTHH:MM:SS"}, _datetime),
    Kind("count", {"type": "integer", "minimum": 1}, _count(1, 12)),
    Kind("people", {"type": "integer", "minimum": 1}, _count(1, 10)),
    Kind("minutes", {"type": "integer", "minimum": 1}, _count(5, 120)),
    Kind("big_number", {"type": "integer"}, _big(10_000, 5_000_000, 5000)),
    Kind("money", {"type": "number", "minimum": 0}, _money(5, 2500)),
    Kind("small_money", {"type": "number", "minimum": 0}, _money(1, 9)),
    Kind("big_money", {"type": "number", "minimum": 0}, _big(50_000, 3_000_000, 10_000)),
    Kind("weight_kg", {"type": "number", "description": "kilograms"}, _unit(40, 120, ("kg", "kilograms"))),
    Kind("height_m", {"type": "number", "description": "metres"}, _unit(1.5, 2.0, ("m", "meters"), 2)),
    Kind("distance_km", {"type": "number", "description": "kilometres"}, _unit(2, 900, ("km", "kilometers"))),
    Kind("kelvin", {"type": "number", "description": "kelvin"}, _unit(250, 400, ("K", "kelvin"))),
    Kind("celsius", {"type": "number", "description": "degrees Celsius"}, _unit(-10, 40, ("°C", "degrees Celsius"))),
    Kind("seconds", {"type": "number", "description": "seconds"}, _unit(2, 60, ("s", "seconds"))),
    Kind("accel", {"type": "number", "description": "m/s²"}, _unit(1, 12, ("m/s²", "m/s^2"))),
    Kind("velocity", {"type": "number", "description": "m/s"}, _unit(1, 40, ("m/s", "meters per second"))),
    Kind("fraction", {"type": "number", "minimum": 0, "maximum": 1,
                      "description": "as a fraction, e.g. 0.05 for 5%"}, _fraction),
    Kind("percent", {"type": "number", "minimum": 0, "maximum": 100, "description": "in percent"}, _percent),
    Kind("years", {"type": "integer", "minimum": 1}, _count(1, 30)),
    Kind("currency", {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code, e.g. USD"},
         _code(CURRENCIES)),
    Kind("state", {"type": "string", "pattern": "^[A-Z]{2}$", "description": "two-letter US state code"},
         _code(STATES)),
    Kind("country", {"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO 3166 alpha-2 code"},
         _code(COUNTRIES)),
    Kind("language", {"type": "string", "enum": sorted(LANGUAGES), "description": "ISO 639-1 code"},
         _code(LANGUAGES)),
    Kind("tags", {"type": "array", "items": {"type": "string"}}, _list(TAGS, 2, 3)),
    Kind("items", {"type": "array", "items": {"type": "string"}}, _list(ITEMS, 2, 4)),
    Kind("people_list", {"type": "array", "items": {"type": "string"}}, _list(PEOPLE, 2, 3)),
    Kind("seat_numbers", {"type": "array", "items": {"type": "integer"}}, _int_list),
    Kind("address", {"type": "object", "properties": {"street": S, "city": S, "postal_code": S},
                     "required": ["street", "city", "postal_code"]}, _address),
    Kind("price_range", {"type": "object", "properties": {"min": {"type": "number"}, "max": {"type": "number"}},
                         "required": ["min", "max"]}, _range(10, 500)),
    Kind("contact", {"type": "object", "properties": {"name": S, "email": {"type": "string", "format": "email"}},
                     "required": ["name", "email"]}, _contact),
    Kind("flag", {"type": "boolean"}, lambda rng: (lambda v: (v, ""))(rng.random() < 0.5)),
)}


def enum_kind(values: tuple[str, ...]) -> Kind:
    """A kind whose value is one of ``values``, written as it is."""
    return Kind("enum", {"type": "string", "enum": list(values)}, lambda rng: (lambda v: (v, v))(rng.choice(values)))


def ident_kind(prefix: str) -> Kind:
    return Kind("id", {"type": "string"}, _ident(prefix))
