"""The AI Bridge hub: a WebSocket server that agents connect out to, and its HTTP API (the shared contract).

The agent's side of the bridge (the protocol and the client behind ``connect_to_bridge``) lives in the core,
``lmstudio_agent.bridge``; this distribution is only what a hub operator runs.
"""

from .hub import AgentInfo, BridgeHub, HubStats
from .http import HubHttpApp, HubHttpServer
from .identities import AgentIdentity, Identities, IdentityError, IdentitySource, parse_identities

__all__ = [
    "AgentIdentity", "AgentInfo", "BridgeHub", "HubHttpApp", "HubHttpServer", "HubStats", "Identities",
    "IdentityError", "IdentitySource", "parse_identities",
]
