"""``LMStudioAgent``: the API reference's agent class over the async core (sync wrappers for scripts)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from typing import TYPE_CHECKING, Any, TypeVar
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence


from .agent.loop import Agent, Goal, OnMessage
from .bridge import DEFAULT_BRIDGE_URL
from .model.client import ChatClient
from .deadline import Deadline
from .errors import AgentError, ErrorCode
from .agent.events import RunEvent
from .model.llm import LLM
from .agent.messages import AgentMessage
from .model.modes import ToolMode
from .agent.tools import ActionContext, Tool, ToolRegistry, tool_from_function

if TYPE_CHECKING:
    import httpx

    from .mcp.servers import MCPServers as MCPServersType

T = TypeVar("T")
logger = logging.getLogger("lmstudio_agent.bridge.agent")

DEFAULT_GOALS = (
    Goal(name="Persona", description="You are a helpful assistant that completes tasks by calling tools."),
    Goal(name="Method", description="Call the tool that fits the request with arguments taken from it. "
                                    "When you have the answer, finish with it."),
)


def run_sync(make_coro: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code; inside a running event loop, say which async method to use instead.

    Args:
        make_coro: Makes the coroutine to run (called only when no loop is running, so none is left unawaited).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())  # type: ignore[arg-type]
    raise RuntimeError("This is the sync API and an event loop is running: await the async method "
                       "(aload_model / aact) instead")


async def ensure_model(client: ChatClient, model: str, deadline: Deadline) -> None:
    """Check that the server is reachable and serves ``model`` (asking LM Studio to load it where it can).

    Raises :class:`AgentError` with CONNECTION_FAILED, or MODEL_NOT_LOADED naming the models the server has and
    the ``--model`` option (``model_name=`` in Python) that chooses one.

    Args:
        client: The client of the server to check.
        model: The model's id.
        deadline: Bounds the listing and loading requests.
    """
    try:
        models = await client.list_models(deadline=deadline)
    except AgentError as exc:
        if exc.code is ErrorCode.UPSTREAM_ERROR:
            raise AgentError(ErrorCode.CONNECTION_FAILED, f"The model server is not usable: {exc.message}") from None
        raise
    if model in models:
        return
    info = await client.model_info(model, deadline=deadline)
    if info is None or not await client.request_load(model, deadline=deadline):
        shown = ", ".join(models[:10]) or "none"
        raise AgentError(ErrorCode.MODEL_NOT_LOADED,
                         f"Model '{model}' is not available on {client.base_url} (it serves: {shown}). Choose one "
                         f"of those with --model on the command line (model_name= in Python), or load the model "
                         f"in LM Studio.", details={"model": model, "available": models[:10]})


class LMStudioAgent:
    """A tool-using agent on a model served by LM Studio (or any OpenAI-compatible server).

    The server URL, token and model come from the arguments, else ``LM_STUDIO_API_BASE``, ``LM_API_TOKEN`` and
    ``LM_STUDIO_MODEL``, else the server file a running ``make serve-model`` wrote (:mod:`lmstudio_agent.model.connection`),
    else ``http://localhost:1234/v1`` and the API reference's ``lmstudio-community/LFM2-350M-Instruct-GGUF``.
    The agent starts with the built-in tools; add your own with :meth:`register_tool` or pass them to :meth:`act`.

    ``mcp_config`` (an ``mcp.json`` path, its parsed JSON, or an :class:`~lmstudio_agent.mcp.MCPServers`)
    adds MCP servers' tools beside the Python ones (the ``mcp`` extra). The servers start with the agent
    (:meth:`aload_model`, ``async with agent``, or the first :meth:`aact`) and stop with :meth:`aclose`, when
    :meth:`connect_to_bridge` ends, or, with the sync API, at the end of each call.

    Args:
        model_name: The model id on the server (default: see above).
        bridge_url: The AI Bridge hub's WebSocket URL, for :meth:`connect_to_bridge`.
        agent_id: The id this agent registers under at the hub.
        base_url: The server's base URL (default: see above).
        api_key: The server's token (default: see above).
        tools: A registry to use as is, or tools and functions to add to the built-in ones.
        tool_mode: How tool calls are obtained: ``auto`` (detected when the model loads), ``native``, ``parsed`` or
            ``constrained``.
        goals: The goal and persona lines of the system prompt.
        max_rounds: The most model calls one task makes.
        max_tokens: The most tokens one model reply may have.
        run_timeout: Seconds one task (or one model load) may take in all.
        request_timeout: Seconds one HTTP call may take.
        context: Properties every tool sees through ``action_context`` (e.g. ``invoice_storage``).
        capabilities: Capability names registered with the hub.
        bridge_token: The hub's agent token (default: ``BRIDGE_TOKEN``).
        transport: An ``httpx.AsyncBaseTransport`` to use instead of real connections (tests).
        mcp_config: MCP servers whose tools the agent offers too (see above).
    """

    def __init__(
        self,
        model_name: str | None = None,
        bridge_url: str = DEFAULT_BRIDGE_URL,
        agent_id: str = "lm-studio-agent",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        tools: ToolRegistry | Iterable[Callable[..., Any] | Tool] | None = None,
        tool_mode: ToolMode | str = ToolMode.AUTO,
        goals: Sequence[Goal] = DEFAULT_GOALS,
        max_rounds: int = 6,
        max_tokens: int = 512,
        run_timeout: float = 300.0,
        request_timeout: float = 120.0,
        context: dict[str, Any] | None = None,
        capabilities: Sequence[str] = ("llm", "tool-use"),
        bridge_token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        mcp_config: Any = None,
    ) -> None:
        """Configure the agent; nothing connects until :meth:`load_model` (or :meth:`aload_model`)."""
        from .model.connection import resolve  # the server-file rules load with the first agent

        connection = resolve(base_url, api_key, model_name)
        model_name = self.model_name = connection.model
        self.bridge_url = bridge_url
        self.agent_id = agent_id
        self.capabilities = list(capabilities)
        self.run_timeout = run_timeout
        self._bridge_token = bridge_token if bridge_token is not None else os.environ.get("BRIDGE_TOKEN")
        self.client = ChatClient(
            connection.base_url,
            connection.api_key,
            model_name,
            timeout=request_timeout,
            transport=transport,
        )
        if isinstance(tools, ToolRegistry):
            self.registry = tools
        else:
            from .builtins import builtin_registry  # the demo tools load with the first agent that offers them

            self.registry = builtin_registry()
            for item in tools or ():
                self.registry.register(item, replace=True)
        self._agent = Agent(client=self.client, tools=self.registry, goals=goals, mode=tool_mode,
                            model=model_name, max_rounds=max_rounds, max_tokens=max_tokens,
                            context=context if context is not None else {})
        self._loaded = False
        self.mcp_servers: MCPServersType | None = None
        if mcp_config is not None:
            from .mcp import MCPServers  # the SDK is imported only when MCP servers are configured

            self.mcp_servers = mcp_config if isinstance(mcp_config, MCPServers) else MCPServers(mcp_config)

    def __repr__(self) -> str:
        return f"LMStudioAgent(model_name={self.model_name!r}, agent_id={self.agent_id!r}, base_url={self.client.base_url!r})"

    @property
    def tool_mode(self) -> ToolMode | None:
        """The resolved tool-call mode (known after :meth:`load_model`)."""
        return self._agent._resolved_mode

    @property
    def context(self) -> dict[str, Any]:
        """Properties every tool sees through ``action_context`` (e.g. ``invoice_storage``)."""
        return self._agent.context_properties

    def register_tool(self, func: Callable[..., Any] | Tool, **options: Any) -> Tool:
        """Add a tool to this agent (options as :func:`tool_from_function`).

        Args:
            func: A typed function, or a :class:`Tool` taken as it is.
            options: The keyword options of :meth:`ToolRegistry.register <lmstudio_agent.agent.tools.ToolRegistry.register>`.
        """
        return self.registry.register(func, **options)

    @property
    def tools(self) -> ToolRegistry:
        """Every tool a run may use: the registry's Python tools, then the running MCP servers' tools."""
        if self.mcp_servers is None or not self.mcp_servers.running:
            return self.registry
        combined = self.registry.copy()
        for item in self.mcp_servers.tools:
            if item.name not in combined:
                combined.register(item)
        return combined

    # ------------------------------------------------------------------------------------- lifetime

    async def astart_mcp(self) -> None:
        """Start the configured MCP servers (if any) unless they run; restart them if one has gone away (a
        long-lived agent serving a hub outlives a crashed server). Their tools join :attr:`tools`.

        Raises CONNECTION_FAILED when a server does not start (the others are stopped again).
        """
        if self.mcp_servers is not None and not self.mcp_servers.healthy:
            await self.mcp_servers.restart_if_unhealthy(reserved=self.registry.names())

    async def astop_mcp(self) -> None:
        """Stop the MCP servers: stdio processes are ended, HTTP sessions closed."""
        if self.mcp_servers is not None:
            await self.mcp_servers.stop()

    async def aclose(self) -> None:
        """Stop the MCP servers and close the connection pool to the model server."""
        try:
            await self.astop_mcp()
        finally:
            await self.client.aclose()

    async def __aenter__(self) -> LMStudioAgent:
        await self.astart_mcp()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------------ loading

    async def aload_model(self) -> None:
        """Check that the server is reachable and has the model (asking LM Studio to load it where it can),
        then start the configured MCP servers.

        Raises ``RuntimeError`` (an :class:`AgentError`) with CONNECTION_FAILED or MODEL_NOT_LOADED.
        """
        deadline = Deadline(self.run_timeout)
        await ensure_model(self.client, self.model_name, deadline)
        await self._agent.resolve_mode(deadline)
        await self.astart_mcp()
        self._loaded = True

    def load_model(self) -> None:
        """Sync :meth:`aload_model`."""
        run_sync(lambda: self._closing(self.aload_model()))

    # ------------------------------------------------------------------------------------------- acting

    def _run_registry(self, tools: Iterable[Callable[..., Any] | Tool | str] | None) -> ToolRegistry:
        available = self.tools
        if tools is None:
            return available
        names = [t for t in tools if isinstance(t, str)]
        selected = available.select(names) if names else ToolRegistry()
        for item in tools:
            if isinstance(item, Tool):
                selected.register(item, replace=True)
            elif not isinstance(item, str):
                selected.register(tool_from_function(item), replace=True)
        return selected

    async def aact(
        self,
        instruction: str,
        tools: Iterable[Callable[..., Any] | Tool | str] | None = None,
        on_message: OnMessage | None = None,
        *,
        documents: Mapping[str, str] | None = None,
    ) -> list[AgentMessage]:
        """Run the agent on ``instruction``. ``tools``: functions, Tools or names of registered tools
        (default: every registered tool). Messages stream to ``on_message``; the transcript is returned.

        ``documents`` (name -> text) go to tools by reference: the model writes ``"@doc:NAME"`` as an
        argument and the tool receives the full text (e.g. ``documents={"invoice": text}``). The transcript
        ends with the final ``result``, or with an ``error`` coded NO_ANSWER when the run found no answer.
        Built on :meth:`astream`: the transcript is its ``message`` events.

        Args:
            instruction: The user's request (a non-empty string).
            tools: The tools to offer (default: every registered tool).
            on_message: Called with each transcript message as it is made.
            documents: Document texts by name, passed to tools by reference.
        """
        transcript: list[AgentMessage] = []
        async for event in self.astream(instruction, tools, documents=documents):
            if event.type != "message" or event.message is None:
                continue
            transcript.append(event.message)
            if on_message is not None:
                try:
                    outcome = on_message(event.message)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    logger.warning("on_message callback raised; the run goes on", exc_info=True)
        return transcript

    async def astream(
        self,
        instruction: str,
        tools: Iterable[Callable[..., Any] | Tool | str] | None = None,
        *,
        documents: Mapping[str, str] | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Run the agent on ``instruction`` and yield its events as they happen (see
        :class:`~lmstudio_agent.agent.events.RunEvent`): each round's ``step-start``, the model's text as
        ``text-delta`` s, and every transcript message. A failed run yields its ``error`` message, then raises
        its AgentError. ``tools`` and ``documents`` as :meth:`aact`.

        Args:
            instruction: The user's request (a non-empty string).
            tools: The tools to offer, as :meth:`aact`.
            documents: Document texts by name, as :meth:`aact`.
        """
        if not self._loaded:
            raise AgentError(ErrorCode.MODEL_NOT_LOADED, "Call load_model() before act()")
        if not isinstance(instruction, str) or not instruction.strip():
            raise AgentError(ErrorCode.INVALID_INSTRUCTION, "Instruction must be a non-empty string")
        await self.astart_mcp()
        registry = self._run_registry(tools)
        async for event in self._agent.astream(instruction, tools=registry, deadline=Deadline(self.run_timeout),
                                               documents=dict(documents) if documents is not None else None):
            yield event

    def act(
        self,
        instruction: str,
        tools: Iterable[Callable[..., Any] | Tool | str] | None = None,
        on_message: OnMessage | None = None,
        *,
        documents: Mapping[str, str] | None = None,
    ) -> list[AgentMessage]:
        """Sync :meth:`aact`. Results stream to ``on_message``; the transcript is also returned.

        Args:
            instruction: The user's request (a non-empty string).
            tools: The tools to offer, as :meth:`aact`.
            on_message: Called with each transcript message as it is made.
            documents: Document texts by name, as :meth:`aact`.
        """
        return run_sync(lambda: self._closing(self.aact(instruction, tools, on_message, documents=documents)))

    async def _closing(self, coro: Awaitable[T]) -> T:
        # The sync API runs each call in its own event loop; the connection pool and the MCP servers' sessions
        # must not outlive it.
        try:
            return await coro
        finally:
            await self.aclose()

    # ---------------------------------------------------------------------------- the built-in tools

    def _context(self) -> ActionContext:
        return ActionContext(self.context, llm=LLM(self.client, self.model_name, Deadline(self.run_timeout)))

    async def extract_data(self, text: str, schema: dict[str, str]) -> dict[str, Any]:
        """The built-in :func:`~lmstudio_agent.builtins.extract_data` tool, run with this agent's model.

        Args:
            text: The text to extract from.
            schema: The fields to extract: name -> type, e.g. ``{"name": "string", "age": "number"}``.
        """
        from .builtins import extract_data

        return await extract_data(self._context(), text, schema)

    async def analyze_sentiment(self, text: str) -> dict[str, Any]:
        """The built-in :func:`~lmstudio_agent.builtins.analyze_sentiment` tool, run with this agent's model.

        Args:
            text: The text to classify.
        """
        from .builtins import analyze_sentiment

        return await analyze_sentiment(self._context(), text)

    def _extract_data(self, text: str, schema: dict[str, str]) -> dict[str, Any]:
        """Sync ``extract_data`` (the API reference's example)."""
        return run_sync(lambda: self._closing(self.extract_data(text, schema)))

    def _analyze_sentiment(self, text: str) -> dict[str, Any]:
        """Sync ``analyze_sentiment`` (the API reference's example)."""
        return run_sync(lambda: self._closing(self.analyze_sentiment(text)))

    # ------------------------------------------------------------------------------------------ bridge

    async def connect_to_bridge(self, *, max_concurrency: int = 1, **options: Any) -> None:
        """Connect to the AI Bridge at ``bridge_url``, register, and serve tasks until cancelled.

        Each task runs :meth:`aact` with the tools it names; the hub sends only tasks whose tools this agent
        registered (its Python tools and its MCP servers' tools), and the agent refuses any other
        (UNKNOWN_TOOL). The MCP servers start before it registers and stop when it stops serving. ``max_concurrency`` tasks run at once; ``options`` go to
        :class:`~lmstudio_agent.bridge.agent_client.BridgeAgent` (timeouts, backoff, frame limit). The hub's
        OpenAI pass-through for this agent's model (``chat:forward``) goes to its model server as sent; pass
        ``forwarder=None`` to take agent tasks only.
        Raises ``ConnectionError`` (CONNECTION_FAILED) when the bridge cannot be reached at the first connect.

        Args:
            max_concurrency: How many tasks run at once.
            options: Keyword options for :class:`~lmstudio_agent.bridge.agent_client.BridgeAgent`.
        """
        from .bridge.agent_client import serve_agent

        async def runner(instruction: str, tool_names: list[str],
                         documents: Mapping[str, str] | None = None) -> list[AgentMessage]:
            return await self.aact(instruction, tool_names or None, documents=documents)

        def streamer(instruction: str, tool_names: list[str],
                     documents: dict[str, str] | None = None) -> AsyncIterator[RunEvent]:
            return self.astream(instruction, tool_names or None, documents=documents)

        async def forwarder(body: dict[str, Any], deadline: Deadline, *, stream: bool) -> Any:
            # The hub's OpenAI pass-through (chat:forward) for this agent's model, to its model server.
            if stream:
                return await self.client.forward_chat_stream(body, deadline=deadline)
            return await self.client.forward_chat(body, deadline=deadline)

        try:
            if not self._loaded:
                await self.aload_model()
            await self.astart_mcp()
            mode = self.tool_mode.value if self.tool_mode else "auto"
            logger.info("agent %s: model %s on %s (tool mode %s); connecting to %s", self.agent_id, self.model_name,
                        self.client.base_url, mode, self.bridge_url)
            await serve_agent(
                runner,
                bridge_url=self.bridge_url,
                agent_id=self.agent_id,
                token=self._bridge_token,
                capabilities=self.capabilities,
                model=self.model_name,
                registry=self.tools,
                max_concurrency=max_concurrency,
                **{"streamer": streamer, "forwarder": forwarder, **options},
            )
        finally:
            await self.astop_mcp()  # the agent stops serving (cancelled or failed): so do its MCP servers
