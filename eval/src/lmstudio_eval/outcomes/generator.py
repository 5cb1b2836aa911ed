"""The outcome evaluation's generator: agent tasks, each worded five ways, judged by what the run did.

Deterministic from a seed (``python -m lmstudio_eval.outcomes.generator`` writes the ``dev`` and ``test`` splits
with their seeds into the package's data). Its tools are :mod:`.world`'s; its vocabulary (domains, verbs, nouns,
value forms, identifier shapes) is its own and shares nothing with the older corpus generator (a test checks the
tool names and identifier shapes). Task kinds:

- ``single``: one tool call with exact arguments, near-neighbour tools of the same domain offered beside it;
- ``restraint``: no offered tool fits (near misses: the domain's other tools; or a general question);
  success is no side-effect tool run and an answer in words;
- ``answer``: a read-only tool whose result the final answer must state;
- ``goal``: the agent's goals name the steps (1. ... 2. ... 3. confirm); the request is an ordinary sentence that
  does not; two chained tools, the second needing a value the first returned, must both run, in order;
- ``invoice``: the notebook's ``create_invoice_agent()`` goals verbatim, its two tools, a generated invoice
  inline in the request or passed as the document ``invoice``.

Each task has five wordings: a question, a polite request, a bare imperative, one with unrelated context before
it, and an informal one with a typo. Values are written the ways people write them (dates written out, amounts
with currency words, counts in words); the gold arguments hold what the tool takes.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from collections.abc import Callable, Mapping, Sequence

from lmstudio_agent.builtins import INVOICE_GOALS
from lmstudio_agent.agent.tools import ActionContext
from .invoices import make_invoice
from .world import FUNCTIONS, World, build_tool

GENERATOR_VERSION = "outcomes-1"
SPLIT_SEEDS = {"dev": 22_3101, "test": 22_7919}
STYLES = ("question", "polite", "imperative", "context", "informal")
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MANIFEST = "outcomes_manifest.json"

# The notebook's create_invoice_agent() goals, verbatim (docs/reference/agent-notebook.md): the library's own
# INVOICE_GOALS, which are that text; the checker compares them with the notebook's text, whitespace stripped.
NOTEBOOK_INVOICE_GOALS = INVOICE_GOALS

# ------------------------------------------------------------------------------------------- values

APIARIES = ("Willow Field", "Heather Bank", "Old Orchard", "Chalk Hill", "Mill Pond", "Gorse Common")
QUEEN_STATES = ("laying", "missing", "superseded", "virgin", "drone-laying")
BREEDS = ("carniolan", "italian", "buckfast", "caucasian")
FIRST = ("ada", "bo", "chidi", "dora", "emeka", "fenna", "gus", "hana", "ines", "jory", "kofi", "lotte", "milo",
         "noor", "oona", "pia", "quinn", "rafa", "sana", "tove")
LAST = ("okafor", "lindqvist", "moreau", "tanaka", "brennan", "silva", "novak", "haddad", "kowalski", "ferreira")
MAIL_HOSTS = ("example.org", "example.net", "example.com", "mail.example.org")
VARIETIES = ("cherokee-purple-tomato", "lemon-cucumber", "golden-bantam-corn", "dragon-tongue-bean",
             "red-russian-kale", "moon-and-stars-melon", "scarlet-runner-bean", "bulls-blood-beet",
             "purple-podded-pea", "blue-hubbard-squash", "painted-mountain-corn", "tigger-melon")
DRAWERS = tuple(f"{row}{n}" for row in "ABCDEFG" for n in range(1, 10))
TARGETS = ("Andromeda Galaxy", "Orion Nebula", "Crab Nebula", "Whirlpool Galaxy", "Pleiades", "Ring Nebula",
           "Saturn", "Jupiter", "Triangulum Galaxy", "Eagle Nebula", "Sombrero Galaxy", "Hercules Cluster")
OBS_STATES = ("queued", "observed", "weather hold", "awaiting calibration")
SPECIMEN_LABELS = ("lichen", "liverwort", "bracket fungus", "moss", "slime mould", "fern", "horsetail")
KILN_STATES = ("loading", "cooling", "drying", "unloaded", "planned")
VOICES = ("soprano", "alto", "tenor", "bass")
CONCERTS = ("spring-gala-2027", "harvest-evensong", "winter-carols-2027", "summer-proms-night", "midsummer-madrigals")
REGIONS = ("Glen Affric", "Lake Bled", "Dartmoor", "Sarek", "Picos de Europa", "Lofoten")
TIERS = ("bronze", "silver", "gold", "platinum")
CURRENCY_WORDS = {"EUR": ("euros", "EUR", "€"), "USD": ("US dollars", "dollars", "USD", "$"),
                  "GBP": ("pounds", "pounds sterling", "GBP", "£")}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CONTEXTS = (
    "It has been raining all week and the car park is flooded again.",
    "My train was late this morning, so I'm catching up on everything.",
    "We have a new volunteer starting on Monday and I'm showing her around.",
    "The heating in the office broke yesterday, so it's a chilly day here.",
    "I just got back from two weeks away and my inbox is a mess.",
    "Our quarterly review is on Thursday, so things are hectic.",
    "The printer is jammed again, never mind that.",
    "Sorry for the short notice, I'm between two meetings.",
)


def ordinal(n: int) -> str:
    return f"{n}{'th' if 11 <= n % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def written_date(day: date, rng: random.Random) -> str:
    """A date the way people write it (never ISO)."""
    month = MONTHS[day.month - 1]
    return rng.choice((f"the {ordinal(day.day)} of {month} {day.year}", f"{month} {day.day}, {day.year}",
                       f"{day.day} {month} {day.year}", f"{WEEKDAYS[day.weekday()]} {day.day} {month} {day.year}",
                       f"{month} {ordinal(day.day)} {day.year}"))


def written_amount(amount: float, currency: str, rng: random.Random) -> str:
    number = f"{amount:.2f}" if amount != int(amount) else str(int(amount))
    word = rng.choice(CURRENCY_WORDS[currency])
    if word in ("€", "$", "£"):
        return f"{word}{number}"
    if word in ("EUR", "USD", "GBP"):
        return f"{number} {word}"
    return f"{number} {word}"


def written_count(n: int, rng: random.Random) -> str:
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) and rng.random() < 0.6 else str(n)


def written_packets(n: int, rng: random.Random) -> str:
    return f"{written_count(n, rng)} packet{'s' if n != 1 else ''}"


def email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)}.{rng.choice(LAST)}@{rng.choice(MAIL_HOSTS)}"


def some_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def some_day(rng: random.Random) -> date:
    return date(2027, 1, 1) + timedelta(days=rng.randint(0, 360))


# ------------------------------------------------------------------------------------------- wordings


def _typo(template: str, rng: random.Random) -> str:
    """The template with one typo (two letters swapped) in a plain word of five letters or more, never in a value
    (``{slot}``)."""
    words = [m for m in re.finditer(r"(?<![{\w])[a-z]{5,}(?![\w}])", template)]
    if not words:
        return template
    match = rng.choice(words)
    word = match.group()
    i = rng.randint(1, len(word) - 3)
    swapped = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return template[:match.start()] + swapped + template[match.end():]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def wordings(intent: dict[str, Any], slots: Callable[[], dict[str, str]], rng: random.Random) -> list[dict[str, str]]:
    """Five wordings of one request: each fills the slots afresh (values written differently) into a template of
    its style. ``intent`` has ``act`` (imperative verb phrases) and may have ``ask`` (questions)."""
    out = []
    for style in STYLES:
        act = rng.choice(intent["act"])
        if style == "question":
            template = rng.choice(intent.get("ask") or [f"Could you {act}?", f"Can you {act}?", f"Would you {act}?"])
        elif style == "polite":
            template = rng.choice([f"Please {act}.", f"I'd be grateful if you could {act}.", f"Kindly {act}, thank you."])
        elif style == "imperative":
            template = _cap(act) + "."
        elif style == "context":
            template = f"{rng.choice(CONTEXTS)} {_cap(act)}."
        else:
            template = _typo(rng.choice([f"hey, {act} pls", f"{act} asap thx", f"can u {act}", f"need you to {act} :)"]),
                             rng)
        out.append({"style": style, "instruction": template.format(**slots())})
    return out


# ------------------------------------------------------------------------------------------- families
# Each family returns (tools offered, state, gold calls, answer spec, intent templates, slot maker, goals).


def _hive_state(rng: random.Random, n: int) -> dict[str, dict[str, Any]]:
    numbers = rng.sample(range(100, 999), n)
    return {str(k): {"apiary": rng.choice(APIARIES), "queen_status": rng.choice(QUEEN_STATES),
                     "brood_frames": rng.randint(2, 9), "queen_breed": rng.choice(BREEDS),
                     "harvests": [{"day": "2027-05-02", "kg": float(rng.randint(3, 12))}] if rng.random() < 0.5 else []}
            for k in numbers}


HIVE_TOOLS = ["inspect_hive", "relocate_hive", "requeen_hive", "record_honey_harvest"]
WALLET_TOOLS = ["fetch_wallet", "credit_wallet", "debit_wallet"]
SEED_TOOLS = ["locate_seed_packet", "lend_seed_packets", "restock_seed_packets"]
OBS_TOOLS = ["lookup_observation", "reschedule_observation", "shelve_observation", "find_observation_by_target"]
SPECIMEN_TOOLS = ["classify_specimen", "tag_specimen"]
KILN_TOOLS = ["peek_kiln_load", "fire_kiln_load"]
CHOIR_TOOLS = ["query_singer", "enlist_singer"]
DOMAIN_TOOLS = (HIVE_TOOLS, WALLET_TOOLS, SEED_TOOLS, OBS_TOOLS, SPECIMEN_TOOLS, KILN_TOOLS, CHOIR_TOOLS)
DOMAIN_BY_KEY = {"hive": HIVE_TOOLS, "wallet": WALLET_TOOLS, "seed": SEED_TOOLS, "obs": OBS_TOOLS,
                 "specimen": SPECIMEN_TOOLS, "kiln": KILN_TOOLS, "choir": CHOIR_TOOLS}


def _wallet_state(rng: random.Random, n: int) -> dict[str, dict[str, Any]]:
    return {email(rng): {"balance": float(rng.randint(5, 90)) + rng.choice((0.0, 0.5, 0.25)),
                         "currency": rng.choice(("EUR", "USD", "GBP")), "level": rng.choice(("regular", "friend", "patron"))}
            for _ in range(n)}


def _seed_state(rng: random.Random, n: int) -> dict[str, dict[str, Any]]:
    return {slug: {"drawer": rng.choice(DRAWERS), "packets": rng.randint(6, 30), "loans": []}
            for slug in rng.sample(VARIETIES, n)}


def _obs_state(rng: random.Random, n: int) -> dict[str, dict[str, Any]]:
    return {some_uuid(rng): {"target": target, "night": some_day(rng).isoformat(), "status": rng.choice(OBS_STATES)}
            for target in rng.sample(TARGETS, n)}


def _specimen_state(rng: random.Random, n: int) -> dict[str, dict[str, Any]]:
    return {some_uuid(rng): {"predicted": rng.choice(SPECIMEN_LABELS), "confidence": rng.randint(55, 99) / 100,
                             "label": None} for _ in range(n)}


def _kiln_state(rng: random.Random, n: int) -> dict[str, dict[str, Any]]:
    return {str(k): {"status": rng.choice(KILN_STATES), "firing_day": some_day(rng).isoformat(), "pieces": rng.randint(4, 40)}
            for k in rng.sample(range(1000, 9999), n)}


def _choir_state(rng: random.Random, n: int) -> dict[str, dict[str, Any]]:
    return {email(rng): {"voice": rng.choice(VOICES), "concert_slug": rng.choice(CONCERTS)} for _ in range(n)}


STATE_MAKERS: dict[str, tuple[str, Callable[[random.Random, int], dict[str, dict[str, Any]]]]] = {
    "hive": ("hives", _hive_state), "wallet": ("wallets", _wallet_state), "seed": ("seeds", _seed_state),
    "obs": ("observations", _obs_state), "specimen": ("specimens", _specimen_state),
    "kiln": ("kiln_loads", _kiln_state), "choir": ("singers", _choir_state),
}


def _pick(rng: random.Random, table: dict[str, Any]) -> str:
    return rng.choice(sorted(table))


def _num(value: float) -> dict[str, Any]:
    return {"number": value}


def _text(value: str) -> dict[str, Any]:
    return {"text": value}


def _day(value: str) -> dict[str, Any]:
    return {"date": value}


def single_task(family: str, rng: random.Random) -> dict[str, Any]:
    """One call with exact arguments; the answer must state the call's result."""
    table, maker = STATE_MAKERS[{"relocate": "hive", "requeen": "hive", "harvest": "hive", "credit": "wallet",
                                 "debit": "wallet", "lend": "seed", "restock": "seed", "reschedule": "obs",
                                 "shelve": "obs", "tag": "specimen", "fire": "kiln", "enlist": "choir"}[family]]
    rows = maker(rng, 3)
    key = _pick(rng, rows)
    intent: dict[str, Any]
    slot: Callable[[], dict[str, str]]
    gold: dict[str, Any]
    if family == "relocate":
        apiary = rng.choice([a for a in APIARIES if a != rows[key]["apiary"]])
        gold = {"name": "relocate_hive", "arguments": {"hive_number": int(key), "apiary": apiary}}
        intent = {"act": ["carry hive {hive} over to {apiary}", "move hive number {hive} to the {apiary} apiary",
                          "take hive {hive} to {apiary}"],
                  "ask": ["Could hive {hive} go to the {apiary} apiary?", "Can you move hive {hive} to {apiary}?"]}
        slot = lambda: {"hive": key, "apiary": apiary}  # noqa: E731
        answer = [_text(apiary)]
    elif family == "requeen":
        breed = rng.choice(BREEDS)
        gold = {"name": "requeen_hive", "arguments": {"hive_number": int(key), "queen_breed": breed}}
        intent = {"act": ["give hive {hive} a new {breed} queen", "requeen hive {hive} with a {breed} queen",
                          "put a {breed} queen into hive {hive}"],
                  "ask": ["Could hive {hive} get a new {breed} queen?"]}
        slot = lambda: {"hive": key, "breed": breed}  # noqa: E731
        answer = [_text(breed)]
    elif family == "harvest":
        kg = rng.randint(4, 30) + rng.choice((0.0, 0.5))
        day = some_day(rng)
        gold = {"name": "record_honey_harvest", "arguments": {"hive_number": int(key), "kilograms": kg,
                                                              "harvest_day": day.isoformat()}}
        kg_text = f"{kg:g}"
        intent = {"act": ["note down {kg} of honey from hive {hive} on {day}",
                          "log a harvest of {kg} from hive {hive}, taken {day}",
                          "write down that hive {hive} gave {kg} of honey on {day}"],
                  "ask": ["We took {kg} of honey from hive {hive} on {day}, can you write that down?"]}
        slot = lambda: {"hive": key, "kg": rng.choice((f"{kg_text} kg", f"{kg_text} kilos", f"{kg_text} kilograms")),  # noqa: E731
                        "day": written_date(day, rng)}
        answer = []  # filled from the gold result (the season's total)
    elif family in ("credit", "debit"):
        currency = rows[key]["currency"]
        amount = float(rng.randint(2, 4 if family == "debit" else 40)) + rng.choice((0.0, 0.5))
        gold = {"name": f"{family}_wallet", "arguments": {"email": key, "amount": amount, "currency": currency}}
        if family == "credit":
            intent = {"act": ["top up the wallet of {email} by {amount}", "add {amount} to {email}'s wallet",
                              "put {amount} on the café wallet of {email}"],
                      "ask": ["Could {email} have {amount} added to their wallet?"]}
        else:
            intent = {"act": ["charge {amount} to the wallet of {email}", "take {amount} from {email}'s wallet for a lunch",
                              "pay {amount} out of {email}'s café wallet"],
                      "ask": ["Can you charge {email}'s wallet {amount} for their coffee?"]}
        slot = lambda: {"email": key, "amount": written_amount(amount, currency, rng)}  # noqa: E731
        answer = []  # the new balance
    elif family == "lend":
        packets = rng.randint(1, 5)
        borrower = email(rng)
        gold = {"name": "lend_seed_packets", "arguments": {"variety_slug": key, "borrower_email": borrower,
                                                           "packets": packets}}
        intent = {"act": ["lend {count} of {slug} to {email}", "give {email} {count} of {slug} on loan",
                          "let {email} borrow {count} of {slug}"],
                  "ask": ["Could {email} borrow {count} of {slug}?"]}
        slot = lambda: {"slug": key, "email": borrower, "count": written_packets(packets, rng)}  # noqa: E731
        answer = []  # packets left
    elif family == "restock":
        packets = rng.randint(3, 12)
        gold = {"name": "restock_seed_packets", "arguments": {"variety_slug": key, "packets": packets}}
        intent = {"act": ["add {count} of {slug} to the library", "restock {slug} with {count}",
                          "put {count} of {slug} on the shelf, freshly packed"],
                  "ask": ["We packed {count} more of {slug}, can you add them?"]}
        slot = lambda: {"slug": key, "count": written_packets(packets, rng)}  # noqa: E731
        answer = []
    elif family == "reschedule":
        day = some_day(rng)
        gold = {"name": "reschedule_observation", "arguments": {"observation_id": key, "night": day.isoformat()}}
        intent = {"act": ["move observation {id} to the night of {day}", "push observation request {id} to {day}",
                          "shift observation {id} so it runs on {day}"],
                  "ask": ["Can observation {id} be moved to {day}?"]}
        slot = lambda: {"id": key, "day": written_date(day, rng)}  # noqa: E731
        answer = [_day(day.isoformat())]
    elif family == "shelve":
        gold = {"name": "shelve_observation", "arguments": {"observation_id": key}}
        intent = {"act": ["shelve observation {id}", "put observation request {id} on the shelf for now",
                          "park observation {id}, we won't observe it this term"],
                  "ask": ["Could observation {id} be shelved for now?"]}
        slot = lambda: {"id": key}  # noqa: E731
        answer = [_text("shelved")]
    elif family == "tag":
        label = rng.choice(SPECIMEN_LABELS)
        gold = {"name": "tag_specimen", "arguments": {"specimen_id": key, "label": label}}
        intent = {"act": ["label specimen {id} as {label}", "mark specimen {id} as {label} by hand",
                          "write {label} on the record of specimen {id}"],
                  "ask": ["Can you label specimen {id} as {label}?"]}
        slot = lambda: {"id": key, "label": label}  # noqa: E731
        answer = [_text(label)]
    elif family == "fire":
        day = some_day(rng)
        gold = {"name": "fire_kiln_load", "arguments": {"load_number": int(key), "firing_day": day.isoformat()}}
        intent = {"act": ["fire kiln load {load} on {day}", "plan the firing of load {load} for {day}",
                          "put load number {load} in the kiln on {day}"],
                  "ask": ["Can load {load} be fired on {day}?"]}
        slot = lambda: {"load": key, "day": written_date(day, rng)}  # noqa: E731
        answer = [_day(day.isoformat())]
    else:  # enlist
        singer, voice, concert = email(rng), rng.choice(VOICES), rng.choice(CONCERTS)
        gold = {"name": "enlist_singer", "arguments": {"email": singer, "voice": voice, "concert_slug": concert}}
        intent = {"act": ["sign {email} up to sing {voice} at {concert}", "add {email} as a {voice} for {concert}",
                          "put {email} on the {concert} list as a {voice}"],
                  "ask": ["Could {email} sing {voice} at {concert}?"]}
        slot = lambda: {"email": singer, "voice": voice, "concert": concert}  # noqa: E731
        answer = [_text(concert)]
    domain = next(d for d in DOMAIN_TOOLS if gold["name"] in d)
    state = {table: rows}
    tools = _offer(domain, gold["name"], rng)
    return {"kind": "single", "family": family, "tools": tools, "state": state, "gold_calls": [gold],
            "answer": answer, "wordings": wordings(intent, slot, rng)}


def _offer(domain: list[str], needed: str | Sequence[str], rng: random.Random, exclude: tuple[str, ...] = ()) -> list[str]:
    """The domain's tools (the near neighbours) plus one or two tools of other domains, shuffled."""
    needed_list = [needed] if isinstance(needed, str) else list(needed)
    tools = [t for t in domain if t not in exclude]
    others = [t for d in DOMAIN_TOOLS if d is not domain for t in d if t not in exclude]
    tools += rng.sample(others, rng.randint(1, 2))
    for name in needed_list:
        if name not in tools:
            tools.append(name)
    rng.shuffle(tools)
    return tools


def answer_task(family: str, rng: random.Random) -> dict[str, Any]:
    """A read-only tool whose result the final answer must state."""
    table, maker = STATE_MAKERS[family]
    rows = maker(rng, 3)
    key = _pick(rng, rows)
    row = rows[key]
    gold: dict[str, Any]
    if family == "hive":
        gold = {"name": "inspect_hive", "arguments": {"hive_number": int(key)}}
        intent = {"act": ["tell me how the queen of hive {hive} is doing", "check the queen in hive {hive} for me"],
                  "ask": ["How is the queen of hive {hive} doing?", "What state is hive {hive}'s queen in?"]}
        slot = lambda: {"hive": key}  # noqa: E731
        answer = [_text(row["queen_status"])]
    elif family == "wallet":
        gold = {"name": "fetch_wallet", "arguments": {"email": key}}
        intent = {"act": ["tell me how much is left in the wallet of {email}", "give me the balance of {email}'s wallet"],
                  "ask": ["How much money is left in {email}'s café wallet?", "What's the wallet balance of {email}?"]}
        slot = lambda: {"email": key}  # noqa: E731
        answer = [_num(row["balance"])]
    elif family == "seed":
        gold = {"name": "locate_seed_packet", "arguments": {"variety_slug": key}}
        intent = {"act": ["tell me which drawer {slug} is kept in", "find the drawer holding {slug}"],
                  "ask": ["Which drawer holds {slug}?", "Where do we keep the {slug} seed?"]}
        slot = lambda: {"slug": key}  # noqa: E731
        answer = [_text(row["drawer"])]
    elif family == "obs":
        gold = {"name": "lookup_observation", "arguments": {"observation_id": key}}
        intent = {"act": ["tell me the status of observation {id}", "check where observation request {id} stands"],
                  "ask": ["What is the status of observation {id}?", "Where does observation {id} stand?"]}
        slot = lambda: {"id": key}  # noqa: E731
        answer = [_text(row["status"])]
    elif family == "specimen":
        gold = {"name": "classify_specimen", "arguments": {"specimen_id": key}}
        intent = {"act": ["classify specimen {id} and tell me what it is and how sure the classifier is",
                          "run the classifier on specimen {id} and give me its label and confidence"],
                  "ask": ["What is specimen {id}, and how confident is the classifier?"]}
        slot = lambda: {"id": key}  # noqa: E731
        answer = [_text(row["predicted"]), {"share": row["confidence"]}]
    elif family == "kiln":
        gold = {"name": "peek_kiln_load", "arguments": {"load_number": int(key)}}
        intent = {"act": ["tell me what state kiln load {load} is in", "check on kiln load {load}"],
                  "ask": ["What's the status of kiln load {load}?", "How is load {load} in the kiln getting on?"]}
        slot = lambda: {"load": key}  # noqa: E731
        answer = [_text(row["status"])]
    else:
        gold = {"name": "query_singer", "arguments": {"email": key}}
        intent = {"act": ["tell me which voice part {email} sings", "look at the choir record of {email} and say their voice"],
                  "ask": ["Which voice does {email} sing in the choir?", "What part does {email} sing?"]}
        slot = lambda: {"email": key}  # noqa: E731
        answer = [_text(row["voice"])]
    domain = next(d for d in DOMAIN_TOOLS if gold["name"] in d)
    state = {table: rows}
    return {"kind": "answer", "family": family, "tools": _offer(domain, gold["name"], rng), "state": state,
            "gold_calls": [gold], "answer": answer, "wordings": wordings(intent, slot, rng)}


def restraint_task(family: str, rng: random.Random) -> dict[str, Any]:
    """No offered tool fits: near misses of the domain's tools, or a general question."""
    domain_key = family if family in STATE_MAKERS else rng.choice(sorted(STATE_MAKERS))
    table, maker = STATE_MAKERS[domain_key]
    rows = maker(rng, 3)
    key = _pick(rng, rows)
    exclude: tuple[str, ...] = ()
    acts = {
        "hive": ["sell hive {key} to the beekeeper next door", "split hive {key} into two colonies",
                 "destroy hive {key}, it has foulbrood"],
        "wallet": ["close the café wallet of {key} for good", "freeze the wallet of {key}",
                   "move the whole balance of {key} to another customer"],
        "seed": ["rename {key} in the seed library", "throw away every packet of {key}, they are mouldy",
                 "photograph the {key} packets for the catalogue"],
        "obs": ["delete observation {key} entirely", "duplicate observation {key} for next month",
                "send the images of observation {key} to the university"],
        "specimen": ["mail specimen {key} to the museum in Leiden", "destroy specimen {key}",
                     "photograph specimen {key} again under ultraviolet light"],
        "kiln": ["unload kiln load {key} and wrap the pieces", "split kiln load {key} into two firings",
                 "clean the shelves of kiln load {key}"],
        "choir": ["remove {key} from the choir", "send {key} the sheet music", "pay {key}'s choir fees back"],
    }
    slot: Callable[[], dict[str, str]]
    general = ["tell me the boiling point of water at sea level", "explain why the sky is blue",
               "tell me how many legs a spider has", "name the capital of Peru"]
    if family == "general":
        intent = {"act": [rng.choice(general)]}
        slot = lambda: {}  # noqa: E731
    else:
        intent = {"act": [rng.choice(acts[family])]}  # one request, worded five ways
        slot = lambda: {"key": key}  # noqa: E731
        if family == "obs":
            exclude = ("shelve_observation",)  # "shelve" is close enough to delete to be a fair call
    domain = DOMAIN_BY_KEY[domain_key]
    state = {table: rows}
    return {"kind": "restraint", "family": family, "tools": _offer(domain, [], rng, exclude), "state": state,
            "gold_calls": [], "answer": [], "wordings": wordings(intent, slot, rng)}


def goal_task(family: str, rng: random.Random) -> dict[str, Any]:
    """Goals name two chained steps and a confirmation; the request names neither step."""
    if family == "patron":
        patrons = {some_uuid(rng): {"email": email(rng), "name": f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}",
                                    "tier": rng.choice(TIERS[:2])} for _ in range(3)}
        key = _pick(rng, patrons)
        tier = rng.choice(TIERS[2:])
        state: dict[str, Any] = {"patrons": patrons}
        goals = [{"name": "Persona", "description": "You look after the members of the Larkspur Club."},
                 {"name": "Upgrade members", "description": f"When a member writes in: 1. look the member up with "
                  f"find_patron_by_email; 2. give them the {tier} tier with assign_patron_tier, using the patron id "
                  f"found; 3. confirm the member's new tier in one sentence."}]
        mail = patrons[key]["email"]
        gold = [{"name": "find_patron_by_email", "arguments": {"email": mail}},
                {"name": "assign_patron_tier", "arguments": {"patron_id": key, "tier": tier}}]
        intent = {"act": ["deal with this one for {email}", "sort out {email}", "handle the member {email}"],
                  "ask": ["Can you take care of {email}?", "Could you handle {email} for me?"]}
        slot = lambda: {"email": mail}  # noqa: E731
        tools = ["find_patron_by_email", "assign_patron_tier", "fetch_wallet", "query_singer"]
        answer = [_text(tier)]
    elif family == "campsite":
        region = rng.choice(REGIONS)
        night = some_day(rng)
        numbers = rng.sample(range(1, 60), 5)
        pitches = {str(n): {"region": region if i < 3 else rng.choice([r for r in REGIONS if r != region]), "taken": {}}
                   for i, n in enumerate(numbers)}
        first, *rest = sorted(int(n) for n, p in pitches.items() if p["region"] == region)
        pitches[str(first)]["taken"] = {night.isoformat(): email(rng)}  # the lowest pitch is taken that night
        free = rest[0]
        guest = email(rng)
        state = {"pitches": pitches}
        goals = [{"name": "Persona", "description": "You run the bookings desk of Wildcamp Collective."},
                 {"name": "Find a pitch", "description": "For each stay request: 1. list the free pitches of the "
                  "region for that night with survey_campsites; 2. hold the first free pitch for the guest with "
                  "claim_pitch; 3. tell the guest the pitch number in one sentence."}]
        gold = [{"name": "survey_campsites", "arguments": {"region": region, "night": night.isoformat()}},
                {"name": "claim_pitch", "arguments": {"pitch_number": free, "night": night.isoformat(),
                                                      "guest_email": guest}}]
        intent = {"act": ["find {email} somewhere to stay in {region} on {day}",
                          "sort out {email}, who wants to camp in {region} on {day}"],
                  "ask": ["{email} wants to camp in {region} on {day}, can you arrange it?",
                          "Could you fix up a night in {region} on {day} for {email}?"]}
        slot = lambda: {"email": guest, "region": region, "day": written_date(night, rng)}  # noqa: E731
        tools = ["survey_campsites", "claim_pitch", "peek_kiln_load", "inspect_hive"]
        answer = [_num(free)]
    elif family == "meter":
        meters = {str(rng.randint(10000, 99999)): {"last_kwh": rng.randint(1000, 9000)} for _ in range(3)}
        key = _pick(rng, meters)
        kwh = meters[key]["last_kwh"] + rng.randint(40, 900)
        state = {"meters": meters}
        goals = [{"name": "Persona", "description": "You keep the meter book of Fernhill Housing Co-op."},
                 {"name": "Meter notes", "description": "For a tenant's note about their meter: 1. read it with "
                  "parse_meter_note; 2. enter the reading with enter_meter_reading; 3. tell how many kWh were used "
                  "since the last reading, in one sentence."}]
        gold = [{"name": "parse_meter_note", "arguments": {"note": "{note}"}},
                {"name": "enter_meter_reading", "arguments": {"meter_number": int(key), "kwh": kwh}}]
        notes = [f"Meter {key} shows {kwh} kWh today.", f"hi, my meter ({key}) reads {kwh} kWh this morning",
                 f"Reading for meter no. {key}: {kwh} kWh."]
        intent = {"act": ["deal with this note from a tenant: \"{note}\"", "take care of this: \"{note}\""],
                  "ask": ["A tenant wrote \"{note}\" - can you handle it?", "Could you see to this tenant note: \"{note}\"?"]}
        slot = lambda: {"note": rng.choice(notes)}  # noqa: E731
        tools = ["parse_meter_note", "enter_meter_reading", "locate_seed_packet", "tag_specimen"]
        answer = []  # kWh used, from the gold result
    else:  # observation by target
        rows = _obs_state(rng, 3)
        key = _pick(rng, rows)
        target = rows[key]["target"]
        night = some_day(rng)
        state = {"observations": rows}
        goals = [{"name": "Persona", "description": "You keep the night plan of the Kestrel Ridge Observatory."},
                 {"name": "Night plan", "description": "When an astronomer asks for another night: 1. find the "
                  "request for the target with find_observation_by_target; 2. move it with reschedule_observation, "
                  "using the observation id found; 3. confirm the new night in one sentence."}]
        gold = [{"name": "find_observation_by_target", "arguments": {"target": target}},
                {"name": "reschedule_observation", "arguments": {"observation_id": key, "night": night.isoformat()}}]
        intent = {"act": ["sort out the {target} for {day} instead", "deal with the {target}, it has to wait until {day}"],
                  "ask": ["Could we do the {target} on {day} instead?", "Can the {target} be on {day}?"]}
        slot = lambda: {"target": target, "day": written_date(night, rng)}  # noqa: E731
        tools = ["find_observation_by_target", "reschedule_observation", "lookup_observation", "credit_wallet"]
        answer = [_day(night.isoformat())]
    rng.shuffle(tools)
    return {"kind": "goal", "family": family, "tools": tools, "state": state, "goals": goals, "gold_calls": gold,
            "answer": answer, "wordings": wordings(intent, slot, rng)}


INVOICE_ASKS = {
    "document": {"question": ["Could you process this invoice?", "Can you handle the attached invoice?"],
                 "polite": ["Please process this invoice.", "Please handle the attached invoice, thanks."],
                 "imperative": ["Process this invoice.", "Handle the attached invoice."],
                 "context": ["{context} Process this invoice.", "{context} Here is an invoice from our supplier."],
                 "informal": ["got an invoice for ya, pls handle it", "invoice attached, can u proccess it"]},
    "inline": {"question": ["Could you process this invoice?\n\n{text}", "Can you handle this invoice?\n{text}"],
               "polite": ["Please process this invoice:\n\n{text}", "Please handle this invoice, thanks.\n\n{text}"],
               "imperative": ["Process this invoice:\n{text}", "Handle this invoice.\n\n{text}"],
               "context": ["{context} Here is an invoice from our supplier:\n\n{text}",
                           "{context} This one came in the post:\n\n{text}"],
               "informal": ["here's an invoice from our suplier:\n{text}", "pls deal w/ this invoice\n\n{text}"]},
}


def invoice_task(family: str, rng: random.Random) -> dict[str, Any]:
    """The notebook's invoice agent verbatim on a generated invoice, inline or as the document ``invoice``."""
    invoice = make_invoice(rng)
    wordings_ = []
    for style in STYLES:
        template = rng.choice(INVOICE_ASKS[family][style])
        wordings_.append({"style": style, "instruction": template.format(context=rng.choice(CONTEXTS),
                                                                         text=invoice.text.strip())})
    stored = {"invoice_number": invoice.invoice_number, "date": invoice.date, "total_amount": invoice.total,
              "currency": invoice.currency, "vendor": {"name": invoice.vendor}}
    return {"kind": "invoice", "family": family, "tools": ["extract_invoice_data", "store_invoice"], "state": {},
            "goals": [{"name": g.name, "description": g.description} for g in NOTEBOOK_INVOICE_GOALS],
            "documents": {"invoice": invoice.text} if family == "document" else None,
            "gold_calls": [{"name": "store_invoice", "arguments": {"invoice_data": stored}}],
            "answer": [_text(invoice.invoice_number)],
            "invoice": {"invoice_number": invoice.invoice_number, "total_amount": invoice.total,
                        "currency": invoice.currency, "vendor": invoice.vendor, "date": invoice.date},
            "wordings": wordings_}


# ------------------------------------------------------------------------------------------- the split

PLAN: tuple[tuple[str, Callable[[str, random.Random], dict[str, Any]], tuple[str, ...], int], ...] = (
    ("single", single_task, ("relocate", "requeen", "harvest", "credit", "debit", "lend", "restock", "reschedule",
                             "shelve", "tag", "fire", "enlist"), 2),
    ("answer", answer_task, ("hive", "wallet", "seed", "obs", "specimen", "kiln", "choir"), 2),
    ("restraint", restraint_task, ("hive", "wallet", "seed", "obs", "specimen", "kiln", "choir", "general"), 2),
    ("goal", goal_task, ("patron", "campsite", "meter", "observation"), 3),
    ("invoice", invoice_task, ("inline", "document"), 3),
)


def gold_run(task: Mapping[str, Any], note: str | None = None) -> tuple[World, list[Any]]:
    """Run a task's gold calls on a fresh copy of its state with the real tools; (world after, each result).
    A gold argument ``"{note}"`` stands for the note the wording quotes (``note``)."""
    world = World.from_state(task["state"])
    context = ActionContext({"world": world})
    results = []
    for call in task["gold_calls"]:
        if call["name"] == "store_invoice":
            results.append({"invoice_number": call["arguments"]["invoice_data"]["invoice_number"]})
            continue
        tool = build_tool(call["name"])
        arguments = {k: (note if v == "{note}" else v) for k, v in call["arguments"].items()}
        validated = tool.args_model.model_validate(arguments).model_dump(by_alias=True) if tool.args_model else arguments
        results.append(FUNCTIONS[call["name"]](context, **validated))
    return world, results


def _fill_answers(task: dict[str, Any]) -> None:
    """Answer values that come from the gold result (a new balance, what is left, a season's total)."""
    if task["answer"] or task["kind"] == "restraint":
        return
    note = quoted_note(task["wordings"][0]["instruction"]) if task["family"] == "meter" else None
    _, results = gold_run(task, note)
    last = results[-1]
    for field_name in ("season_total_kg", "balance", "packets_left", "used_since_last_kwh"):
        if field_name in last:
            task["answer"] = [_num(last[field_name])]
            return
    raise AssertionError(f"no answer value for {task['family']}")


def quoted_note(instruction: str) -> str | None:
    """The note a wording quotes (a gold argument ``"{note}"`` stands for it), if any."""
    match = re.search(r'"([^"]+)"', instruction)
    return match[1] if match else None


def generate(split: str, seed: int | None = None) -> list[dict[str, Any]]:
    """The split's tasks (deterministic from ``seed``, by default the split's recorded seed)."""
    rng = random.Random(SPLIT_SEEDS[split] if seed is None else seed)
    tasks: list[dict[str, Any]] = []
    for _kind, make, families, per_family in PLAN:
        for family in families:
            for _ in range(per_family):
                task = make(family, rng)
                _fill_answers(task)
                task = {"id": f"{split}-{len(tasks) + 1:03d}", **task}
                task.setdefault("goals", None)
                task.setdefault("documents", None)
                tasks.append(task)
    return tasks


def split_path(split: str) -> Path:
    """The package's JSONL file of a split (``dev`` or ``test``)."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown outcome split '{split}': choose from {', '.join(SPLIT_SEEDS)}")
    return DATA_DIR / f"outcomes_{split}.jsonl"


def load_split(split: str) -> list[dict[str, Any]]:
    """The tasks of a split, read from the package's data."""
    with split_path(split).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def dumps(tasks: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(task, ensure_ascii=False, sort_keys=True) + "\n" for task in tasks)


def manifest() -> dict[str, Any]:
    return {"generator": "lmstudio_eval.outcomes.generator", "generator_version": GENERATOR_VERSION,
            "splits": {name: {"seed": seed, "file": split_path(name).name} for name, seed in SPLIT_SEEDS.items()},
            "styles": list(STYLES)}


def main() -> None:
    """Write both splits and the manifest into the package's data directory."""
    for split in SPLIT_SEEDS:
        split_path(split).write_text(dumps(generate(split)), encoding="utf-8")
    (DATA_DIR / MANIFEST).write_text(json.dumps(manifest(), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
