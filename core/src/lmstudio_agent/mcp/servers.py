"""MCP servers' tools as project :class:`~lmstudio_agent.agent.tools.Tool` objects, through the official MCP SDK.

:class:`MCPServers` starts every server of an ``mcp.json`` (stdio processes, streamable HTTP sessions), lists
their tools and wraps each one as an :class:`MCPTool`: its JSON schema is the server's ``inputSchema`` (so the
native, parsed and constrained modes all work for it), a call goes to the server, and the result comes back
(structured content when the tool declares it, else its text). A failed call, an ``isError`` result, a
timeout or a server that went away raise ``AgentError(TOOL_EXECUTION_FAILED)``, which the agent loop feeds
back to the model like any tool error. Every connection lives in a task of its own, so the servers can be
started and stopped from different tasks (:mod:`.server_connection`); :meth:`MCPServers.stop` ends the processes
and closes the sessions.

Needs the ``mcp`` extra (``pip install 'lmstudio-agent[mcp]'``). Tested with mcp 1.30.0, the version pinned.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any, TextIO, cast
from collections.abc import Iterable, Mapping, Sequence

from ..agent.loop import TERMINATE
from ..deadline import Deadline
from ..errors import AgentError, ErrorCode
from ..model.schema import inline_refs
from ..agent.tools import NO_DESCRIPTION, ActionContext, Tool, ToolRegistry
from .config import ConfigSource, MCPConfig, MCPConfigError, load_mcp_config
from .server_connection import DEFAULT_CONNECT_TIMEOUT as DEFAULT_CONNECT_TIMEOUT  # needs the SDK: says so if absent
from .server_connection import DEFAULT_STOP_TIMEOUT as DEFAULT_STOP_TIMEOUT
from .server_connection import HTTP_READ_TIMEOUT as HTTP_READ_TIMEOUT
from .server_connection import MAX_ERROR_CHARS as MAX_ERROR_CHARS
from .server_connection import PROBE_INTERVAL as PROBE_INTERVAL
from .server_connection import SESSION_TERMINATED as SESSION_TERMINATED
from .server_connection import MCPServerConnection

__all__ = ["MCPServers", "MCPServerConnection", "MCPTool", "side_effects_from_annotations", "tool_result"]

logger = logging.getLogger("lmstudio_agent.mcp")

_NAME_OK = re.compile(r"[^A-Za-z0-9_-]")
MAX_TOOL_NAME = 64


def side_effects_from_annotations(annotations: Any) -> bool:
    """Whether a tool with these MCP annotations has side effects (and so is never cached).

    Only a tool that declares ``readOnlyHint: true`` (and not ``destructiveHint: true``) is free of them; no
    annotations at all count as side effects. ``idempotentHint`` does not make a writing tool cacheable: a
    cached answer would skip the write.

    Args:
        annotations: The tool's MCP ``annotations`` (None: it has none).
    """
    if annotations is None:
        return True
    read_only = getattr(annotations, "readOnlyHint", None)
    destructive = getattr(annotations, "destructiveHint", None)
    return not (read_only is True and destructive is not True)


def _hint_tags(annotations: Any) -> list[str]:
    if annotations is None:
        return []
    tags = []
    for hint, tag in (("readOnlyHint", "read-only"), ("destructiveHint", "destructive"),
                      ("idempotentHint", "idempotent"), ("openWorldHint", "open-world")):
        if getattr(annotations, hint, None) is True:
            tags.append(tag)
    return tags



def _content_text(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return cast(str, block.text)
    if kind in ("image", "audio"):
        return f"[{kind} {block.mimeType}, {len(block.data)} base64 characters]"
    if kind == "resource_link":
        return f"[resource {block.uri}]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        return text if text is not None else f"[resource {resource.uri} ({resource.mimeType or 'binary'})]"
    return f"[{kind} content]"


def tool_result(result: Any, output_schema: Mapping[str, Any] | None = None) -> Any:
    """What an MCP ``CallToolResult`` gives the model: its structured content when present (unwrapped from
    ``{"result": x}`` when the tool's output schema is just that wrapper), else its text.

    Args:
        result: The MCP ``CallToolResult``.
        output_schema: The tool's declared output schema, if any.
    """
    structured = getattr(result, "structuredContent", None)
    if structured is not None:
        properties = (output_schema or {}).get("properties")
        if isinstance(properties, dict) and list(properties) == ["result"] and list(structured) == ["result"]:
            return structured["result"]
        return structured
    parts = [_content_text(block) for block in result.content]
    return parts[0] if len(parts) == 1 else "\n".join(parts)


@dataclass
class MCPTool(Tool):
    """A tool that lives on an MCP server. ``name`` is what the model sees; ``remote_name`` the server's."""

    server: str = ""
    remote_name: str = ""
    output_schema: dict[str, Any] | None = field(default=None, repr=False, compare=False)



def _exposed(name: str) -> str:
    return _NAME_OK.sub("_", name)[:MAX_TOOL_NAME] or "tool"


class MCPServers:
    """The servers of an ``mcp.json``, started and stopped together; their tools in :attr:`tools`.

    Use ``async with MCPServers("mcp.json") as servers: Agent(client=..., tools=servers.tools)``, or pass the
    config to ``LMStudioAgent(mcp_config=...)``, which does this for you.

    Args:
        config: A path to an ``mcp.json``, its parsed JSON, or an :class:`MCPConfig`.
        allow: Per-server allow-lists (``{"server": ["tool", ...]}``); they replace the file's ``allowedTools``.
        reserved: Tool names already taken (the agent's Python tools; ``terminate`` always is); an MCP tool
            with one gets a prefix.
        allow_stdio: False refuses stdio servers (hosts that cannot start processes: only HTTP servers).
        connect_timeout: Seconds one server may take to start.
        stop_timeout: Seconds one server may take to stop.
        errlog: Where stdio servers' stderr goes (default: this process's stderr).
    """

    def __init__(
        self,
        config: ConfigSource,
        *,
        allow: Mapping[str, Sequence[str]] | None = None,
        reserved: Iterable[str] = (),
        allow_stdio: bool = True,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        errlog: TextIO | None = None,
    ) -> None:
        """Read and check the config; no server starts until :meth:`start` (or ``async with``)."""
        self.config: MCPConfig = load_mcp_config(config)
        self.allow = {name: list(tools) for name, tools in (allow or {}).items()}
        unknown = sorted(set(self.allow) - set(self.config.servers))
        if unknown:
            raise MCPConfigError(f"allow-list for unknown MCP server(s): {', '.join(unknown)}")
        if not allow_stdio:
            stdio = [name for name, server in self.config.enabled().items() if server.transport == "stdio"]
            if stdio:
                raise MCPConfigError(f"stdio MCP servers cannot run here (only streamable HTTP): {', '.join(stdio)}")
        self.reserved = set(reserved) | {TERMINATE.name}  # the loop's own tool keeps its name
        self.connect_timeout = connect_timeout
        self.stop_timeout = stop_timeout
        self.errlog = errlog
        self.connections: dict[str, MCPServerConnection] = {}
        self.tools = ToolRegistry()
        self._started = False
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"MCPServers({list(self.config.servers)!r}, running={self.running})"

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._started

    @property
    def healthy(self) -> bool:
        """Running, and no server has gone away since the start."""
        return self._started and all(c.running for c in self.connections.values())

    async def restart_if_unhealthy(self, reserved: Iterable[str] = ()) -> ToolRegistry:
        """Start the servers, or stop and start them again when one has gone away (a long-lived agent or
        endpoint outlives a crashed server).

        Args:
            reserved: More tool names already taken, as :meth:`start`.
        """
        return await self.start(reserved, restart_unhealthy=True)

    async def __aenter__(self) -> MCPServers:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def start(self, reserved: Iterable[str] = (), *, restart_unhealthy: bool = False) -> ToolRegistry:
        """Start every enabled server at once and build :attr:`tools`; idempotent while running.

        ``reserved`` adds taken names to the constructor's; ``restart_unhealthy`` stops and starts them again
        when one has gone away. If any server fails to start, the others are
        stopped and the first failure is raised (CONNECTION_FAILED; UNKNOWN_TOOL for an allow-list naming a
        tool the server does not offer).

        Args:
            reserved: Tool names already taken, added to the constructor's.
            restart_unhealthy: Stop and start the servers again when one has gone away.
        """
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:  # the sync API runs each call in a new loop
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:  # concurrent runs of one agent start (or restart) the servers once
            if self._started and (self.healthy or not restart_unhealthy):
                return self.tools
            if self._started:
                gone = [name for name, c in self.connections.items() if not c.running]
                logger.warning("restarting MCP servers; gone: %s", ", ".join(gone))
                await self.stop()
            self.connections = {
                name: MCPServerConnection(name, server, connect_timeout=self.connect_timeout,
                                          stop_timeout=self.stop_timeout, errlog=self.errlog)
                for name, server in self.config.enabled().items()
            }
            try:
                results = await asyncio.gather(*(c.start() for c in self.connections.values()),
                                               return_exceptions=True)
                failures = [r for r in results if isinstance(r, BaseException)]
                if failures:
                    raise failures[0]
                self.tools = self._build_tools(self.reserved | set(reserved))
            except BaseException:
                await self.stop()
                raise
            self._started = True
            return self.tools

    async def stop(self) -> None:
        """Stop every server (stdio processes ended, HTTP sessions closed). Safe to call more than once."""
        connections = list(self.connections.values())
        self._started = False
        self.tools = ToolRegistry()
        if connections:
            await asyncio.gather(*(c.stop() for c in connections), return_exceptions=True)

    def _build_tools(self, reserved: set[str]) -> ToolRegistry:
        chosen: list[tuple[MCPServerConnection, Any]] = []
        for name, connection in self.connections.items():
            offered = {tool.name: tool for tool in connection.tools}
            allowed = self.allow.get(name, connection.config.allowed_tools)
            if allowed is None:
                chosen.extend((connection, tool) for tool in connection.tools)
                continue
            missing = [tool for tool in allowed if tool not in offered]
            if missing:
                raise AgentError(ErrorCode.UNKNOWN_TOOL,
                                 f"The allow-list of MCP server '{name}' names tools it does not offer: "
                                 f"{', '.join(missing)} (it offers: {', '.join(offered) or 'none'})")
            chosen.extend((connection, offered[tool]) for tool in dict.fromkeys(allowed))
        # A name offered twice (by two servers, or by a server and a Python tool) is prefixed with the server.
        counts: dict[str, int] = {}
        for _, tool in chosen:
            counts[_exposed(tool.name)] = counts.get(_exposed(tool.name), 0) + 1
        registry = ToolRegistry()
        for connection, tool in chosen:
            base = _exposed(tool.name)
            prefix = connection.config.prefix
            if prefix is None and (counts[base] > 1 or base in reserved):
                prefix = _exposed(connection.name)
            exposed = _exposed(f"{prefix}_{base}") if prefix else base
            if exposed in registry or exposed in reserved:
                raise MCPConfigError(f"MCP tool name '{exposed}' (server '{connection.name}') is still taken after "
                                     "prefixing: set a distinct 'prefix' for that server")
            registry.register(self._wrap(connection, tool, exposed))
        return registry

    @staticmethod
    def _wrap(connection: MCPServerConnection, tool: Any, exposed: str) -> MCPTool:
        try:
            schema = inline_refs(dict(tool.inputSchema))
        except ValueError:  # a recursive or remote $ref: validated as it is; the core resolves local refs
            schema = dict(tool.inputSchema)
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        remote = tool.name
        timeout = connection.config.timeout
        output_schema = dict(tool.outputSchema) if tool.outputSchema else None

        async def call_mcp_tool(action_context: ActionContext | None = None, **arguments: Any) -> Any:
            deadline = getattr(getattr(action_context, "llm", None), "deadline", None)
            limit = deadline.clamp(timeout) if isinstance(deadline, Deadline) else timeout
            result = await connection.call(remote, arguments, limit)
            if result.isError:
                text = "\n".join(_content_text(block) for block in result.content).strip() or "the tool reported an error"
                if len(text) > MAX_ERROR_CHARS:
                    text = text[: MAX_ERROR_CHARS - 3] + "..."
                raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED, text)
            return tool_result(result, output_schema)

        call_mcp_tool.__name__ = exposed
        description = (tool.description or getattr(tool, "title", None) or NO_DESCRIPTION).strip()
        tags = ["mcp", f"mcp:{connection.name}", *_hint_tags(tool.annotations)]
        return MCPTool(
            name=exposed, description=description, parameters=schema, function=call_mcp_tool,
            side_effects=side_effects_from_annotations(tool.annotations), tags=tags, args_model=None,
            injected={"action_context": "context"}, server=connection.name, remote_name=remote,
            output_schema=output_schema,
        )
