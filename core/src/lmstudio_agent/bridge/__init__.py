"""The AI Bridge: a WebSocket hub that agents connect out to, and the agent side that serves its tasks.

Needs the ``bridge`` extra (websockets; uvicorn for the hub's HTTP API in :mod:`.http`). Nothing outside
this package imports it.
"""

from .agent_client import BridgeAgent, BridgeRefusedError, serve_agent
from .hub import AgentInfo, BridgeHub, HubStats
from .protocol import DEFAULT_BRIDGE_PORT, DEFAULT_BRIDGE_URL, MAX_FRAME_BYTES, parse_frame

__all__ = [
    "AgentInfo",
    "BridgeAgent",
    "BridgeHub",
    "BridgeRefusedError",
    "DEFAULT_BRIDGE_PORT",
    "DEFAULT_BRIDGE_URL",
    "HubStats",
    "MAX_FRAME_BYTES",
    "parse_frame",
    "serve_agent",
]
