"""What the hub's parts share: its settings, its counters, and the registered agents.

The transport (:mod:`lmstudio_hub.transport`) adds an :class:`Agent` when a connection registers and removes it
when the connection ends; the scheduler (:mod:`lmstudio_hub.scheduler`) and the pass-through
(:mod:`lmstudio_hub.passthrough`) read the registry to choose an agent and fill its slots. All of them log to the
one logger the hub has always used, ``lmstudio_hub.hub``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection

from lmstudio_agent.bridge.identities import AgentIdentity

if TYPE_CHECKING:
    from .scheduler import Task

logger = logging.getLogger("lmstudio_hub.hub")  # one name for the whole hub: operators filter and read by it

MAX_ERROR_CHARS = 2000  # the most of an agent's error text passed on to a caller


@dataclass
class HubSettings:
    """The hub's settings, read by its parts when they act: see :class:`~lmstudio_hub.hub.BridgeHub`'s Args (and
    its defaults, given there once)."""

    default_model: str
    max_attempts: int
    task_timeout: float
    default_deadline: float
    max_queue: int
    max_agent_concurrency: int
    ping_interval: float | None
    ping_timeout: float | None
    close_timeout: float
    register_timeout: float
    max_frame_bytes: int
    retry_after_seconds: int


@dataclass(frozen=True)
class AgentInfo:
    """A snapshot of one registered agent."""

    agent_id: str
    model: str
    capabilities: tuple[str, ...]
    tools: tuple[str, ...]
    max_concurrency: int
    active: int


@dataclass
class HubStats:
    """Counters since start (tests and the benchmark read them)."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    requeued: int = 0
    duplicates_dropped: int = 0
    rejected_busy: int = 0
    rejected_no_agent: int = 0
    protocol_errors: int = 0


@dataclass(eq=False)
class Agent:
    """One registered connection: what it offers, and the tasks it holds now (its slots)."""

    agent_id: str
    conn: ServerConnection
    model: str
    capabilities: tuple[str, ...]
    tools: frozenset[str]
    side_effect_tools: frozenset[str]
    max_concurrency: int
    identity: AgentIdentity | None = None
    active: dict[str, Task] = field(default_factory=dict)

    def can_run(self, tools: tuple[str, ...], model: str) -> bool:
        return (not model or model == self.model) and self.tools.issuperset(tools)

    @property
    def free(self) -> int:
        return self.max_concurrency - len(self.active)


class AgentRegistry:
    """The registered agents by ``agent_id`` (one connection each), and every tool any of them ever offered."""

    def __init__(self) -> None:
        self._agents: dict[str, Agent] = {}
        self._known_tools: set[str] = set()
        self._known_side_effect_tools: set[str] = set()

    def __iter__(self) -> Iterator[Agent]:
        return iter(self._agents.values())

    def __len__(self) -> int:
        return len(self._agents)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._agents

    def add(self, agent: Agent) -> None:
        self._agents[agent.agent_id] = agent
        self._known_tools.update(agent.tools)
        self._known_side_effect_tools.update(agent.side_effect_tools)

    def remove(self, agent: Agent) -> None:
        """Forget ``agent``, unless its ``agent_id`` now belongs to another connection."""
        if self._agents.get(agent.agent_id) is agent:
            del self._agents[agent.agent_id]

    def infos(self) -> list[AgentInfo]:
        return [
            AgentInfo(a.agent_id, a.model, a.capabilities, tuple(sorted(a.tools)), a.max_concurrency, len(a.active))
            for a in self._agents.values()
        ]

    def any_can_run(self, tools: tuple[str, ...], model: str) -> bool:
        return any(agent.can_run(tools, model) for agent in self._agents.values())

    @property
    def known_tools(self) -> frozenset[str]:
        return frozenset(self._known_tools)

    def connected_tools(self) -> frozenset[str]:
        return frozenset().union(*(a.tools for a in self._agents.values()))

    def has_side_effects(self, tools: Iterable[str]) -> bool:
        names = set(tools)
        return bool(self._known_side_effect_tools & names) if names else bool(self._known_side_effect_tools)
