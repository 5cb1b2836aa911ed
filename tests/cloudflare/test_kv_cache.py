"""The Worker's KV cache store, over the KV stand-in (BOUNDARY: tests/cloudflare/runtime.py).

The stand-in keeps KV's own rules (string values, null for a missing or expired key, ``expirationTtl`` of
at least 60 s, key limits), so these tests check that ``KVCacheStore`` calls KV the way KV accepts.
"""

from __future__ import annotations

import pytest

from tests.cloudflare.runtime import JsException, KVNamespace, load_entry

entry = load_entry()
KVCacheStore = entry.KVCacheStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kv(clock: Clock) -> KVNamespace:
    return KVNamespace(clock=clock)


# ------------------------------------------------------------------------------------ the stand-in itself


async def test_kv_standin_keeps_strings_and_expires(kv: KVNamespace, clock: Clock) -> None:
    assert await kv.get("k") is None
    await kv.put("k", "v", expirationTtl=60)
    assert await kv.get("k") == "v"
    clock.now += 59.9
    assert await kv.get("k") == "v"
    clock.now += 0.2
    assert await kv.get("k") is None
    assert len(kv) == 0


@pytest.mark.parametrize("ttl", [0, 1, 59, 59.5])
async def test_kv_standin_refuses_a_ttl_under_60(kv: KVNamespace, ttl: float) -> None:
    with pytest.raises(JsException, match="at least 60"):
        await kv.put("k", "v", expirationTtl=ttl)
    assert await kv.get("k") is None


async def test_kv_standin_refuses_what_kv_refuses(kv: KVNamespace) -> None:
    with pytest.raises(JsException, match="only strings"):
        await kv.put("k", {"not": "a string"}, expirationTtl=60)  # type: ignore[arg-type]
    for bad in ("", ".", ".."):
        with pytest.raises(JsException, match="Illegal key"):
            await kv.put(bad, "v")
    with pytest.raises(JsException, match="key length"):
        await kv.get("k" * 513)


# ------------------------------------------------------------------------------------------ KVCacheStore


async def test_store_round_trips_through_kv_with_the_ttl(kv: KVNamespace, clock: Clock) -> None:
    store = KVCacheStore(kv)
    assert await store.get("execute:abc") is None
    await store.put("execute:abc", '[{"type":"result","content":"4"}]', 3600)
    assert await store.get("execute:abc") == '[{"type":"result","content":"4"}]'
    assert kv.puts == [
        {"key": "execute:abc", "value": '[{"type":"result","content":"4"}]', "expirationTtl": 3600, "expiration": None}
    ]
    clock.now += 3600
    assert await store.get("execute:abc") is None


async def test_store_raises_a_ttl_below_kvs_minimum(kv: KVNamespace) -> None:
    store = KVCacheStore(kv)
    await store.put("execute:short", "[]", 5)  # KV itself would throw on expirationTtl=5
    assert kv.puts[-1]["expirationTtl"] == 60
    assert await store.get("execute:short") == "[]"


async def test_store_treats_a_js_null_as_a_miss() -> None:
    class JsNullKV:
        """A binding that answers pyodide's ``jsnull`` (not None) for a missing key, as newer runtimes can."""

        async def get(self, key: str) -> object:
            return object()

    assert await KVCacheStore(JsNullKV()).get("execute:x") is None


async def test_store_is_a_core_cache_store(kv: KVNamespace) -> None:
    from lmstudio_agent.endpoint.cache import CacheStore

    assert isinstance(KVCacheStore(kv), CacheStore)
