"""The outcome evaluation's tools and the state they act on.

A run is judged by what it did, not by what it said it would do: each task starts from its own small
:class:`World` (tables of records, copied from the task), every tool below reads or changes that world, and the
checker then compares the world after the run with the world after the task's gold calls. The tools are real typed
Python functions with Google-style docstrings, turned into schemas by the library itself
(:func:`lmstudio_agent.tool_from_function`), exactly as a user's tools are.

The domains (an apiary, café wallets, a seed library, an observatory, a specimen collection, a pottery kiln, a
choir, a members' club, campsites, electricity meters) and the identifier shapes (plain numbers, e-mail
addresses, slugs, UUIDs) were chosen to share nothing with the project's older corpus, so a rule tuned on that
corpus gains nothing here by its vocabulary.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from collections.abc import Callable

from lmstudio_agent.builtins import builtin_registry
from lmstudio_agent.agent.tools import ActionContext, Tool, tool_from_function

State = dict[str, dict[str, dict[str, Any]]]


@dataclass
class World:
    """The tables one run acts on (table -> key -> record) and every change made to them.

    Args:
        tables: The records, keyed by table then by the record's key (always a string).
        changes: One entry per successful call of a tool with side effects: ``{"tool", "table", "key"}``.
    """

    tables: State
    changes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_state(cls, state: State) -> World:
        """A fresh world holding a deep copy of ``state`` (a task's initial state is never changed)."""
        return cls(copy.deepcopy(state))

    def record(self, table: str, key: str | int) -> dict[str, Any]:
        """The record ``key`` of ``table``; a clear error (the model sees it) when there is none."""
        rows = self.tables.get(table, {})
        if str(key) not in rows:
            raise LookupError(f"no {table.rstrip('s').replace('_', ' ')} '{key}'")
        return rows[str(key)]

    def change(self, tool: str, table: str, key: str | int, values: dict[str, Any]) -> dict[str, Any]:
        """Set ``values`` on record ``key`` of ``table`` (created when missing) and log the change."""
        row = self.tables.setdefault(table, {}).setdefault(str(key), {})
        row.update(copy.deepcopy(values))
        self.changes.append({"tool": tool, "table": table, "key": str(key)})
        return row


class CountingStorage(dict[str, Any]):
    """The invoice agent's storage (a dict, as in the notebook) that counts how often it was written."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def __setitem__(self, invoice_number: str, invoice: dict[str, Any]) -> None:
        self.writes.append(invoice_number)
        super().__setitem__(invoice_number, invoice)


def _world(action_context: ActionContext) -> World:
    world = action_context.get("world")
    if not isinstance(world, World):
        raise RuntimeError("the run has no world (pass context={'world': World(...)} to the Agent)")
    return world


def _iso(day: date) -> str:
    return day.isoformat()


# --------------------------------------------------------------------------------------------- the apiary

QueenBreed = Literal["carniolan", "italian", "buckfast", "caucasian"]


def inspect_hive(action_context: ActionContext, hive_number: int) -> dict:
    """Inspect one beehive: the apiary it stands in, how its queen is doing and its frames of brood.

    Args:
        hive_number: The number painted on the hive, e.g. 112
    """
    row = _world(action_context).record("hives", hive_number)
    return {"hive_number": hive_number, "apiary": row["apiary"], "queen_status": row["queen_status"],
            "brood_frames": row["brood_frames"]}


def relocate_hive(action_context: ActionContext, hive_number: int, apiary: str) -> dict:
    """Carry a beehive to another apiary.

    Args:
        hive_number: The number painted on the hive
        apiary: The name of the apiary the hive goes to
    """
    world = _world(action_context)
    world.record("hives", hive_number)
    row = world.change("relocate_hive", "hives", hive_number, {"apiary": apiary})
    return {"hive_number": hive_number, "apiary": row["apiary"]}


def requeen_hive(action_context: ActionContext, hive_number: int, queen_breed: QueenBreed) -> dict:
    """Give a beehive a new queen of the chosen breed.

    Args:
        hive_number: The number painted on the hive
        queen_breed: The breed of the new queen
    """
    world = _world(action_context)
    world.record("hives", hive_number)
    row = world.change("requeen_hive", "hives", hive_number, {"queen_breed": queen_breed, "queen_status": "introduced"})
    return {"hive_number": hive_number, "queen_breed": row["queen_breed"], "queen_status": row["queen_status"]}


def record_honey_harvest(action_context: ActionContext, hive_number: int, kilograms: float, harvest_day: date) -> dict:
    """Write down the honey taken from a beehive on one day.

    Args:
        hive_number: The number painted on the hive
        kilograms: The weight of honey taken, in kilograms
        harvest_day: The day of the harvest
    """
    world = _world(action_context)
    row = world.record("hives", hive_number)
    harvests = [*row.get("harvests", []), {"day": _iso(harvest_day), "kg": kilograms}]
    season = round(sum(h["kg"] for h in harvests), 2)
    world.change("record_honey_harvest", "hives", hive_number, {"harvests": harvests})
    return {"hive_number": hive_number, "harvest_day": _iso(harvest_day), "kilograms": kilograms,
            "season_total_kg": season}


# --------------------------------------------------------------------------------------------- café wallets

Currency = Literal["EUR", "USD", "GBP"]


def fetch_wallet(action_context: ActionContext, email: str) -> dict:
    """Show a customer's prepaid café wallet: its balance, currency and loyalty level.

    Args:
        email: The customer's e-mail address
    """
    row = _world(action_context).record("wallets", email)
    return {"email": email, "balance": row["balance"], "currency": row["currency"], "level": row["level"]}


def _move_money(action_context: ActionContext, tool: str, email: str, amount: float, currency: str, sign: int) -> dict:
    world = _world(action_context)
    row = world.record("wallets", email)
    if currency != row["currency"]:
        raise ValueError(f"this wallet holds {row['currency']}, not {currency}")
    if amount <= 0:
        raise ValueError("the amount must be more than zero")
    balance = round(row["balance"] + sign * amount, 2)
    if balance < 0:
        raise ValueError(f"the wallet holds only {row['balance']} {row['currency']}")
    world.change(tool, "wallets", email, {"balance": balance})
    return {"email": email, "balance": balance, "currency": row["currency"]}


def credit_wallet(action_context: ActionContext, email: str, amount: float, currency: Currency) -> dict:
    """Put money into a customer's prepaid café wallet.

    Args:
        email: The customer's e-mail address
        amount: How much to add
        currency: The currency of the amount
    """
    return _move_money(action_context, "credit_wallet", email, amount, currency, +1)


def debit_wallet(action_context: ActionContext, email: str, amount: float, currency: Currency) -> dict:
    """Take money out of a customer's prepaid café wallet (a purchase paid from it).

    Args:
        email: The customer's e-mail address
        amount: How much to take
        currency: The currency of the amount
    """
    return _move_money(action_context, "debit_wallet", email, amount, currency, -1)


# --------------------------------------------------------------------------------------------- the seed library


def locate_seed_packet(action_context: ActionContext, variety_slug: str) -> dict:
    """Say which drawer of the seed library holds a variety, and how many packets are left.

    Args:
        variety_slug: The variety's short name with hyphens, e.g. cherokee-purple-tomato
    """
    row = _world(action_context).record("seeds", variety_slug)
    return {"variety_slug": variety_slug, "drawer": row["drawer"], "packets_left": row["packets"]}


def lend_seed_packets(action_context: ActionContext, variety_slug: str, borrower_email: str, packets: int) -> dict:
    """Hand seed packets of a variety to a gardener, who brings seed back after the season.

    Args:
        variety_slug: The variety's short name with hyphens
        borrower_email: The gardener's e-mail address
        packets: How many packets
    """
    world = _world(action_context)
    row = world.record("seeds", variety_slug)
    if packets < 1 or packets > row["packets"]:
        raise ValueError(f"there are {row['packets']} packets of {variety_slug}")
    loans = [*row.get("loans", []), {"email": borrower_email, "packets": packets}]
    world.change("lend_seed_packets", "seeds", variety_slug, {"packets": row["packets"] - packets, "loans": loans})
    return {"variety_slug": variety_slug, "borrower_email": borrower_email, "packets": packets,
            "packets_left": row["packets"]}


def restock_seed_packets(action_context: ActionContext, variety_slug: str, packets: int) -> dict:
    """Add freshly packed seed packets of a variety to the seed library.

    Args:
        variety_slug: The variety's short name with hyphens
        packets: How many packets are added
    """
    world = _world(action_context)
    row = world.record("seeds", variety_slug)
    if packets < 1:
        raise ValueError("add at least one packet")
    world.change("restock_seed_packets", "seeds", variety_slug, {"packets": row["packets"] + packets})
    return {"variety_slug": variety_slug, "packets_added": packets, "packets_left": row["packets"]}


# --------------------------------------------------------------------------------------------- the observatory


def _observation(row: dict[str, Any], observation_id: str) -> dict:
    return {"observation_id": observation_id, "target": row["target"], "night": row["night"], "status": row["status"]}


def lookup_observation(action_context: ActionContext, observation_id: str) -> dict:
    """Show one telescope observation request: its target, its night and its status.

    Args:
        observation_id: The request's UUID
    """
    return _observation(_world(action_context).record("observations", observation_id), observation_id)


def find_observation_by_target(action_context: ActionContext, target: str) -> dict:
    """Find the telescope observation request for a sky target (a galaxy, nebula, planet ...) by its name.

    Args:
        target: The target's name, e.g. Andromeda Galaxy
    """
    rows = _world(action_context).tables.get("observations", {})
    wanted = " ".join(target.lower().split())
    for key, row in rows.items():
        if row["target"].lower() == wanted:
            return _observation(row, key)
    raise LookupError(f"no observation of '{target}'")


def reschedule_observation(action_context: ActionContext, observation_id: str, night: date) -> dict:
    """Move a telescope observation request to another night.

    Args:
        observation_id: The request's UUID
        night: The night it moves to
    """
    world = _world(action_context)
    world.record("observations", observation_id)
    row = world.change("reschedule_observation", "observations", observation_id,
                       {"night": _iso(night), "status": "queued"})
    return _observation(row, observation_id)


def shelve_observation(action_context: ActionContext, observation_id: str) -> dict:
    """Put a telescope observation request on the shelf: it keeps its settings but is not observed.

    Args:
        observation_id: The request's UUID
    """
    world = _world(action_context)
    world.record("observations", observation_id)
    row = world.change("shelve_observation", "observations", observation_id, {"status": "shelved"})
    return _observation(row, observation_id)


# --------------------------------------------------------------------------------------------- specimens


def classify_specimen(action_context: ActionContext, specimen_id: str) -> dict:
    """Run the image classifier on a photographed specimen and give its label with the classifier's confidence.

    Args:
        specimen_id: The specimen's UUID
    """
    row = _world(action_context).record("specimens", specimen_id)
    return {"specimen_id": specimen_id, "label": row["predicted"], "confidence": row["confidence"]}


def tag_specimen(action_context: ActionContext, specimen_id: str, label: str) -> dict:
    """Write a label on a specimen's record by hand.

    Args:
        specimen_id: The specimen's UUID
        label: The label to write, e.g. lichen
    """
    world = _world(action_context)
    world.record("specimens", specimen_id)
    row = world.change("tag_specimen", "specimens", specimen_id, {"label": label})
    return {"specimen_id": specimen_id, "label": row["label"]}


# --------------------------------------------------------------------------------------------- the kiln


def peek_kiln_load(action_context: ActionContext, load_number: int) -> dict:
    """Show a kiln load of the pottery studio: its status, its firing day and how many pieces it holds.

    Args:
        load_number: The load's number
    """
    row = _world(action_context).record("kiln_loads", load_number)
    return {"load_number": load_number, "status": row["status"], "firing_day": row["firing_day"],
            "pieces": row["pieces"]}


def fire_kiln_load(action_context: ActionContext, load_number: int, firing_day: date) -> dict:
    """Put a kiln load of the pottery studio on the firing plan for a day.

    Args:
        load_number: The load's number
        firing_day: The day the kiln fires it
    """
    world = _world(action_context)
    world.record("kiln_loads", load_number)
    row = world.change("fire_kiln_load", "kiln_loads", load_number, {"status": "planned", "firing_day": _iso(firing_day)})
    return {"load_number": load_number, "status": row["status"], "firing_day": row["firing_day"]}


# --------------------------------------------------------------------------------------------- the choir

Voice = Literal["soprano", "alto", "tenor", "bass"]


def query_singer(action_context: ActionContext, email: str) -> dict:
    """Show a choir member's voice part and the concert they sing in.

    Args:
        email: The singer's e-mail address
    """
    row = _world(action_context).record("singers", email)
    return {"email": email, "voice": row["voice"], "concert_slug": row["concert_slug"]}


def enlist_singer(action_context: ActionContext, email: str, voice: Voice, concert_slug: str) -> dict:
    """Put a singer on the list of a concert, in a voice part.

    Args:
        email: The singer's e-mail address
        voice: The voice part they sing
        concert_slug: The concert's short name with hyphens, e.g. spring-gala-2027
    """
    world = _world(action_context)
    row = world.change("enlist_singer", "singers", email, {"voice": voice, "concert_slug": concert_slug})
    return {"email": email, "voice": row["voice"], "concert_slug": row["concert_slug"]}


# --------------------------------------------------------------------------------------------- goal chains

Tier = Literal["bronze", "silver", "gold", "platinum"]


def find_patron_by_email(action_context: ActionContext, email: str) -> dict:
    """Find a member of the club by e-mail address: their patron id, name and tier.

    Args:
        email: The member's e-mail address
    """
    for key, row in _world(action_context).tables.get("patrons", {}).items():
        if row["email"].lower() == email.strip().lower():
            return {"patron_id": key, "name": row["name"], "tier": row["tier"]}
    raise LookupError(f"no member with the e-mail address '{email}'")


def assign_patron_tier(action_context: ActionContext, patron_id: str, tier: Tier) -> dict:
    """Give a member of the club a membership tier.

    Args:
        patron_id: The member's patron id (a UUID)
        tier: The tier to give
    """
    world = _world(action_context)
    world.record("patrons", patron_id)
    row = world.change("assign_patron_tier", "patrons", patron_id, {"tier": tier})
    return {"patron_id": patron_id, "name": row["name"], "tier": row["tier"]}


def survey_campsites(action_context: ActionContext, region: str, night: date) -> dict:
    """List the free tent pitches of a region's campsites for one night (lowest number first).

    Args:
        region: The region, e.g. Glen Affric
        night: The night of the stay
    """
    rows = _world(action_context).tables.get("pitches", {})
    free = sorted(int(key) for key, row in rows.items()
                  if row["region"].lower() == region.strip().lower() and _iso(night) not in row.get("taken", {}))
    return {"region": region, "night": _iso(night), "free_pitches": free}


def claim_pitch(action_context: ActionContext, pitch_number: int, night: date, guest_email: str) -> dict:
    """Hold a tent pitch for a guest for one night.

    Args:
        pitch_number: The pitch's number
        night: The night of the stay
        guest_email: The guest's e-mail address
    """
    world = _world(action_context)
    row = world.record("pitches", pitch_number)
    taken = dict(row.get("taken", {}))
    if _iso(night) in taken:
        raise ValueError(f"pitch {pitch_number} is taken on {_iso(night)}")
    taken[_iso(night)] = guest_email
    world.change("claim_pitch", "pitches", pitch_number, {"taken": taken})
    return {"pitch_number": pitch_number, "night": _iso(night), "guest_email": guest_email}


_NOTE_METER = re.compile(r"\bmeter\D{0,12}?(\d{4,7})\b", re.IGNORECASE)
_NOTE_UNITS = re.compile(r"\b(\d[\d,]*)\s*(?:kwh|kilowatt[- ]hours?|units)\b", re.IGNORECASE)


def parse_meter_note(action_context: ActionContext, note: str) -> dict:
    """Read a tenant's note about their electricity meter: the meter's number and the reading in kWh.

    Args:
        note: The tenant's note, as written
    """
    meter = _NOTE_METER.search(note)
    units = _NOTE_UNITS.search(note)
    if meter is None or units is None:
        raise ValueError("the note must name the meter's number and the reading in kWh")
    return {"meter_number": int(meter[1]), "kwh": int(units[1].replace(",", ""))}


def enter_meter_reading(action_context: ActionContext, meter_number: int, kwh: int) -> dict:
    """Enter an electricity meter reading; says how much was used since the last one.

    Args:
        meter_number: The meter's number
        kwh: The reading, in kWh
    """
    world = _world(action_context)
    row = world.record("meters", meter_number)
    if kwh < row["last_kwh"]:
        raise ValueError(f"the last reading of meter {meter_number} was {row['last_kwh']} kWh")
    used = kwh - row["last_kwh"]
    world.change("enter_meter_reading", "meters", meter_number, {"last_kwh": kwh})
    return {"meter_number": meter_number, "kwh": kwh, "used_since_last_kwh": used}


# --------------------------------------------------------------------------------------------- the catalogue

FUNCTIONS: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    inspect_hive, relocate_hive, requeen_hive, record_honey_harvest,
    fetch_wallet, credit_wallet, debit_wallet,
    locate_seed_packet, lend_seed_packets, restock_seed_packets,
    lookup_observation, find_observation_by_target, reschedule_observation, shelve_observation,
    classify_specimen, tag_specimen,
    peek_kiln_load, fire_kiln_load,
    query_singer, enlist_singer,
    find_patron_by_email, assign_patron_tier,
    survey_campsites, claim_pitch,
    parse_meter_note, enter_meter_reading,
)}
READ_ONLY = frozenset({"inspect_hive", "fetch_wallet", "locate_seed_packet", "lookup_observation",
                       "find_observation_by_target", "classify_specimen", "peek_kiln_load", "query_singer",
                       "find_patron_by_email", "survey_campsites", "parse_meter_note"})
INVOICE_TOOLS = ("extract_invoice_data", "store_invoice")


def build_tool(name: str) -> Tool:
    """The tool ``name`` (one of :data:`FUNCTIONS`, or the notebook's invoice tools from the library)."""
    if name in INVOICE_TOOLS:  # as the library registers them (store_invoice has side effects)
        tool = builtin_registry().get(name)
        assert tool is not None
        return tool
    if name not in FUNCTIONS:
        raise KeyError(f"unknown outcome-evaluation tool '{name}'")
    return tool_from_function(FUNCTIONS[name], side_effects=name not in READ_ONLY)


def build_tools(names: list[str]) -> list[Tool]:
    """The tools a task offers, in the task's order."""
    return [build_tool(name) for name in names]
