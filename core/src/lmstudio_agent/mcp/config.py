"""The ``mcp.json`` file LM Studio reads, as pydantic models (no MCP SDK needed to parse or check it).

```json
{"mcpServers": {
    "files":   {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
    "weather": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ..."},
                "allowedTools": ["forecast"]}
}}
```

A server entry is a local process spoken to over stdio (``command``, ``args``, ``env``, ``cwd``) or a remote
server spoken to over streamable HTTP (``url``, ``headers``). Keys this project adds, which LM Studio
ignores: ``allowedTools`` (the tools to expose; default all), ``prefix`` (always prefix this server's tool
names with it), ``timeout`` (seconds one tool call may take; default 60). ``env`` and ``headers`` values
are secrets: they are held as ``SecretStr`` and never shown in a repr, an error or a log line.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal, Optional, Union
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from ..errors import AgentError, ErrorCode

__all__ = ["MCPConfig", "MCPServerConfig", "MCPConfigError", "load_mcp_config", "DEFAULT_CALL_TIMEOUT"]

DEFAULT_CALL_TIMEOUT = 60.0
MAX_CONFIG_BYTES = 1024 * 1024
_SERVER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class MCPConfigError(AgentError):
    """An ``mcp.json`` that cannot be used (INVALID_REQUEST); the message names the file and the entry.

    Args:
        message: What is wrong, naming the file and the entry.
    """

    def __init__(self, message: str) -> None:
        """An :class:`~lmstudio_agent.errors.AgentError` coded INVALID_REQUEST."""
        super().__init__(ErrorCode.INVALID_REQUEST, message)


class MCPServerConfig(BaseModel):
    """One entry of ``mcpServers``: ``command`` (stdio) or ``url`` (streamable HTTP), never both.

    Args:
        command: The program to start; the server speaks MCP on its stdin/stdout.
        args: Its arguments.
        env: Variables added to the SDK's safe default environment (HOME, PATH, ...); secrets.
        cwd: Its working directory.
        url: The streamable HTTP endpoint (``http://`` or ``https://``, usually ending in ``/mcp``).
        headers: Sent with every request to ``url`` (``Authorization``, API keys); secrets.
        type: Optional transport hint as other clients write it: ``stdio``, ``http``/``streamable-http``.
            ``sse`` (the deprecated HTTP+SSE transport) is refused.
        allowed_tools: ``allowedTools``: the tools to expose (default: all the server offers).
        prefix: Always expose this server's tools as ``<prefix>_<tool>``.
        timeout: Seconds one tool call may take before it fails (TOOL_EXECUTION_FAILED).
        disabled: Skip this server.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    command: Optional[str] = Field(default=None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    cwd: Optional[str] = None
    url: Optional[str] = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    type: Optional[str] = None
    allowed_tools: Optional[list[str]] = Field(default=None, alias="allowedTools")
    prefix: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    timeout: float = Field(default=DEFAULT_CALL_TIMEOUT, gt=0, le=3600)
    disabled: bool = False

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either 'command' (a stdio server) or 'url' (a streamable HTTP server)")
        kind = (self.type or "").lower().replace("_", "-")
        if kind == "sse":
            raise ValueError("the HTTP+SSE transport ('type': 'sse') is not supported; use streamable HTTP")
        if kind and kind not in ("stdio", "http", "streamable-http", "streamablehttp"):
            raise ValueError(f"unknown 'type' {self.type!r} (stdio or http)")
        if (kind == "stdio" and self.command is None) or (kind not in ("", "stdio") and self.url is None):
            raise ValueError(f"'type': {self.type!r} does not match the entry's command/url")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        """``stdio`` for a server started as a command, ``http`` for one reached at a URL."""
        return "stdio" if self.command is not None else "http"

    def describe(self) -> str:
        """Where the server is, without secrets (its program name, or the URL without a query)."""
        if self.command is not None:
            return f"stdio: {os.path.basename(self.command)}"
        return f"http: {self.url.split('?', 1)[0]}"  # type: ignore[union-attr]


class MCPConfig(BaseModel):
    """A whole ``mcp.json``: ``{"mcpServers": {name: MCPServerConfig}}``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    servers: dict[str, MCPServerConfig] = Field(alias="mcpServers")

    @field_validator("servers")
    @classmethod
    def _names(cls, value: dict[str, MCPServerConfig]) -> dict[str, MCPServerConfig]:
        for name in value:
            if not _SERVER_NAME.match(name):
                raise ValueError(f"server name {name!r} must be 1-64 letters, digits, '_', '-' or '.'")
        return value

    def enabled(self) -> dict[str, MCPServerConfig]:
        """The servers not marked ``disabled``, by name."""
        return {name: server for name, server in self.servers.items() if not server.disabled}


ConfigSource = Union[MCPConfig, Mapping[str, Any], str, "os.PathLike[str]"]


def load_mcp_config(source: ConfigSource) -> MCPConfig:
    """An :class:`MCPConfig` from a path to an ``mcp.json``, its parsed JSON, or an MCPConfig.

    Raises :class:`MCPConfigError` (INVALID_REQUEST) naming the entry at fault; never echoes a value.

    Args:
        source: A path to an ``mcp.json``, its parsed JSON, or an :class:`MCPConfig` (returned as it is).
    """
    if isinstance(source, MCPConfig):
        return source
    where = "MCP config"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        where = f"MCP config {str(path)!r}"
        try:
            raw = path.read_bytes()[: MAX_CONFIG_BYTES + 1]
        except OSError as exc:
            raise MCPConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
        if len(raw) > MAX_CONFIG_BYTES:
            raise MCPConfigError(f"{where} is larger than {MAX_CONFIG_BYTES} bytes")
        try:
            data: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MCPConfigError(f"{where} is not valid JSON: {exc}") from None
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        raise TypeError(f"mcp_config must be a path, a mapping or an MCPConfig, not {type(source).__name__}")
    if not isinstance(data, dict) or "mcpServers" not in data:
        raise MCPConfigError(f'{where} must be a JSON object with "mcpServers"')
    try:
        return MCPConfig.model_validate(data)
    except ValidationError as exc:
        # Only where and what: pydantic's own text would quote the offending value, which may be a secret.
        problems = []
        for error in exc.errors(include_url=False, include_input=False)[:5]:
            location = ".".join(str(part) for part in error.get("loc", ()) if part not in ("servers", "mcpServers"))
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append(f"mcpServers.{location}: {message}" if location else message)
        raise MCPConfigError(f"{where} is invalid: " + "; ".join(problems)) from None
