"""Tools from MCP servers beside the agent's Python tools (the ``mcp`` extra: ``pip install 'lmstudio-agent[mcp]'``).

:mod:`.config` reads LM Studio's ``mcp.json`` with pydantic alone; :class:`MCPServers` (in :mod:`.servers`)
needs the official MCP SDK and is imported on first use, so ``import lmstudio_agent`` never loads the SDK.
See docs/readme/mcp.md.
"""

from __future__ import annotations

from typing import Any

from .config import DEFAULT_CALL_TIMEOUT, MCPConfig, MCPConfigError, MCPServerConfig, load_mcp_config

_FROM_SERVERS = ("MCPServers", "MCPServerConnection", "MCPTool", "side_effects_from_annotations", "tool_result")

__all__ = ["DEFAULT_CALL_TIMEOUT", "MCPConfig", "MCPConfigError", "MCPServerConfig", "load_mcp_config",
           *_FROM_SERVERS]


def __getattr__(name: str) -> Any:
    if name in _FROM_SERVERS:
        from . import servers  # needs the SDK; says which extra to install when it is missing

        return getattr(servers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
