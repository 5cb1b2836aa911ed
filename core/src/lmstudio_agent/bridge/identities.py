"""Agent identities: which token may connect as which ``agent_id``, offering which tools.

The list comes from a file (``--agents-file`` / ``BRIDGE_AGENTS_FILE``) or an environment variable
(``BRIDGE_AGENTS``), one agent a line (``;`` also separates entries in the variable)::

    # agent_id: token  tools (comma-separated, or * for any tool)
    home-pc: 3b1f0c...e9  analyze_sentiment,extract_data
    gpu-box: 77aa41...02  *

A token is at least ``MIN_TOKEN_CHARS`` characters and belongs to one agent. An agent may register only its
own ``agent_id`` and only tools its line names. Errors name the line, never a token.

The shared token (``--token`` / ``BRIDGE_TOKEN``) is the simple mode: whoever holds it may register any
``agent_id`` with any tools, so every such agent is trusted as one owner. Both may be configured at once.

This module is in the core (stdlib only) because every hub admits agents by these rules: the process hub
(``lmstudio_hub``), and the serverless ones, which carry only the core package (the Worker's Durable Objects,
the Lambda WebSocket handlers).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterable

MIN_TOKEN_CHARS = 16
SHARED = "*shared*"  # the owner name of agents that connected with the shared token
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_TOOL = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class IdentityError(ValueError):
    """The identity list is malformed; the message names the source and line (never a token)."""


@dataclass(frozen=True)
class AgentIdentity:
    """One agent the hub admits: what a connection's token authenticated as.

    Args:
        agent_id: The only ``agent_id`` the token may register; None for the shared token (any ``agent_id``).
        token: The secret the agent presents (kept out of ``repr``).
        tools: The tools it may offer; None for any tool (``*`` on its line, and the shared token).
    """

    agent_id: str | None
    token: str = field(repr=False)
    tools: frozenset[str] | None

    @property
    def owner(self) -> str:
        """Who serves for this identity in cache keys: its ``agent_id``, or :data:`SHARED` for the shared token."""
        return self.agent_id if self.agent_id is not None else SHARED

    def may_offer(self, tools: Iterable[str]) -> bool:
        """Whether this identity may offer every one of ``tools``.

        Args:
            tools: The tool names to check.
        """
        return self.tools is None or self.tools.issuperset(tools)

    def fingerprint(self) -> str:
        """What revocation compares: a change of token or tools revokes the connection made with the old one."""
        tools = "*" if self.tools is None else ",".join(sorted(self.tools))
        return hashlib.sha256(f"{self.agent_id}\0{self.token}\0{tools}".encode()).hexdigest()


@dataclass(frozen=True)
class Identities:
    """The admitted agents (per-agent tokens) and, optionally, the shared token.

    Raises IdentityError when an ``agent_id`` is listed twice or two entries share a token, since a token must
    name exactly one agent.

    Args:
        agents: The per-agent identities.
        shared_token: The shared token (the simple mode); None or empty: none.
    """

    agents: tuple[AgentIdentity, ...] = ()
    shared_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        ids = [a.agent_id for a in self.agents]
        if len(set(ids)) != len(ids):
            raise IdentityError("an agent_id is listed twice")
        tokens = [a.token for a in self.agents] + ([self.shared_token] if self.shared_token else [])
        if len(set(tokens)) != len(tokens):
            raise IdentityError("two agents (or an agent and the shared token) have the same token")

    @property
    def empty(self) -> bool:
        """True when no agent can be admitted: no per-agent entries and no shared token."""
        return not self.agents and not self.shared_token

    def authenticate(self, token: str) -> AgentIdentity | None:
        """The identity whose token this is, or None.

        Every token is compared, each in constant time, so the time taken does not tell which one matched.

        Args:
            token: The token the connection presented.
        """
        found: AgentIdentity | None = None
        presented = token.encode()
        for identity in self.agents:
            if hmac.compare_digest(presented, identity.token.encode()):
                found = identity
        if self.shared_token and hmac.compare_digest(presented, self.shared_token.encode()):
            found = AgentIdentity(None, self.shared_token, None)
        return found

    def get(self, agent_id: str) -> AgentIdentity | None:
        """The per-agent identity listed for ``agent_id``, or None (the shared token is never returned here).

        Args:
            agent_id: The agent's id.
        """
        return next((a for a in self.agents if a.agent_id == agent_id), None)

    def shared(self) -> AgentIdentity | None:
        """The shared token's identity (any ``agent_id``, any tools), or None when no shared token is set."""
        return AgentIdentity(None, self.shared_token, None) if self.shared_token else None

    def owners_of(self, tools: Iterable[str]) -> list[str]:
        """Who may serve a task naming ``tools``: the agents allowed every one of them (and the shared mode).

        Args:
            tools: The tool names the task uses.
        """
        names = list(tools)
        owners = sorted(a.owner for a in self.agents if a.may_offer(names))
        return owners + ([SHARED] if self.shared_token else [])

    def current(self, identity: AgentIdentity) -> bool:
        """Whether ``identity`` is still admitted, unchanged; a connection whose identity is not gets closed.

        Args:
            identity: What the connection authenticated as when it opened.
        """
        if identity.agent_id is None:
            shared = self.shared_token
            return bool(shared) and shared is not None and hmac.compare_digest(identity.token.encode(), shared.encode())
        now = self.get(identity.agent_id)
        return now is not None and now.fingerprint() == identity.fingerprint()


def refusal_of(identity: AgentIdentity, agent_id: str, tools: Iterable[str]) -> str | None:
    """Why ``identity`` may not register ``agent_id`` offering ``tools`` (None: it may).

    Args:
        identity: What the connection's token authenticated as.
        agent_id: The id the ``agent:register`` frame names.
        tools: The tools it names.
    """
    names = list(tools)
    if identity.agent_id is not None and agent_id != identity.agent_id:
        return f"this token belongs to agent {identity.agent_id!r}, not {agent_id!r}"
    if not identity.may_offer(names):
        extra = sorted(set(names) - (identity.tools or frozenset()))
        return f"agent {agent_id!r} may not offer tool(s): {', '.join(extra)}"
    return None


def parse_identities(text: str, *, source: str = "BRIDGE_AGENTS") -> list[AgentIdentity]:
    """The ``agent_id: token tools`` lines of ``text`` (blank lines and ``#`` comments skipped).

    Raises IdentityError for a malformed entry, naming ``source`` and the entry's number (never its token).

    Args:
        text: The entries, one a line (``;`` also separates them).
        source: Where ``text`` came from (the variable's name or the file's path), for the error messages.
    """
    identities: list[AgentIdentity] = []
    for number, line in enumerate(re.split(r"[\n;]", text), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        agent_id, sep, rest = line.partition(":")
        agent_id = agent_id.strip()
        parts = rest.split()
        where = f"{source}, entry {number}"
        if not sep or not _ID.match(agent_id):
            raise IdentityError(f"{where}: expected 'agent_id: token tools' with an agent_id of letters, digits, ._@-")
        if len(parts) != 2:
            raise IdentityError(f"{where} ({agent_id}): expected a token and the tools (comma-separated, or *)")
        token, tools_text = parts
        if len(token) < MIN_TOKEN_CHARS:
            raise IdentityError(f"{where} ({agent_id}): the token must be at least {MIN_TOKEN_CHARS} characters")
        if tools_text == "*":
            tools = None
        else:
            names = [t.strip() for t in tools_text.split(",") if t.strip()]
            bad = [t for t in names if not _TOOL.match(t)]
            if not names or bad:
                raise IdentityError(f"{where} ({agent_id}): tools must be comma-separated names, or *")
            tools = frozenset(names)
        identities.append(AgentIdentity(agent_id, token, tools))
    return identities


@dataclass
class IdentitySource:
    """Where the identities come from; :meth:`load` reads them again (the file on every call).

    Args:
        shared_token: The shared token (``--token`` / ``BRIDGE_TOKEN``); None or empty: none.
        agents_file: The agents file (``--agents-file`` / ``BRIDGE_AGENTS_FILE``), or None.
        agents_env: The entries of ``BRIDGE_AGENTS``, or None.
    """

    shared_token: str | None = field(default=None, repr=False)
    agents_file: Path | None = None
    agents_env: str | None = field(default=None, repr=False)

    def load(self) -> Identities:
        """Read the identities now: the variable's entries, the file's, and the shared token.

        Raises IdentityError when the file cannot be read, an entry is malformed, or an id or token repeats.
        """
        agents: list[AgentIdentity] = []
        if self.agents_env:
            agents += parse_identities(self.agents_env, source="BRIDGE_AGENTS")
        if self.agents_file is not None:
            try:
                text = self.agents_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise IdentityError(f"cannot read the agents file {self.agents_file}: {exc.__class__.__name__}") from None
            agents += parse_identities(text, source=str(self.agents_file))
        return Identities(tuple(agents), self.shared_token or None)

    def stamp(self) -> tuple[float, int] | None:
        """The agents file's (mtime, size), to notice a change without reading it."""
        if self.agents_file is None:
            return None
        try:
            st = os.stat(self.agents_file)
        except OSError:
            return None
        return (st.st_mtime, st.st_size)
