"""Agent identities: core's :mod:`lmstudio_agent.bridge.identities`, named here too for the hub's callers.

The list and its rules live in the core once, because the serverless hubs (the Worker's Durable Objects and
the Lambda WebSocket handlers) admit agents by the same rules and carry only the core package.
"""

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

__all__ = ["MIN_TOKEN_CHARS", "SHARED", "AgentIdentity", "Identities", "IdentityError", "IdentitySource",
           "parse_identities", "refusal_of"]
