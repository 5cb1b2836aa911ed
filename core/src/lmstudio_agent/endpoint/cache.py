"""Result-cache rules shared by every endpoint: key derivation, when to read or write, and the store protocol.

The adapters differ only in the store (DynamoDB for the Lambda, KV for the Worker); the rules live here once.
Only a run that ended with an answer is ever written (``contract.execute`` checks ``messages.answered``): a
NO_ANSWER run is never cached.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Protocol, runtime_checkable
from collections.abc import Callable, Mapping

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
