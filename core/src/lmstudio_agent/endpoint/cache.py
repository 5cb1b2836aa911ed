"""Result-cache rules shared by every endpoint: key derivation, when to read or write, the store protocol and
the one codec of an entry.

The adapters differ only in the store (DynamoDB for the Lambda, KV for the Worker); the rules live here once.
Only a run that ended with an answer is ever written (``pipeline.Execution`` checks ``messages.answered``,
for a JSON answer and a stream alike): a NO_ANSWER run is never cached. An entry is a finished run's events
with its transcript, ``{"result": [...], "events": [...]}`` (:func:`encode_entry`); a JSON answer and a stream
read the same entry (:func:`decode_entry`), and an older entry that holds only the transcript is still read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Protocol, runtime_checkable
from collections.abc import Callable, Mapping, Sequence

from ..agent.events import RunEvent, events_from_transcript, transcript_of
from ..agent.messages import AgentMessage

logger = logging.getLogger("lmstudio_agent.endpoint.cache")

CACHE_KEY_VERSION = 1
DEFAULT_TTL_SECONDS = 3600


@runtime_checkable
class CacheStore(Protocol):
    """An async key/value store with per-entry expiry. Values are JSON strings."""

    async def get(self, key: str) -> str | None:
        """The value stored under ``key``, or None when there is none or it expired.

        Args:
            key: The cache key.
        """
        ...

    async def put(self, key: str, value: str, ttl_seconds: int) -> None:
        """Store ``value`` under ``key`` for ``ttl_seconds``, replacing what was there.

        Args:
            key: The cache key.
            value: The JSON string to store.
            ttl_seconds: How long the entry lives.
        """
        ...


def normalise_instruction(instruction: str) -> str:
    """Whitespace-insensitive form of an instruction: runs of white space fold to one space.

    Args:
        instruction: The request's instruction.
    """
    return " ".join(instruction.split())


def cache_key(*, instruction: str, tools: list[str], model: str, scope: str,
              documents: Mapping[str, str] | None = None) -> str:
    """The cache key of a normalised request.

    ``scope`` names the server configuration the answer depends on (upstream URL, tool mode, allow-list),
    so two deployments sharing a table never serve each other's answers. ``documents`` are part of the key
    exactly as sent (a request without any keeps the key it always had).

    Args:
        instruction: The request's instruction (normalised here).
        tools: The names of the tools selected (order and repeats do not matter).
        model: The model's id.
        scope: The server configuration the answer depends on.
        documents: The run's documents by name.
    """
    material = {
        "v": CACHE_KEY_VERSION,
        "instruction": normalise_instruction(instruction),
        "tools": sorted(set(tools)),
        "model": model,
        "scope": scope,
    }
    if documents:
        material["documents"] = dict(sorted(documents.items()))
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return f"execute:{digest}"


def wants_fresh(headers: Mapping[str, str]) -> bool:
    """True when the request says ``Cache-Control: no-cache`` (or ``no-store``, or ``Pragma: no-cache``).

    Args:
        headers: The request's HTTP headers (any case).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    directives = {d.strip().lower() for d in lowered.get("cache-control", "").split(",")}
    return bool(directives & {"no-cache", "no-store"}) or lowered.get("pragma", "").strip().lower() == "no-cache"


def is_cacheable(*, has_side_effects: bool, headers: Mapping[str, str]) -> bool:
    """A request may be read from or written to the cache only if no selected tool has side effects and
    the client did not ask for a fresh answer.

    Args:
        has_side_effects: Whether any selected tool has side effects.
        headers: The request's HTTP headers.
    """
    return not has_side_effects and not wants_fresh(headers)


def encode_entry(events: Sequence[RunEvent]) -> str:
    """A finished run as a cache entry: its transcript and its events, ``{"result": [...], "events": [...]}``.

    Args:
        events: The run's events, in order.
    """
    value = {"result": [m.to_dict() for m in transcript_of(events)], "events": [e.to_dict() for e in events]}
    return json.dumps(value, ensure_ascii=False)


def decode_entry(raw: str) -> list[RunEvent]:
    """A cache entry's events (:func:`encode_entry`'s), or events made from an entry that holds only a
    transcript; raises for an entry that is neither.

    Args:
        raw: The stored JSON text.
    """
    data = json.loads(raw)
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        return [RunEvent.model_validate(e) for e in data["events"]]
    if isinstance(data, dict):
        data = data["result"]
    return events_from_transcript(AgentMessage.model_validate(m) for m in data)


async def read_events(cache: CacheStore | None, key: str) -> list[RunEvent] | None:
    """The events cached under ``key``; None on a miss, and on any cache failure (logged: a broken cache never
    fails a request, the run goes on uncached).

    Args:
        cache: The cache store (None: always a miss).
        key: The request's cache key.
    """
    if cache is None:
        return None
    try:
        raw = await cache.get(key)
        return None if raw is None else decode_entry(raw)
    except Exception:
        logger.warning("cache read failed; running uncached", exc_info=True)
        return None


async def write_events(cache: CacheStore | None, key: str, events: Sequence[RunEvent], ttl: int) -> None:
    """Store a finished, answered run under ``key`` (:func:`encode_entry`). A failed write is logged, never
    raised: the answer is still returned.

    Args:
        cache: The cache store (None: nothing is stored).
        key: The request's cache key.
        events: The run's events.
        ttl: Seconds the entry lives.
    """
    if cache is None:
        return
    try:
        await cache.put(key, encode_entry(events), ttl)
    except Exception:
        logger.warning("cache write failed; the answer is still returned", exc_info=True)


class MemoryCacheStore:
    """An in-process :class:`CacheStore` (used by the bridge hub and the CLI; tests use it too).

    Args:
        clock: The time source for expiry, in seconds (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        """Start empty."""
        self._items: dict[str, tuple[str, float]] = {}
        self._clock = clock

    async def get(self, key: str) -> str | None:
        """The value stored under ``key``, or None when there is none or it expired (an expired entry is dropped).

        Args:
            key: The cache key.
        """
        item = self._items.get(key)
        if item is None:
            return None
        value, expires_at = item
        if expires_at <= self._clock():
            del self._items[key]
            return None
        return value

    async def put(self, key: str, value: str, ttl_seconds: int) -> None:
        """Store ``value`` under ``key`` for ``ttl_seconds``, replacing what was there.

        Args:
            key: The cache key.
            value: The JSON string to store.
            ttl_seconds: How long the entry lives.
        """
        self._items[key] = (value, self._clock() + ttl_seconds)
