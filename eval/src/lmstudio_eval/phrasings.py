"""How people ask for each suite tool: instruction templates and the values that fill them.

Every tool has its own ``train`` and ``heldout`` templates, and every free-text value pool is split the same
way, so a held-out task is phrased in words, and names values, that training never saw. Enumerated values
(units, currencies, languages) are shared: the schema fixes them.

A template names its slots ``{argument}``; a slot filled from a pool of ``(shown, value)`` pairs puts
``shown`` in the text and ``value`` in the expected arguments. An optional argument a template does not
mention is left out of the expected call (it equals its default).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

Value = Any
# (rng, split) -> (shown, value); a joint draw fills several slots: dicts of slot -> shown, slot -> value.
Draw = Callable[[random.Random, str], tuple[Any, Value]]


def pool(*items: Any, shared: bool = False) -> Draw:
    """A value pool. Items are values or ``(shown, value)`` pairs; unless ``shared``, every third item is
    held out (never drawn for training)."""
    pairs = [item if isinstance(item, tuple) else (str(item), item) for item in items]
    if shared:
        parts = {"train": pairs, "heldout": pairs}
    else:
        parts = {"train": [p for i, p in enumerate(pairs) if i % 3 != 2],
                 "heldout": [p for i, p in enumerate(pairs) if i % 3 == 2]}

    def draw(rng: random.Random, split: str) -> tuple[str, Value]:
        return rng.choice(parts[split])

    return draw


def number(low: float, high: float, *, decimals: int = 0) -> Draw:
    def draw(rng: random.Random, split: str) -> tuple[str, Value]:
        if decimals and rng.random() < 0.4:
            value: Value = round(rng.uniform(low, high), decimals)
        else:
            value = rng.randint(int(low), int(high))
        return str(value), value

    return draw


def iso_date(rng: random.Random, split: str) -> tuple[str, Value]:
    year = 2025 if split == "train" else 2026
    value = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return value, value


def clock(rng: random.Random, split: str) -> tuple[str, Value]:
    value = f"{rng.randint(6, 22):02d}:{rng.choice([0, 0, 15, 30, 45]):02d}"
    return value, value


UNIT_SHOWN = {"kilometers": ("km", "kilometers"), "centimeters": ("cm", "centimeters"), "kilograms": ("kg", "kilograms"),
              "pounds": ("lbs", "pounds"), "liters": ("liters", "litres")}
UNIT_GROUPS = (("kilometers", "miles", "meters", "feet", "inches", "centimeters"), ("kilograms", "pounds"),
               ("liters", "gallons"))


def unit_pair(rng: random.Random, split: str) -> tuple[dict[str, str], dict[str, str]]:
    """Two different units of one dimension (a joint draw for from_unit and to_unit), sometimes abbreviated."""
    group = rng.choice(UNIT_GROUPS + UNIT_GROUPS[:1])
    source, target = rng.sample(group, 2)
    shown = {"from_unit": rng.choice(UNIT_SHOWN.get(source, (source,))), "to_unit": target}
    return shown, {"from_unit": source, "to_unit": target}


@dataclass
class Phrasing:
    tool: str
    slots: dict[str, Draw]
    train: list[str]
    heldout: list[str]
    # Extra (slot -> argument value) rules, e.g. an extract_data field list shown in words.
    derive: Callable[[dict[str, Value]], dict[str, Value]] | None = field(default=None)

    def templates(self, split: str) -> list[str]:
        return self.train if split == "train" else self.heldout

    def render(self, template: str, rng: random.Random, split: str) -> tuple[str, dict[str, Value]]:
        """The instruction and the expected arguments for one draw of the slots."""
        for _ in range(20):
            shown: dict[str, str] = {}
            values: dict[str, Value] = {}
            joint: dict[int, tuple[Any, Any]] = {}  # a pool of dicts fills several slots from one draw
            for slot, draw in self.slots.items():
                if "{" + slot + "}" not in template:
                    continue
                text, value = joint.get(id(draw)) or draw(rng, split)
                if isinstance(text, dict):
                    joint[id(draw)] = (text, value)
                    text, value = text[slot], value[slot]
                shown[slot], values[slot] = text, value
            if "origin" not in values or values["origin"] != values.get("destination"):
                break
        arguments = self.derive(values) if self.derive else values
        return template.format(**shown), arguments


CITIES = pool("Paris", "Tokyo", "Lyon", "Berlin", "Oslo", "Madrid", "Nairobi", "Toronto", "Lisbon", "Seoul",
              "Chicago", "Vienna", "Cairo", "Lima", "Dublin", "Prague", "Denver", "Osaka", "Mumbai", "Sydney",
              "Quebec", "Marseille", "Boston", "Hanoi", "Zurich", "Austin", "Athens", "Bogota", "Helsinki", "Perth")
PEOPLE = pool("Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kenji", "Lea",
              "Mia", "Noah", "Olga", "Pedro", "Rosa", "Sam")
EMAILS = pool("bob@example.com", "anna.schmidt@example.org", "team@acme.io", "j.lee@example.net",
              "hr@company.com", "mark@startup.dev", "lisa.chen@example.com", "sales@shop.example",
              "prof.martin@uni.edu", "dana@example.co.uk", "ops@example.io", "kim@family.example")
SUBJECTS = pool("Lunch on Friday", "Project update", "Invoice question", "Meeting notes", "Holiday plans",
                "Quarterly report", "Welcome aboard", "Budget review", "Tickets for Saturday")
BODIES = pool("See you at noon.", "The draft is attached, please review it by Monday.",
              "Can you send me the latest figures?", "Thanks for your help yesterday.",
              "I will be out of office next week.", "Let's move our call to Thursday.",
              "Please confirm the order.", "Happy birthday and all the best!", "The server is back online.")
EVENTS = pool("Dentist appointment", "Team standup", "Dinner with Sarah", "Yoga class", "Budget meeting",
              "Flight to Rome", "Parent-teacher meeting", "Car service", "Book club", "Interview with Acme",
              "Piano lesson", "Doctor visit")
QUERIES = pool("best hiking trails near Denver", "how to repot a cactus", "python asyncio tutorial",
               "cheap flights to Lisbon", "history of the Eiffel Tower", "vegan lasagna recipe",
               "electric car tax credit", "symptoms of dehydration", "how to tie a bowline knot",
               "train times Paris to Brussels", "best budget laptop 2025", "how tides work")
EXPRESSIONS = pool("12 * 7", "(15 + 27) / 3", "2 ** 10", "19.5 * 4", "1000 - 387", "45 % 7", "3.14 * 2 * 5",
                   "(8 + 2) * (5 - 3)", "144 / 12", "250 * 0.15", "7 * 8 + 6", "99 + 1")
REMINDERS = pool("call mom", "take the medicine", "water the plants", "pick up the kids", "submit the report",
                 "pay the rent", "buy milk", "stretch", "book the tickets", "feed the cat", "check the oven",
                 "join the meeting")
PHRASES = pool("Good morning", "Where is the train station?", "Thank you very much", "I would like a coffee",
               "How much does this cost?", "See you tomorrow", "The meeting is cancelled", "Happy new year",
               "I am allergic to peanuts", "Can you help me?", "The weather is nice today", "Where is the toilet?")
LANGUAGES = pool("English", "French", "German", "Spanish", "Italian", "Portuguese", "Japanese", "Chinese",
                 shared=True)
TICKERS = pool("AAPL", "MSFT", "GOOGL", "TSLA", "AMZN", "NVDA", "META", "NFLX", "IBM", "INTC", "ORCL", "AMD")
TODOS = pool("renew passport", "clean the garage", "file taxes", "call the plumber", "buy a birthday gift",
             "update the resume", "return library books", "schedule a haircut", "back up the laptop",
             "fix the bike", "order new glasses", "plan the trip")
ROOMS = pool("kitchen", "bedroom", "living room", "office", "bathroom", "garage", "hallway", "garden", "basement")
TOPICS = pool("climate change", "football", "artificial intelligence", "the stock market", "space exploration",
              "electric cars", "elections", "healthcare", "renewable energy", "cryptocurrency", "tennis",
              "housing prices")
WORDS = pool("serendipity", "ephemeral", "ubiquitous", "meticulous", "gregarious", "laconic", "pragmatic",
             "resilient", "quixotic", "ambiguous", "candid", "lucid")
MESSAGES = pool("I'm running ten minutes late", "Dinner is ready", "Can you pick me up at six?",
                "Happy birthday!", "Don't forget the keys", "Call me when you land", "The package arrived",
                "Meeting moved to 3pm", "Good luck today")
TIMER_LABELS = pool("pasta", "laundry", "tea", "break", "eggs", "workout", "pizza", "nap", "bread")
REVIEWS = pool("The food was cold and the waiter was rude.", "Absolutely loved this phone, best purchase ever!",
               "The package arrived on Tuesday.", "Worst customer service I have ever had.",
               "Great hotel with a friendly staff and a lovely view.", "The movie starts at eight.",
               "I'm so disappointed with this product, it broke in a day.", "This app makes my life so much easier.",
               "The meeting room is on the second floor.")
INVOICE_TEXTS = pool("Invoice #A-1043, date 2024-03-02, ACME Ltd, total $310.00",
                     "INVOICE No. 88-219 issued 2024-11-15 by Blue Fox GmbH. Amount due: EUR 1,250.00",
                     "Reference INV-5521 / 2025-01-09 / Northwind Traders / Total 89.90",
                     "Bill 7781 from City Plumbing, 2024-06-30, 2 hours labour at 60 = 120.00",
                     "Invoice 2024-0042, Design Studio Ltd, 2024-08-01, total due 2,400 GBP",
                     "Tax invoice T-19 dated 2025-02-14, Corner Bakery, 12 croissants, total 18.00",
                     "Invoice no. 301 - Green Garden Services - 2024-09-12 - lawn care - total 75.00 USD",
                     "INV/2025/117, issued 2025-04-02 by Nordic Print AB, 500 flyers, sum 2,150 SEK",
                     "Invoice Q-4409 from Lumen Electric, dated 2024-10-21, total amount 640.50",
                     "Receipt and invoice R-88, 2025-05-30, Harbor Cafe, catering, total 410.00",
                     "Invoice #7, 2024-02-29, Freelance Translation, 3 pages, total 180 EUR",
                     "Invoice HX-2210 dated 2025-07-07, Helix Labs, consulting, amount due 3,300.00")
INVOICES = pool(*((json.dumps(invoice), invoice) for invoice in (
                {"invoice_number": "INV-1001", "total_amount": 250.0},
                {"invoice_number": "A-77", "date": "2024-05-01", "total_amount": 99.5},
                {"invoice_number": "INV-2044", "date": "2025-01-15", "total_amount": 1200},
                {"invoice_number": "B-310", "total_amount": 45.25},
                {"invoice_number": "INV-9", "date": "2024-12-24", "total_amount": 10},
                {"invoice_number": "C-5521", "date": "2025-03-03", "total_amount": 760.8},
                {"invoice_number": "INV-3017", "total_amount": 15.75},
                {"invoice_number": "D-12", "date": "2025-06-10", "total_amount": 3400},
                {"invoice_number": "INV-550", "date": "2024-09-09", "total_amount": 82.4},
                {"invoice_number": "E-901", "total_amount": 5000},
                {"invoice_number": "INV-7788", "date": "2025-02-28", "total_amount": 318.6},
                {"invoice_number": "F-44", "date": "2024-04-04", "total_amount": 64})))
EXPERT_QUESTIONS = pool(*(({"description_of_expert": who, "prompt": what}, {"description_of_expert": who, "prompt": what})
                          for who, what in (
    ("senior tax lawyer", "Can I deduct my home office?"),
    ("experienced pediatric nurse", "How do I bring down a fever safely?"),
    ("professional chef", "How do I keep risotto creamy?"),
    ("cloud security engineer", "How should I rotate access keys?"),
    ("marathon coach", "How do I taper before a race?"),
    ("wine sommelier", "Which wine goes with salmon?"),
    ("structural engineer", "Is a load-bearing wall safe to remove?"),
    ("data privacy consultant", "Do I need consent to store emails?"),
    ("child psychologist", "How do I help a shy child make friends?"),
    ("certified financial planner", "How much should I keep as an emergency fund?"),
    ("veterinarian", "Is chocolate dangerous for dogs?"),
    ("landscape architect", "Which trees give shade fast?"),
    ("sleep researcher", "Why do I wake up at 3am?"),
    ("patent attorney", "Can I patent a recipe?"),
    ("database administrator", "When should I add an index?"),
)))
CODE = pool("def add(a, b): return a+b", "for i in range(len(xs)): print(xs[i])",
            "x = eval(input())", "def avg(xs): return sum(xs) / len(xs)",
            "if user == None: return False", "data = open('f.txt').read()",
            "password = 'hunter2'", "while True: pass", "l = [x for x in range(10) if x % 2 == 0]",
            "def f(x=[]): x.append(1); return x", "except: pass", "from os import *", "total = total + 1 if total else 1")
FEATURES = pool("dark mode in the mobile app", "two-factor login", "offline sync for notes", "CSV export of reports",
                "a faster search index", "team workspaces", "voice commands", "scheduled backups",
                "single sign-on")
AUDIENCES = pool("technical", "business", "general", shared=True)
EXTRACTIONS = pool(*(({"text": text, "schema": words}, {"text": text, "schema": schema}) for text, words, schema in (
    ("John Smith is 42 and lives in Leeds.", "the name and the age", {"name": "string", "age": "number"}),
    ("Acme Corp opened its office in Berlin in 2019.", "the company and the city", {"company": "string", "city": "string"}),
    ("The blue kettle costs 29.99 at the corner shop.", "the product and the price", {"product": "string", "price": "number"}),
    ("Inception came out in 2010.", "the title and the year", {"title": "string", "year": "number"}),
    ("Reach Maria at maria@example.com or 555-0134.", "the email and the phone", {"email": "string", "phone": "string"}),
    ("On 2024-07-04 we paid 1300 for rent.", "the date and the amount", {"date": "string", "amount": "number"}),
    ("Dr. Ana Costa, 37, joined Globex in Porto.", "the name and the age", {"name": "string", "age": "number"}),
    ("The Matrix, released in 1999, changed action films.", "the title and the year", {"title": "string", "year": "number"}),
    ("Order the red lamp for 45 dollars.", "the product and the price", {"product": "string", "price": "number"}),
    ("Call Tom Baker on 555-0199 or tom@bakery.example.", "the email and the phone", {"email": "string", "phone": "string"}),
    ("Initech moved its headquarters to Austin.", "the company and the city", {"company": "string", "city": "string"}),
    ("Lea Dubois, aged 29, is our new designer.", "the name and the age", {"name": "string", "age": "number"}),
    ("The invoice from 2025-01-31 was for 870 euros.", "the date and the amount", {"date": "string", "amount": "number"}),
    ("Spirited Away won the award in 2003.", "the title and the year", {"title": "string", "year": "number"}),
    ("The noise-cancelling headphones are 199 today.", "the product and the price", {"product": "string", "price": "number"}),
)))


PHRASINGS: list[Phrasing] = [
    Phrasing("get_weather", {"city": CITIES, "unit": pool(("Fahrenheit", "fahrenheit"), ("Celsius", "celsius"),
                                                          shared=True)},
             train=["What's the weather in {city}?", "How warm is it in {city} right now?",
                    "Weather for {city} in {unit}, please.", "Is it raining in {city}?",
                    "Tell me the current temperature in {city} in {unit}.", "I'm flying to {city}, how's the weather?",
                    "Check the weather in {city}.", "Do I need a jacket in {city} today?"],
             heldout=["Could you look up the weather conditions in {city}?",
                      "Give me {city}'s current temperature in {unit}.", "What's it like outside in {city}?"]),
    Phrasing("get_local_time", {"city": CITIES},
             train=["What time is it in {city}?", "Current time in {city}?", "Tell me the local time in {city}.",
                    "Is it late in {city} right now? What's the time there?", "What's the clock saying in {city}?",
                    "I need to call someone in {city}; what time is it there?"],
             heldout=["Could you check what time it currently is in {city}?", "Local time for {city}, please.",
                      "How late is it over in {city}?"]),
    Phrasing("convert_units", {"value": number(1, 500, decimals=1), "from_unit": unit_pair, "to_unit": unit_pair},
             train=["Convert {value} {from_unit} to {to_unit}.", "How many {to_unit} is {value} {from_unit}?",
                    "{value} {from_unit} in {to_unit}?", "What is {value} {from_unit} expressed in {to_unit}?",
                    "Change {value} {from_unit} into {to_unit}.", "I ran {value} {from_unit}. How much is that in {to_unit}?"],
             heldout=["Please turn {value} {from_unit} into {to_unit}.", "How much is {value} {from_unit} in {to_unit}?",
                      "Express {value} {from_unit} as {to_unit}."]),
    Phrasing("convert_currency",
             {"amount": number(5, 5000, decimals=2),
              "from_currency": pool("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR", "SEK", shared=True),
              "to_currency": pool("EUR", "USD", "JPY", "GBP", "CAD", "CHF", "SEK", "AUD", "INR", "CNY", shared=True)},
             train=["Convert {amount} {from_currency} to {to_currency}.", "How much is {amount} {from_currency} in {to_currency}?",
                    "{amount} {from_currency} to {to_currency}, please.", "What do I get for {amount} {from_currency} in {to_currency}?",
                    "Exchange {amount} {from_currency} into {to_currency}.", "I have {amount} {from_currency}; what's that in {to_currency}?"],
             heldout=["What is {amount} {from_currency} worth in {to_currency}?",
                      "Please change {amount} {from_currency} to {to_currency}.",
                      "Tell me how many {to_currency} I'd get for {amount} {from_currency}."]),
    Phrasing("create_calendar_event",
             {"title": EVENTS, "date": iso_date, "start_time": clock,
              "duration_minutes": pool(30, 45, 90, 120, shared=True)},
             train=["Add '{title}' to my calendar on {date}.", "Schedule {title} on {date} at {start_time}.",
                    "Put {title} in my calendar for {date} at {start_time}, {duration_minutes} minutes.",
                    "Create a calendar event called {title} on {date}.", "Book {title} for {date} at {start_time}.",
                    "New event: {title}, {date}, {start_time}."],
             heldout=["Please block {date} at {start_time} for {title}.", "Add an event named {title} on {date}.",
                      "Set up {title} on {date} at {start_time} for {duration_minutes} minutes."]),
    Phrasing("draft_email", {"to": EMAILS, "subject": SUBJECTS, "body": BODIES},
             train=["Email {to} with the subject '{subject}' saying: {body}",
                    "Draft an email to {to}, subject '{subject}', body: {body}",
                    "Write to {to} about '{subject}': {body}", "Send {to} an email titled '{subject}' that says {body}",
                    "Compose a mail for {to}. Subject: {subject}. Message: {body}"],
             heldout=["Please prepare an email for {to} with subject '{subject}' and the text: {body}",
                      "Can you write {to} an email? Subject '{subject}', content: {body}",
                      "Mail {to}, subject '{subject}': {body}"]),
    Phrasing("web_search", {"query": QUERIES, "max_results": pool(3, 10, 20, shared=True)},
             train=["Search the web for {query}.", "Look up {query} online.", "Find me {max_results} results about {query}.",
                    "Google {query}.", "Can you search for {query}?", "Search online: {query}"],
             heldout=["Do a web search on {query}.", "Find pages about {query}, top {max_results} only.",
                      "Search the internet for {query}, please."]),
    Phrasing("calculate", {"expression": EXPRESSIONS},
             train=["Calculate {expression}.", "What is {expression}?", "Compute {expression} for me.",
                    "Work out {expression}.", "How much is {expression}?", "Evaluate {expression}."],
             heldout=["Could you calculate {expression}?", "What does {expression} come to?",
                      "Solve {expression}, please."]),
    Phrasing("set_reminder", {"message": REMINDERS, "time": clock},
             train=["Remind me to {message} at {time}.", "Set a reminder at {time} to {message}.",
                    "At {time}, remind me to {message}.", "Don't let me forget to {message} at {time}.",
                    "Reminder: {message} at {time}."],
             heldout=["Please remind me at {time} to {message}.", "I need a reminder to {message} at {time}.",
                      "Ping me at {time} so I {message}."]),
    Phrasing("translate_text", {"text": PHRASES, "target_language": LANGUAGES},
             train=["Translate '{text}' into {target_language}.", "How do you say '{text}' in {target_language}?",
                    "Put '{text}' in {target_language}.", "Translate to {target_language}: {text}",
                    "What is '{text}' in {target_language}?", "I need '{text}' translated to {target_language}."],
             heldout=["Please render '{text}' in {target_language}.", "Say '{text}' in {target_language}.",
                      "Give me the {target_language} for '{text}'."]),
    Phrasing("get_stock_quote", {"symbol": TICKERS},
             train=["What's the price of {symbol} stock?", "Get me a quote for {symbol}.", "How is {symbol} trading?",
                    "Stock price of {symbol}?", "Check {symbol} shares.", "Look up the ticker {symbol}."],
             heldout=["How much is one share of {symbol} right now?", "Latest quote for {symbol}, please.",
                      "What is {symbol} trading at?"]),
    Phrasing("search_flights",
             {"origin": CITIES, "destination": CITIES, "date": iso_date, "passengers": pool(2, 3, 4, shared=True)},
             train=["Find flights from {origin} to {destination} on {date}.",
                    "Search flights {origin} to {destination}, {date}, for {passengers} people.",
                    "I need to fly from {origin} to {destination} on {date}.",
                    "Any flights from {origin} to {destination} on {date}?",
                    "Look for {passengers} seats from {origin} to {destination} on {date}."],
             heldout=["Show me flights leaving {origin} for {destination} on {date}.",
                      "We are {passengers} travellers going from {origin} to {destination} on {date}; find flights.",
                      "Flights {origin} to {destination} on {date}?"]),
    Phrasing("add_todo",
             {"title": TODOS, "priority": pool("low", "high", "medium", shared=True), "due_date": iso_date},
             train=["Add '{title}' to my to-do list.", "Put {title} on my todo list with {priority} priority.",
                    "New task: {title}, due {due_date}.", "I have to {title}; add it to my list.",
                    "Add a {priority} priority task to {title}.", "Todo: {title} by {due_date}."],
             heldout=["Please note the task '{title}' on my list.", "Add {title} to my tasks, {priority} priority.",
                      "Put '{title}' on my to-do list, due on {due_date}."]),
    Phrasing("get_directions",
             {"origin": CITIES, "destination": CITIES, "mode": pool("walking", "cycling", "transit", shared=True)},
             train=["How do I get from {origin} to {destination}?", "Directions from {origin} to {destination}, {mode}.",
                    "Give me {mode} directions from {origin} to {destination}.", "Route from {origin} to {destination}?",
                    "Show me the way from {origin} to {destination}."],
             heldout=["What's the best way to travel from {origin} to {destination}?",
                      "I want to go from {origin} to {destination} by {mode}; give me directions.",
                      "Navigate from {origin} to {destination}."]),
    Phrasing("send_text_message", {"recipient": PEOPLE, "message": MESSAGES},
             train=["Text {recipient}: {message}", "Send a message to {recipient} saying '{message}'.",
                    "Tell {recipient} by SMS that {message}.", "Message {recipient}: '{message}'",
                    "Shoot {recipient} a text: {message}"],
             heldout=["Please send {recipient} the text '{message}'.", "SMS to {recipient}: {message}",
                      "Let {recipient} know by text: {message}"]),
    Phrasing("set_timer", {"minutes": pool(1, 3, 5, 10, 12, 15, 20, 25, 30, 45, 60, 90, shared=True),
                           "label": TIMER_LABELS},
             train=["Set a timer for {minutes} minutes.", "Start a {minutes} minute timer for the {label}.",
                    "Timer: {minutes} minutes.", "Count down {minutes} minutes for {label}.",
                    "Give me a {minutes}-minute timer."],
             heldout=["Please time {minutes} minutes.", "Start a timer of {minutes} minutes called {label}.",
                      "Set a {minutes} minute countdown."]),
    Phrasing("control_light",
             {"room": ROOMS, "state": pool("on", "off", shared=True), "brightness": pool(20, 40, 50, 75, 80, shared=True)},
             train=["Turn {state} the lights in the {room}.", "Switch the {room} light {state}.",
                    "Lights {state} in the {room}, please.", "Turn on the {room} lights at {brightness} percent.",
                    "Can you turn the {room} lights {state}?"],
             heldout=["Please switch {state} the {room} lights.", "Set the {room} light on at {brightness}% brightness.",
                      "I want the {room} lights {state}."],
             derive=lambda v: {**v, "state": "on"} if "brightness" in v else v),
    Phrasing("get_news", {"topic": TOPICS, "count": pool(3, 5, 10, shared=True)},
             train=["What's the latest news on {topic}?", "Show me {count} headlines about {topic}.",
                    "Any news about {topic}?", "Get news on {topic}.", "Top {count} stories on {topic}, please."],
             heldout=["Catch me up on the news about {topic}.", "Give me the {count} latest headlines on {topic}.",
                      "What happened recently with {topic}?"]),
    Phrasing("define_word", {"word": WORDS},
             train=["What does {word} mean?", "Define {word}.", "Give me the definition of {word}.",
                    "Meaning of the word {word}?", "Look up {word} in the dictionary."],
             heldout=["What is the meaning of '{word}'?", "Explain the word {word}.", "Dictionary definition of {word}, please."]),
    Phrasing("extract_data", {"text": EXTRACTIONS, "schema": EXTRACTIONS},
             train=["Extract {schema} from: {text}", "From the text '{text}', pull out {schema}.",
                    "Get {schema} from this sentence: {text}", "Read '{text}' and extract {schema}."],
             heldout=["Please find {schema} in the following text: {text}", "What are {schema} in '{text}'? Extract them."]),
    Phrasing("analyze_sentiment", {"text": REVIEWS},
             train=["What is the sentiment of '{text}'?", "Is this positive or negative: {text}",
                    "Analyze the sentiment: {text}", "How does this review feel? '{text}'",
                    "Classify the tone of: {text}"],
             heldout=["Tell me whether '{text}' is positive, negative or neutral.", "Sentiment check: {text}",
                      "Judge the mood of this text: {text}"]),
    Phrasing("extract_invoice_data", {"document_text": INVOICE_TEXTS},
             train=["Extract the invoice data from: {document_text}", "Read this invoice and pull out its details: {document_text}",
                    "Parse this invoice: {document_text}", "Get the invoice number, date and total from: {document_text}"],
             heldout=["Please process this invoice text: {document_text}", "Pull the invoice fields out of this document: {document_text}"]),
    Phrasing("store_invoice", {"invoice_data": INVOICES},
             train=["Store this invoice: {invoice_data}", "Save the invoice {invoice_data} to the database.",
                    "Put this invoice in the invoice database: {invoice_data}", "Record the invoice {invoice_data}."],
             heldout=["Please file this invoice in the database: {invoice_data}", "Keep this invoice on record: {invoice_data}"]),
    Phrasing("prompt_expert", {"description_of_expert": EXPERT_QUESTIONS, "prompt": EXPERT_QUESTIONS},
             train=["Ask a {description_of_expert}: {prompt}", "I want a {description_of_expert}'s answer to this: {prompt}",
                    "Consult an expert, a {description_of_expert}, on: {prompt}", "As a {description_of_expert}, answer: {prompt}"],
             heldout=["Get the view of a {description_of_expert} on this question: {prompt}",
                      "Have a {description_of_expert} answer this: {prompt}"]),
    Phrasing("perform_code_review", {"code": CODE},
             train=["Review this code: {code}", "Can you do a code review of: {code}", "Check this code for problems: {code}",
                    "Give me feedback on this snippet: {code}"],
             heldout=["Please review the following code: {code}", "What could be improved in this code? {code}"]),
    Phrasing("write_feature_announcement", {"feature_details": FEATURES, "audience": AUDIENCES},
             train=["Write an announcement of {feature_details} for a {audience} audience.",
                    "Announce {feature_details} to our {audience} readers.",
                    "Draft a feature announcement for {feature_details}, audience: {audience}.",
                    "Tell {audience} users about {feature_details} in an announcement."],
             heldout=["Please write a launch note about {feature_details} for {audience} readers.",
                      "Create a {audience} announcement for {feature_details}."]),
]
