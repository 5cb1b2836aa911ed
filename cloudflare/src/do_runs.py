"""The Worker's async runs: one Durable Object per run (``RunObject``, bound as ``RUNS``).

Why a Durable Object and not KV: a run must outlive its request, and a Worker's ``waitUntil`` work ends 30 s
after the response, while a Durable Object's alarm handler may run for 15 minutes. A run's object also keeps
its state in storage that is strongly consistent and serialises the object's events (so compare-and-set on
the status is a read and a write), where KV is eventually consistent and takes one write a second per key.

This module is the store (:class:`DurableRunStore`, core's ``runs.RunStore`` over the object's storage);
entry.py holds the object's class and the forwarding from the Worker.
"""

from __future__ import annotations

import time
from typing import Any
from collections.abc import Callable

from lmstudio_agent.endpoint.runs import RunState, run_state_json

STATE_KEY = "run"


class DurableRunStore:
    """One run's state in its Durable Object's storage (``await storage.get/put``, strings only)."""

    def __init__(self, storage: Any, clock: Callable[[], float] = time.time) -> None:
        self._storage = storage
        self._clock = clock

    async def get(self, run_id: str) -> RunState | None:
        raw = await self._storage.get(STATE_KEY)
        if not isinstance(raw, str):  # missing: JS undefined
            return None
        state = RunState.model_validate_json(raw)
        if state.run_id != run_id or state.expires_at <= self._clock():
            return None
        return state

    async def put(self, state: RunState, expect: str | None = None) -> bool:
        # The object's input gate holds other events while its storage is read, so this is compare-and-set.
        if expect is not None:
            current = await self.get(state.run_id)
            if current is None or current.status != expect:
                return False
        await self._storage.put(STATE_KEY, run_state_json(state))
        return True
