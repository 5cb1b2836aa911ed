"""The evaluation suite's tools: realistic, typed functions an assistant on a person's machine would offer.

Their schemas come from the signatures (as for any user tool), so the suite's OpenAI tool objects are
generated from :func:`suite_registry`, and the harness maps them back here by name. The functions answer
with plausible offline results: the harness never runs them (it scores the first call only), but they are
real tools, usable in an agent as they are.
"""

from __future__ import annotations

import ast
import datetime as dt
import operator
from typing import Literal
from collections.abc import Callable

from lmstudio_agent.builtins import builtin_registry
from lmstudio_agent.agent.tools import ToolRegistry

Unit = Literal["celsius", "fahrenheit"]
Currency = Literal["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR", "SEK"]
Language = Literal["English", "French", "German", "Spanish", "Italian", "Portuguese", "Japanese", "Chinese"]
LengthOrMass = Literal[
    "kilometers", "miles", "meters", "feet", "inches", "centimeters", "kilograms", "pounds", "liters", "gallons"
]
Priority = Literal["low", "medium", "high"]
TravelMode = Literal["driving", "walking", "cycling", "transit"]
SwitchState = Literal["on", "off"]


def get_weather(city: str, unit: Unit = "celsius") -> dict:
    """Get the current weather for a city.

    Args:
        city: City name, e.g. "Paris".
        unit: Temperature unit.
    """
    return {"city": city, "unit": unit, "temperature": 21 if unit == "celsius" else 70, "sky": "clear"}


def get_local_time(city: str) -> dict:
    """Get the current local time in a city.

    Args:
        city: City name, e.g. "Tokyo".
    """
    return {"city": city, "time": dt.datetime.now(dt.UTC).strftime("%H:%M"), "note": "UTC shown offline"}


def convert_units(value: float, from_unit: LengthOrMass, to_unit: LengthOrMass) -> dict:
    """Convert a length, mass or volume from one unit to another.

    Args:
        value: The quantity to convert.
        from_unit: The unit of the quantity.
        to_unit: The unit to convert to.
    """
    factors = {"kilometers": 1000.0, "miles": 1609.344, "meters": 1.0, "feet": 0.3048, "inches": 0.0254,
               "centimeters": 0.01, "kilograms": 1.0, "pounds": 0.45359237, "liters": 1.0, "gallons": 3.785411784}
    return {"value": round(value * factors[from_unit] / factors[to_unit], 6), "unit": to_unit}


def convert_currency(amount: float, from_currency: Currency, to_currency: Currency) -> dict:
    """Convert an amount of money from one currency to another.

    Args:
        amount: The amount of money.
        from_currency: Currency code of the amount.
        to_currency: Currency code to convert to.
    """
    per_usd = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 151.0, "CHF": 0.9, "CAD": 1.36, "AUD": 1.52,
               "CNY": 7.2, "INR": 83.0, "SEK": 10.6}
    return {"amount": round(amount / per_usd[from_currency] * per_usd[to_currency], 2), "currency": to_currency}


def create_calendar_event(title: str, date: str, start_time: str | None = None, duration_minutes: int = 60) -> dict:
    """Add an event to the user's calendar.

    Args:
        title: Short title of the event.
        date: Day of the event, as YYYY-MM-DD.
        start_time: Start time as HH:MM (24-hour); omit for an all-day event.
        duration_minutes: Length of the event in minutes.
    """
    return {"status": "created", "title": title, "date": date, "start_time": start_time,
            "duration_minutes": duration_minutes}


def draft_email(to: str, subject: str, body: str) -> dict:
    """Write an email draft for the user to review and send.

    Args:
        to: Recipient email address.
        subject: Subject line.
        body: Text of the email.
    """
    return {"status": "draft saved", "to": to, "subject": subject, "chars": len(body)}


def web_search(query: str, max_results: int = 5) -> dict:
    """Search the web and return the top results.

    Args:
        query: What to search for.
        max_results: How many results to return.
    """
    return {"query": query, "results": [], "note": "offline: no results"}


_OPERATORS: dict[type[ast.AST], Callable[..., float]] = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow, ast.Mod: operator.mod, ast.USub: operator.neg, ast.UAdd: operator.pos}


def _arithmetic(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        if isinstance(node.op, ast.Pow) and abs(_arithmetic(node.right)) > 100:
            raise ValueError("exponent too large")
        return _OPERATORS[type(node.op)](_arithmetic(node.left), _arithmetic(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_arithmetic(node.operand))
    raise ValueError("only numbers and + - * / % ** ( ) are allowed")


def calculate(expression: str) -> dict:
    """Evaluate an arithmetic expression such as "(12 + 3) * 4".

    Args:
        expression: The arithmetic expression, with numbers and + - * / % ** ( ).
    """
    return {"expression": expression, "result": _arithmetic(ast.parse(expression, mode="eval").body)}


def set_reminder(message: str, time: str) -> dict:
    """Remind the user of something at a given time.

    Args:
        message: What to remind the user of.
        time: When, as HH:MM (24-hour).
    """
    return {"status": "scheduled", "message": message, "time": time}


def translate_text(text: str, target_language: Language) -> dict:
    """Translate a text into another language.

    Args:
        text: The text to translate.
        target_language: The language to translate into.
    """
    return {"text": text, "target_language": target_language, "note": "offline: translation unavailable"}


def get_stock_quote(symbol: str) -> dict:
    """Get the latest price of a stock by its ticker symbol.

    Args:
        symbol: Ticker symbol, e.g. "AAPL".
    """
    return {"symbol": symbol.upper(), "price": None, "note": "offline: no market data"}


def search_flights(origin: str, destination: str, date: str, passengers: int = 1) -> dict:
    """Search for flights between two cities on a date.

    Args:
        origin: Departure city.
        destination: Arrival city.
        date: Day of travel, as YYYY-MM-DD.
        passengers: Number of passengers.
    """
    return {"origin": origin, "destination": destination, "date": date, "passengers": passengers, "flights": []}


def add_todo(title: str, priority: Priority = "medium", due_date: str | None = None) -> dict:
    """Add an item to the user's to-do list.

    Args:
        title: What has to be done.
        priority: How urgent it is.
        due_date: Deadline as YYYY-MM-DD, if any.
    """
    return {"status": "added", "title": title, "priority": priority, "due_date": due_date}


def get_directions(origin: str, destination: str, mode: TravelMode = "driving") -> dict:
    """Get directions from one place to another.

    Args:
        origin: Starting point.
        destination: Where to go.
        mode: How to travel.
    """
    return {"origin": origin, "destination": destination, "mode": mode, "steps": []}


def send_text_message(recipient: str, message: str) -> dict:
    """Send a text message to a contact.

    Args:
        recipient: Contact name or phone number.
        message: Text of the message.
    """
    return {"status": "sent", "recipient": recipient, "chars": len(message)}


def set_timer(minutes: int, label: str | None = None) -> dict:
    """Start a countdown timer.

    Args:
        minutes: Length of the timer in minutes.
        label: Optional name for the timer.
    """
    return {"status": "running", "minutes": minutes, "label": label}


def control_light(room: str, state: SwitchState, brightness: int | None = None) -> dict:
    """Switch the lights of a room on or off, optionally at a brightness.

    Args:
        room: The room, e.g. "kitchen".
        state: Whether the light should be on or off.
        brightness: Brightness in percent (0-100).
    """
    return {"room": room, "state": state, "brightness": brightness}


def get_news(topic: str, count: int = 5) -> dict:
    """Get the latest news headlines about a topic.

    Args:
        topic: The subject of the news.
        count: How many headlines to return.
    """
    return {"topic": topic, "headlines": [], "note": "offline: no news feed"}


def define_word(word: str) -> dict:
    """Look up the dictionary definition of a word.

    Args:
        word: The word to define.
    """
    return {"word": word, "definition": None, "note": "offline: no dictionary"}


SUITE_FUNCTIONS = (
    get_weather, get_local_time, convert_units, convert_currency, create_calendar_event, draft_email, web_search,
    calculate, set_reminder, translate_text, get_stock_quote, search_flights, add_todo, get_directions,
    send_text_message, set_timer, control_light, get_news, define_word,
)

# The built-in tools the suite covers; the persona variants that only wrap prompt_expert are left out.
SUITE_BUILTINS = ("extract_data", "analyze_sentiment", "extract_invoice_data", "store_invoice", "prompt_expert",
                  "perform_code_review", "write_feature_announcement")


def suite_registry() -> ToolRegistry:
    """The suite's tools: the realistic ones above plus the built-ins the suite covers."""
    registry = builtin_registry().select(SUITE_BUILTINS)
    for function in SUITE_FUNCTIONS:
        registry.register(function, tags=["suite"], side_effects=function in (draft_email, send_text_message))
    return registry
