"""The agent's side of the AI Bridge: the protocol, and the client that serves a hub's tasks.

Needs the ``bridge`` extra (websockets). The hub server is the ``lmstudio-hub`` distribution (``lmstudio_hub``).
"""

from .agent_client import BridgeAgent, BridgeRefusedError, serve_agent
from .protocol import DEFAULT_BRIDGE_PORT, DEFAULT_BRIDGE_URL, MAX_FRAME_BYTES, parse_frame

__all__ = [
    "BridgeAgent",
    "BridgeRefusedError",
    "DEFAULT_BRIDGE_PORT",
    "DEFAULT_BRIDGE_URL",
    "MAX_FRAME_BYTES",
    "parse_frame",
    "serve_agent",
]
