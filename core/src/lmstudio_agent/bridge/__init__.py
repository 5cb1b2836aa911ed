"""The agent's side of the AI Bridge: the protocol, and the client that serves a hub's tasks.

The client needs the ``bridge`` extra (websockets); the protocol needs only pydantic. The hub server is the ``lmstudio-hub`` distribution (``lmstudio_hub``).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agent_client import BridgeAgent, BridgeRefusedError, serve_agent
    from .protocol import MAX_FRAME_BYTES, parse_frame

# Where a hub listens unless told otherwise. Here, not in the protocol module, so that ``LMStudioAgent`` names its
# default without importing the frames' models (``import lmstudio_agent`` stays cheap).
DEFAULT_BRIDGE_PORT = 65028
DEFAULT_BRIDGE_URL = f"ws://localhost:{DEFAULT_BRIDGE_PORT}"

_CLIENT_NAMES = ("BridgeAgent", "BridgeRefusedError", "serve_agent")
_PROTOCOL_NAMES = ("MAX_FRAME_BYTES", "parse_frame")


def __getattr__(name: str) -> Any:
    """The protocol's names, imported on first use; the client's, which need websockets (the ``bridge`` extra).

    Args:
        name: The attribute asked for.
    """
    if name in _PROTOCOL_NAMES:
        from . import protocol

        return getattr(protocol, name)
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
