"""One run's state and where runs live: the run-state model (:class:`RunState`, with the bodies the routes
answer about a run), the store protocol (:class:`RunStore`), the in-process store (:class:`MemoryRunStore`) and
the JSON text of a run for the stores that keep text.

:mod:`.runs` (the routes and the running of a run) is built on these; the adapters' stores (lambda/dynamo_runs.py,
cloudflare/src/do_runs.py) implement :class:`RunStore` over their platform.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal, Optional, Protocol
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from .contract import ExecuteRequest
from ..agent.events import RunEvent

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class RunState(BaseModel):
    """Everything about one run; what a :class:`RunStore` keeps."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    owner: str = Field(description="A digest of the key that created the run (never the key).")
    status: RunStatus = "queued"
    request: ExecuteRequest
    events: list[RunEvent] = Field(default_factory=list)
    result: Optional[dict[str, Any]] = None
    error_code: Optional[str] = None
    created_at: float
    updated_at: float
    expires_at: float

    def public(self) -> dict[str, Any]:
        """The body of ``GET /runs/{id}``."""
        body: dict[str, Any] = {
            "run_id": self.run_id,
            "status": self.status,
            "events": [e.to_dict() for e in self.events],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at,
        }
        if self.result is not None:
            body["result"] = self.result
        return body


class RunCreated(BaseModel):
    """Body of ``202`` from ``POST /runs``."""

    run_id: str
    status: Literal["queued"] = "queued"


class RunView(BaseModel):
    """Body of ``GET /runs/{id}`` (``result`` once the run succeeded or failed)."""

    run_id: str
    status: RunStatus
    events: list[RunEvent]
    result: Optional[dict[str, Any]] = Field(default=None, description="The /execute answer (success or error body).")
    created_at: float
    updated_at: float
    expires_at: float


class RunStore(Protocol):
    """Where runs live. ``get`` returns None for a missing or expired run. ``put`` with ``expect`` writes only
    if the stored run's status is still ``expect`` (compare-and-set) and says whether it wrote: that is how a
    run is taken once (queued -> running) however often it is delivered, and how a cancel is never
    overwritten by the run's own next write."""

    async def get(self, run_id: str) -> RunState | None:
        """The run, or None when it is missing or expired.

        Args:
            run_id: The run's id.
        """
        ...

    async def put(self, state: RunState, expect: str | None = None) -> bool:
        """Store ``state``; with ``expect``, only if the stored run's status is still that. Says whether it wrote.

        Args:
            state: The run to store.
            expect: The status the stored run must have for the write to happen (None: write anyway).
        """
        ...


class MemoryRunStore:
    """An in-process :class:`RunStore` (the hub's): runs live in this process and expire by ``expires_at``.

    Args:
        clock: The time in seconds since the epoch (tests pass their own).
        max_runs: How many runs it keeps at most: past that, expired runs go first, then the oldest.
    """

    def __init__(self, clock: Callable[[], float] = time.time, max_runs: int = 10_000) -> None:
        """Start with no runs."""
        self._runs: dict[str, RunState] = {}
        self._clock = clock
        self._max_runs = max_runs

    async def get(self, run_id: str) -> RunState | None:
        """A copy of the run, or None when it is missing or expired (an expired run is dropped).

        Args:
            run_id: The run's id.
        """
        state = self._runs.get(run_id)
        if state is None:
            return None
        if state.expires_at <= self._clock():
            del self._runs[run_id]
            return None
        return state.model_copy(deep=True)

    async def put(self, state: RunState, expect: str | None = None) -> bool:
        """Store a copy of ``state`` (evicting when full); with ``expect``, only if the stored status is still that.

        Args:
            state: The run to store.
            expect: The status the stored run must have for the write to happen (None: write anyway).
        """
        if expect is not None:
            current = self._runs.get(state.run_id)
            if current is None or current.status != expect:
                return False
        if state.run_id not in self._runs and len(self._runs) >= self._max_runs:
            self._evict()
        self._runs[state.run_id] = state.model_copy(deep=True)
        return True

    def _evict(self) -> None:
        now = self._clock()
        for run_id in [r for r, s in self._runs.items() if s.expires_at <= now]:
            del self._runs[run_id]
        if len(self._runs) >= self._max_runs:
            oldest = min(self._runs.values(), key=lambda s: s.created_at)
            del self._runs[oldest.run_id]

    def __len__(self) -> int:
        return len(self._runs)


def run_state_json(state: RunState) -> str:
    """A run as compact JSON (for stores that keep text).

    Args:
        state: The run.
    """
    return json.dumps(state.model_dump(mode="json", exclude_none=True), ensure_ascii=False, separators=(",", ":"))
