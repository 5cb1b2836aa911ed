"""Agent identities: the list the hub admits now, loaded from its source and reloaded when it changes.

The list's format and its rules (which token is which agent, what it may register and offer) are core's
:mod:`lmstudio_agent.bridge.identities`, named here too for the hub's callers. They live in the core once,
because the serverless hubs (the Worker's Durable Objects and the Lambda WebSocket handlers) admit agents by the
same rules and carry only the core package. What is the process hub's alone is here: :class:`LiveIdentities`,
the current list, re-read from an :class:`IdentitySource` (on a signal, or when its file changes), and the rule
for which open connections a new list no longer admits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from lmstudio_agent.bridge.identities import (
    MIN_TOKEN_CHARS,
    SHARED,
    AgentIdentity,
    Identities,
    IdentityError,
    IdentitySource,
    parse_identities,
    refusal_of,
)
from lmstudio_agent.endpoint.contract import presented_key
from lmstudio_agent.errors import AgentError

from .state import logger

__all__ = ["MIN_TOKEN_CHARS", "SHARED", "AgentIdentity", "Identities", "IdentityError", "IdentitySource",
           "LiveIdentities", "parse_identities", "refusal_of"]


class LiveIdentities:
    """The identities the hub admits now, and where they are read again from.

    Args:
        identities: An :class:`Identities`, or an :class:`IdentitySource` that :meth:`reload` reads again (and
            :meth:`watch` watches, when it has a file); None: the shared token alone.
        token: The shared token, added to either (a source's own shared token wins).
        poll_seconds: How often :meth:`watch` looks at the agents file.

    Raises ValueError when they admit no agent.
    """

    def __init__(self, identities: Identities | IdentitySource | None, token: str | None, poll_seconds: float) -> None:
        self.source = identities if isinstance(identities, IdentitySource) else None
        if self.source is not None:
            if token and not self.source.shared_token:
                self.source.shared_token = token
            loaded = self.source.load()
        else:
            loaded = identities if isinstance(identities, Identities) else Identities()
            if token:
                loaded = Identities(loaded.agents, token)
        if loaded.empty:
            raise ValueError("the bridge hub needs agent identities (BRIDGE_AGENTS_FILE, BRIDGE_AGENTS) or a shared token (BRIDGE_TOKEN)")
        self.current = loaded
        self.poll_seconds = poll_seconds

    def authenticate(self, token: str) -> AgentIdentity | None:
        return self.current.authenticate(token)

    def identify(self, headers: Iterable[tuple[str, str]]) -> AgentIdentity | None:
        """Who the credentials in ``headers`` authenticate as now (None: nobody, or malformed credentials)."""
        try:
            key = presented_key(headers)
        except AgentError:
            return None
        return self.current.authenticate(key) if key else None

    def owner_of(self, tools: Iterable[str]) -> str:
        return ",".join(self.current.owners_of(tools))

    def reload(self) -> Identities | None:
        """The source read again, or None (logged) when there is none, or it is malformed or admits no agent."""
        if self.source is None:
            return None
        try:
            identities = self.source.load()
        except IdentityError as exc:
            logger.error("agent identities not reloaded, keeping the current ones: %s", exc)
            return None
        if identities.empty:
            logger.error("agent identities not reloaded: the new list admits no agent")
            return None
        return identities

    def admits(self, identity: AgentIdentity, tools: Iterable[str]) -> bool:
        """Whether a connection that authenticated as ``identity`` and registered ``tools`` is still admitted:
        its identity unchanged (not revoked, same token and tools) and every tool it offers still allowed."""
        if not self.current.current(identity):
            return False
        now = self.current.get(identity.agent_id) if identity.agent_id else self.current.shared()
        return now is not None and now.may_offer(tools)

    @property
    def watches(self) -> bool:
        """Whether there is a file to watch."""
        return self.source is not None and self.source.agents_file is not None

    async def watch(self, on_change: Callable[[], object]) -> None:
        """Call ``on_change`` whenever the agents file's mtime or size changes (runs until cancelled)."""
        assert self.source is not None
        stamp = self.source.stamp()
        while True:
            await asyncio.sleep(self.poll_seconds)
            now = self.source.stamp()
            if now != stamp:
                stamp = now
                on_change()
