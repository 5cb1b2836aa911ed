"""The endpoint backend, split by lifetime.

- :class:`EndpointSettings`: what a deployment is configured with (env vars and secrets).
- :class:`EndpointService`: what lives for the process (a Lambda container, a Worker isolate): the settings, the
  tool registry (its argument models built once) and the tool-call mode detected for each model.
- :class:`AgentBackend`: what lives for one request, or one event loop: the HTTP client to the upstream.

Both adapters share one settings-error policy (:func:`load_settings`, :class:`UnconfiguredBackend`) and one
deadline clamp (:meth:`EndpointSettings.options`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Optional
from collections.abc import AsyncIterator, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ..agent.loop import Agent, Goal
from ..builtins import builtin_registry
from .cache import DEFAULT_TTL_SECONDS
from ..model.client import DEFAULT_BASE_URL, DEFAULT_MODEL, ChatClient
from .contract import ExecuteOptions, ToolSelection
from ..deadline import DEFAULT_DEADLINE_SECONDS, Deadline
from ..agent.documents import RunInput
from ..errors import AgentError, ErrorCode
from ..agent.events import RunEvent
from ..agent.messages import AgentMessage
from ..model.modes import ToolMode, detect_mode
from ..agent.tools import ToolRegistry

if TYPE_CHECKING:
    import httpx

    from ..mcp import MCPServers

logger = logging.getLogger("lmstudio_agent.endpoint.backend")

# The detected tool-call mode is remembered per model name, and the name comes from clients: keep a bounded
# number (least recently used dropped), so a client cycling through names cannot grow the process.
MAX_REMEMBERED_MODELS = 32
# The shortest run deadline an adapter's clamp may leave (a Lambda close to its own timeout still tries).
MIN_DEADLINE_SECONDS = 1.0

ENDPOINT_GOALS = (
    Goal(name="Persona", description="You are an agent behind an API. You complete the request with the tools."),
)


# Each setting's environment variables, the first one set wins (the one list of names EndpointSettings reads).
ENV_NAMES: dict[str, tuple[str, ...]] = {
    "lm_studio_url": ("LM_STUDIO_URL", "LM_STUDIO_API_BASE"),
    "lm_studio_token": ("LM_STUDIO_TOKEN", "LM_API_TOKEN"),
    "model": ("LM_STUDIO_MODEL",),
    "tool_mode": ("LM_TOOL_MODE",),
    "deadline_seconds": ("EXECUTE_DEADLINE_SECONDS",),
    "cache_ttl_seconds": ("CACHE_TTL_SECONDS",),
    "max_rounds": ("MAX_ROUNDS",),
    "allowed_tools": ("ALLOWED_TOOLS",),
    "openai_models": ("OPENAI_MODELS",),
}
LIST_SETTINGS = ("allowed_tools", "openai_models")


class EndpointSettings(BaseModel):
    """What an endpoint deployment is configured with (env vars and secrets; the names are in ``from_env``)."""

    model_config = ConfigDict(extra="forbid")

    lm_studio_url: str = DEFAULT_BASE_URL
    lm_studio_token: Optional[SecretStr] = None
    model: str = DEFAULT_MODEL
    tool_mode: ToolMode = ToolMode.AUTO
    deadline_seconds: float = Field(default=DEFAULT_DEADLINE_SECONDS, gt=0, le=900)
    cache_ttl_seconds: int = Field(default=DEFAULT_TTL_SECONDS, ge=60)
    max_rounds: int = Field(default=4, ge=1, le=20)
    max_tokens: int = Field(default=512, ge=16, le=8192)
    allowed_tools: Optional[list[str]] = None
    # The models behind the deployment that /v1/chat/completions passes requests through to (None: the
    # deployment's own model only).
    openai_models: Optional[list[str]] = None

    @classmethod
    def from_env(cls, env: Mapping[str, Any], **overrides: Any) -> EndpointSettings:
        """Read ``LM_STUDIO_URL`` (or ``LM_STUDIO_API_BASE``), ``LM_STUDIO_TOKEN`` (or ``LM_API_TOKEN``),
        ``LM_STUDIO_MODEL``, ``LM_TOOL_MODE``, ``EXECUTE_DEADLINE_SECONDS``, ``CACHE_TTL_SECONDS``,
        ``MAX_ROUNDS``, ``ALLOWED_TOOLS`` and ``OPENAI_MODELS`` (comma-separated); ``overrides`` win.

        An empty variable counts as unset. Raises pydantic's ValidationError for an invalid value
        (:func:`load_settings` turns it into the adapters' error).

        Args:
            env: The environment (``os.environ``, a Worker's ``env`` bindings).
            **overrides: Settings by field name, taking precedence over the environment.
        """

        def pick(*names: str) -> Any:
            for name in names:
                value = env.get(name)
                if value not in (None, ""):
                    return value
            return None

        values: dict[str, Any] = {setting: pick(*names) for setting, names in ENV_NAMES.items()}
        for setting in LIST_SETTINGS:  # comma-separated
            if values[setting]:
                values[setting] = [n.strip() for n in str(values[setting]).split(",") if n.strip()]
        values = {k: v for k, v in values.items() if v is not None}
        values.update(overrides)
        return cls.model_validate(values)

    def options(self, *, limit_seconds: float | None = None) -> ExecuteOptions:
        """The execute route's limits; the run's deadline cut to ``limit_seconds`` when the platform allows
        less (what a Lambda invocation has left, a Worker's tunnel cut), but never below 1 s.

        Args:
            limit_seconds: The seconds the platform allows this request (None: no limit beyond the setting).
        """
        deadline = self.deadline_seconds
        if limit_seconds is not None and limit_seconds < deadline:
            deadline = max(MIN_DEADLINE_SECONDS, limit_seconds)
        return ExecuteOptions(deadline_seconds=deadline, cache_ttl_seconds=self.cache_ttl_seconds)


def settings_problem(exc: ValidationError) -> str:
    """The names of the invalid settings, never their values (a secret may be among them).

    Args:
        exc: The error validating :class:`EndpointSettings` raised.
    """
    names = sorted({".".join(map(str, e["loc"])) or "settings" for e in exc.errors()})
    return "invalid " + ", ".join(names)


def load_settings(env: Mapping[str, Any], **overrides: Any) -> EndpointSettings:
    """:meth:`EndpointSettings.from_env`, with the adapters' one policy for a bad configuration: it is logged
    and raised as INTERNAL_ERROR naming the bad settings (never their values).

    Args:
        env: The environment, as for :meth:`EndpointSettings.from_env`.
        **overrides: Settings by field name, taking precedence over the environment.
    """
    try:
        return EndpointSettings.from_env(env, **overrides)
    except ValidationError as exc:
        problem = settings_problem(exc)
        logger.error("the endpoint's configuration is invalid: %s", problem)
        raise AgentError(ErrorCode.INTERNAL_ERROR, f"The endpoint is misconfigured: {problem}") from None


class SettingsCache:
    """:func:`load_settings` once per process: the settings are validated again only when a value they are
    read from changed (a Worker isolate sees the same ``env`` on every request). A bad configuration is
    remembered too, and every call raises its INTERNAL_ERROR, naming the bad settings (never their values).
    """

    def __init__(self) -> None:
        """Start with nothing loaded."""
        self._read: tuple[Any, ...] | None = None
        self._settings: EndpointSettings | None = None
        self._error: AgentError | None = None

    def load_settings(self, env: Mapping[str, Any]) -> EndpointSettings:
        """The settings for ``env`` (:func:`load_settings`), validated on the first call and after a change.

        Args:
            env: The environment, as for :meth:`EndpointSettings.from_env`.
        """
        read = tuple(env.get(name) for names in ENV_NAMES.values() for name in names)
        if read != self._read:
            self._settings, self._error = None, None
            try:
                self._settings = load_settings(env)
            except AgentError as exc:
                self._error = exc
            self._read = read
        if self._error is not None:
            raise AgentError(self._error.code, self._error.message)
        assert self._settings is not None
        return self._settings


class UnconfiguredBackend:
    """Stands in for the agent while the deployment is misconfigured: ``/health`` and auth keep working, and
    every authenticated execute answers INTERNAL_ERROR with the reason (never a secret).

    Args:
        error: What to answer every execute with, e.g. the one :func:`load_settings` raised.
    """

    default_model = ""

    def __init__(self, error: AgentError) -> None:
        """Keep the error every execute answers with."""
        self.error = error

    def cache_scope(self) -> str:
        """A fixed scope: nothing is ever run, so nothing is cached under it."""
        return "unconfigured"

    async def start(self) -> None:
        """Nothing to connect: every execute answers the configuration error."""

    def select_tools(self, names: list[str]) -> ToolSelection:
        """Raise the configuration error: the contract asks for the tools first, so this is where it surfaces.

        Args:
            names: The tool names the request asked for (unused).
        """
        raise self.error

    async def run(self, instruction: str, tools: ToolSelection, model: str, deadline: Deadline) -> list[AgentMessage]:
        """Raise the configuration error (never reached through the contract: :meth:`select_tools` raises first).

        Args:
            instruction: What the agent should do (unused).
            tools: The selected tools (unused).
            model: The model to run on (unused).
            deadline: The run's deadline (unused).
        """
        raise self.error


class EndpointService:
    """What an endpoint keeps for its whole process: the settings, the tool registry (the argument models of its
    tools are built once) and the tool-call mode detected for each model (``LM_TOOL_MODE=auto``).

    Build it once per process (a Worker keeps it at module level, a Lambda container once) and take a
    :meth:`backend` for each request.

    Args:
        settings: The deployment's configuration.
        registry: The tools to serve (default: the built-in ones), narrowed to ``settings.allowed_tools``.
        context: Properties every tool run sees in its :class:`~lmstudio_agent.agent.tools.ActionContext`.
        max_models: How many models' detected modes to remember (least recently used dropped).
        mcp_servers: MCP servers whose tools join the registry (an :class:`~lmstudio_agent.mcp.MCPServers`, built
            with ``allow_stdio=False`` on hosts that cannot start processes). They live for the process: the
            adapter awaits :meth:`start` before each execute, which connects them the first time (and again
            after one went away); ``ALLOWED_TOOLS`` may then name their tools.
    """

    def __init__(
        self,
        settings: EndpointSettings,
        registry: ToolRegistry | None = None,
        *,
        context: dict[str, Any] | None = None,
        max_models: int = MAX_REMEMBERED_MODELS,
        mcp_servers: MCPServers | None = None,
    ) -> None:
        """Narrow the registry to the allow-list and compute the cache scope; no connection is opened."""
        self.settings = settings
        registry = registry if registry is not None else builtin_registry()
        self._python_tools = registry
        self.mcp_servers = mcp_servers
        allowed = settings.allowed_tools
        if mcp_servers is None or not allowed:
            self.registry = registry.select(allowed) if allowed else registry
        else:  # the allow-list may name MCP tools, known once the servers are up (see start)
            self.registry = registry.select([n for n in allowed if n in registry])
        self.context = context if context is not None else {}
        self.max_models = max_models
        self._modes: OrderedDict[str, ToolMode] = OrderedDict()
        self._scope = self._scope_for(self.registry)

    def _scope_for(self, registry: ToolRegistry) -> str:
        settings = self.settings
        return "|".join([settings.lm_studio_url.rstrip("/"), settings.tool_mode.value, str(settings.max_rounds),
                         ",".join(sorted(registry.names()))])

    async def start(self) -> None:
        """Connect the MCP servers (if any) and add their tools; a no-op when they are up.

        Raises CONNECTION_FAILED when a server cannot be reached, UNKNOWN_TOOL when ``ALLOWED_TOOLS`` names a
        tool nobody offers.
        """
        if self.mcp_servers is None or self.mcp_servers.healthy:
            return
        mcp_tools = await self.mcp_servers.restart_if_unhealthy(reserved=self._python_tools.names())
        combined = self._python_tools.merged(mcp_tools)
        self.registry = combined.select(self.settings.allowed_tools) if self.settings.allowed_tools else combined
        self._scope = self._scope_for(self.registry)

    async def aclose(self) -> None:
        """Stop the MCP servers (the end of the process)."""
        if self.mcp_servers is not None:
            await self.mcp_servers.stop()

    @property
    def default_model(self) -> str:
        """The model a request that names none runs on (``LM_STUDIO_MODEL``)."""
        return self.settings.model

    def cache_scope(self) -> str:
        """Identity of what answers depend on: the upstream URL, the tool mode, the round limit and the tools."""
        return self._scope

    def select_tools(self, names: list[str]) -> ToolSelection:
        """The selection for ``names`` (empty: every tool on the allow-list); AgentError(UNKNOWN_TOOL) for a
        name the registry does not have.

        Args:
            names: The tool names the request asked for.
        """
        selected = self.registry.select(names) if names else self.registry
        return ToolSelection(tuple(selected.names()), any(t.side_effects for t in selected), tools=selected)

    async def mode_for(self, client: ChatClient, model: str, deadline: Deadline | None = None) -> ToolMode:
        """The configured mode, or the one detected for ``model`` (once, then remembered).

        Args:
            client: The client to probe the model with, when its mode is not known yet.
            model: The model id.
            deadline: The run's deadline (bounds the detection).
        """
        if self.settings.tool_mode is not ToolMode.AUTO:
            return self.settings.tool_mode
        mode = self._modes.get(model)
        if mode is None:
            mode = await detect_mode(client, model, deadline=deadline)
            logger.info("tool-call mode for %s: %s", model, mode.value)
        self._modes[model] = mode
        self._modes.move_to_end(model)
        while len(self._modes) > self.max_models:
            self._modes.popitem(last=False)
        return mode

    def remembered_models(self) -> list[str]:
        """The models whose mode is remembered, least recently used first."""
        return list(self._modes)

    def backend(self, *, transport: httpx.AsyncBaseTransport | None = None) -> AgentBackend:
        """A backend for one request (or one event loop): a fresh HTTP client over this service.

        Args:
            transport: The httpx transport to the upstream (tests); the default opens real connections.
        """
        return AgentBackend(self, transport=transport)


class AgentBackend:
    """Runs execute requests with the agent loop against the configured OpenAI-compatible upstream.

    It holds what lives for one request, or for one event loop: the HTTP client and its connection pool.
    Everything that lives for the process is its :class:`EndpointService`. (A Worker may not share one
    request's I/O objects with another, so it takes a backend per request; a Lambda container runs one request
    at a time on one loop, so it keeps one.)

    Args:
        service: The process-wide part; given :class:`EndpointSettings`, a service is built from them.
        registry: With settings only: the tools to serve (default: the built-in ones).
        transport: The httpx transport to the upstream (tests); the default opens real connections.
        context: With settings only: properties every tool run sees.
        mcp_servers: With settings only: MCP servers whose tools join the registry.
    """

    def __init__(
        self,
        service: EndpointService | EndpointSettings,
        registry: ToolRegistry | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        context: dict[str, Any] | None = None,
        mcp_servers: MCPServers | None = None,
    ) -> None:
        """Take the service (or build one from settings) and open no connection yet: the client connects lazily."""
        self._owns_service = isinstance(service, EndpointSettings)
        if isinstance(service, EndpointSettings):
            service = EndpointService(service, registry, context=context, mcp_servers=mcp_servers)
        elif registry is not None or context is not None or mcp_servers is not None:
            raise TypeError("registry, context and mcp_servers belong to the EndpointService")
        self.service = service
        self.settings = service.settings
        settings = service.settings
        token = settings.lm_studio_token.get_secret_value() if settings.lm_studio_token else None
        self.client = ChatClient(settings.lm_studio_url, token, settings.model,
                                 timeout=settings.deadline_seconds, max_retries=2, transport=transport)

    @property
    def default_model(self) -> str:
        """The service's default model."""
        return self.service.default_model

    @property
    def registry(self) -> ToolRegistry:
        """The service's tools (MCP servers' tools included once :meth:`start` connected them)."""
        return self.service.registry

    @property
    def mcp_servers(self) -> MCPServers | None:
        """The service's MCP servers (None: it has none)."""
        return self.service.mcp_servers

    async def start(self) -> None:
        """Connect the service's MCP servers if they are not up (:meth:`EndpointService.start`)."""
        await self.service.start()

    def cache_scope(self) -> str:
        """The service's cache scope (:meth:`EndpointService.cache_scope`)."""
        return self.service.cache_scope()

    def select_tools(self, names: list[str]) -> ToolSelection:
        """The service's selection for ``names`` (:meth:`EndpointService.select_tools`).

        Args:
            names: The tool names the request asked for (empty: the whole allow-list).
        """
        return self.service.select_tools(names)

    async def agent(self, model: str, deadline: Deadline | None = None) -> Agent:
        """An agent for ``model`` on this backend's client, its tool-call mode already known (it holds
        configuration only, so one per run costs nothing).

        Args:
            model: The model to run on.
            deadline: The run's deadline (bounds the tool-call mode's detection).
        """
        mode = await self.service.mode_for(self.client, model, deadline)
        settings = self.settings
        return Agent(client=self.client, tools=self.registry, goals=ENDPOINT_GOALS, mode=mode, model=model,
                     max_rounds=settings.max_rounds, max_tokens=settings.max_tokens, context=self.service.context)

    async def run(self, instruction: str, tools: ToolSelection, model: str, deadline: Deadline,
                  documents: dict[str, str] | None = None) -> list[AgentMessage]:
        """Run the instruction with the agent loop and return its transcript; AgentError when the run fails.

        The instruction and the documents come from a request the contract validated (``ExecuteRequest``, the
        request's one validation): the agent takes them as they are.

        Args:
            instruction: What the agent should do.
            tools: The selected tools (:meth:`select_tools`).
            model: The model to run on.
            deadline: The run's deadline.
            documents: The request's long inputs, name -> text.
        """
        agent = await self.agent(model, deadline)
        return await agent.run(RunInput(instruction, documents or {}), deadline=deadline, tools=self._selected(tools))

    async def stream(self, instruction: str, tools: ToolSelection, model: str, deadline: Deadline,
                     documents: dict[str, str] | None = None) -> AsyncIterator[RunEvent]:
        """The run's events as they happen (:meth:`Agent.astream`); raises AgentError at the end of a failed run.
        As :meth:`run`, the validated instruction and documents are not checked again.

        Args:
            instruction: What the agent should do.
            tools: The selected tools (:meth:`select_tools`).
            model: The model to run on.
            deadline: The run's deadline.
            documents: The request's long inputs, name -> text.
        """
        agent = await self.agent(model, deadline)
        async for event in agent.astream(RunInput(instruction, documents or {}), deadline=deadline,
                                         tools=self._selected(tools)):
            yield event

    def _selected(self, tools: ToolSelection) -> ToolRegistry:
        """The registry :meth:`select_tools` chose (made once, kept in the selection); chosen again only for a
        selection made elsewhere (a stored run's)."""
        return tools.tools if isinstance(tools.tools, ToolRegistry) else self.registry.select(tools.names)

    def openai_models(self) -> list[str]:
        """The models ``/v1/chat/completions`` passes requests through to (``OPENAI_MODELS``, default: the
        deployment's model)."""
        return list(self.settings.openai_models or [self.settings.model])

    async def forward_chat(self, body: dict[str, Any], deadline: Deadline, *, stream: bool) -> Any:
        """A chat-completions request passed to the upstream as it is (:mod:`lmstudio_agent.endpoint.openai_api`):
        the answer's JSON, or with ``stream`` its Server-Sent Events as raw bytes.

        Args:
            body: The request body, ``model`` one of :meth:`openai_models`.
            deadline: The request's deadline.
            stream: Whether the body asks for a stream.
        """
        if stream:
            return await self.client.forward_chat_stream(body, deadline=deadline)
        return await self.client.forward_chat(body, deadline=deadline)

    async def aclose(self) -> None:
        """Close the HTTP client; a backend built from settings owns its service and stops its MCP servers too."""
        try:
            if self._owns_service:
                await self.service.aclose()
        finally:
            await self.client.aclose()
