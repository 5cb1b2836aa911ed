"""The Worker's result cache: ``lmstudio_agent.endpoint.cache.CacheStore`` over a Workers KV namespace binding.

This is the only thing that differs from the Lambda's cache: the key derivation, the TTL, the
``Cache-Control: no-cache`` rule and the side-effect rule all live in ``lmstudio_agent.endpoint.cache`` and
``lmstudio_agent.endpoint.contract``, and the contract calls this store only when those rules allow it.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("lmstudio_agent.worker.kv")

# KV refuses an ``expirationTtl`` below 60 seconds ("Expiration TTL must be at least 60").
KV_MIN_TTL_SECONDS = 60


class KVCacheStore:
    """A :class:`~lmstudio_agent.endpoint.cache.CacheStore` backed by a KV namespace (``env.CACHE``).

    The binding is used exactly as the Workers runtime exposes it to Python: ``await kv.get(key)`` gives
    the string value, or null once the key is missing or expired; ``await kv.put(key, value,
    expirationTtl=seconds)`` (Pyodide passes the keyword as the JS options object ``{expirationTtl}``).
    """

    def __init__(self, namespace: Any) -> None:
        self._kv = namespace

    async def get(self, key: str) -> str | None:
        value = await self._kv.get(key)
        # A missing key comes back as JS null: None, or pyodide's ``jsnull`` on runtimes that keep it apart.
        return value if isinstance(value, str) else None

    async def put(self, key: str, value: str, ttl_seconds: int) -> None:
        ttl = int(ttl_seconds)
        if ttl < KV_MIN_TTL_SECONDS:
            # KV cannot expire an entry sooner; rather than fail every write, keep it for KV's minimum.
            logger.warning("cache TTL %ss is below KV's minimum; using %ss", ttl, KV_MIN_TTL_SECONDS)
            ttl = KV_MIN_TTL_SECONDS
        await self._kv.put(key, value, expirationTtl=ttl)
