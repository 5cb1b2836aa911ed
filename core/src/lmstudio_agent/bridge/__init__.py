"""The agent's side of the AI Bridge: the protocol, and the client that serves a hub's tasks.

The client needs the ``bridge`` extra (websockets); the protocol needs only pydantic. The hub server is the ``lmstudio-hub`` distribution (``lmstudio_hub``).
"""

from typing import Any

from .protocol import DEFAULT_BRIDGE_PORT, DEFAULT_BRIDGE_URL, MAX_FRAME_BYTES, parse_frame

_CLIENT_NAMES = ("BridgeAgent", "BridgeRefusedError", "serve_agent")


def __getattr__(name: str) -> Any:
    # The client needs websockets; the protocol (pydantic only) is importable without it, so the core can
    # name the default bridge URL without the extra.
    if name in _CLIENT_NAMES:
        from . import agent_client

        return getattr(agent_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BridgeAgent",
    "BridgeRefusedError",
    "DEFAULT_BRIDGE_PORT",
    "DEFAULT_BRIDGE_URL",
    "MAX_FRAME_BYTES",
    "parse_frame",
    "serve_agent",
]
