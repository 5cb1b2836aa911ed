"""``LMStudioAgent``: the API reference's agent class over the async core (sync wrappers for scripts)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping, Sequence, TypeVar


from .agent import Agent, Goal, OnMessage
from .builtins import analyze_sentiment, builtin_registry, extract_data
from .client import ChatClient
from .connection import resolve
from .deadline import Deadline
from .errors import AgentError, ErrorCode
from .llm import LLM
from .messages import AgentMessage
from .modes import ToolMode, detect_mode
from .tools import ActionContext, Tool, ToolRegistry, tool_from_function

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")
logger = logging.getLogger("lmstudio_agent.bridge.agent")

DEFAULT_BRIDGE_URL = "ws://localhost:65028"
DEFAULT_GOALS = (
    Goal(name="Persona", description="You are a helpful assistant that completes tasks by calling tools."),
    Goal(name="Method", description="Call the tool that fits the request with arguments taken from it. "
                                    "When you have the answer, finish with it."),
)


def run_sync(make_coro: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code; inside a running event loop, say which async method to use instead."""
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
    ``LM_STUDIO_MODEL``, else the server file a running ``make serve-model`` wrote (:mod:`lmstudio_agent.connection`),
    else ``http://localhost:1234/v1`` and the API reference's ``lmstudio-community/LFM2-350M-Instruct-GGUF``.
    The agent starts with the built-in tools; add your own with :meth:`register_tool` or pass them to :meth:`act`.
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
    ) -> None:
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
            self.registry = builtin_registry()
            for item in tools or ():
                self.registry.register(item, replace=True)
        self._agent = Agent(client=self.client, tools=self.registry, goals=goals, mode=tool_mode,
                            model=model_name, max_rounds=max_rounds, max_tokens=max_tokens,
                            context=context if context is not None else {})
        self._loaded = False

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
        """Add a tool to this agent (options as :func:`tool_from_function`)."""
        return self.registry.register(func, **options)

    # ------------------------------------------------------------------------------------------ loading

    async def aload_model(self) -> None:
        """Check that the server is reachable and has the model (asking LM Studio to load it where it can).

        Raises ``RuntimeError`` (an :class:`AgentError`) with CONNECTION_FAILED or MODEL_NOT_LOADED.
        """
        deadline = Deadline(self.run_timeout)
        await ensure_model(self.client, self.model_name, deadline)
        await self._agent.resolve_mode(deadline)
        self._loaded = True

    def load_model(self) -> None:
        """Sync :meth:`aload_model`."""
        run_sync(lambda: self._closing(self.aload_model()))

    # ------------------------------------------------------------------------------------------- acting

    def _run_registry(self, tools: Iterable[Callable[..., Any] | Tool | str] | None) -> ToolRegistry:
        if tools is None:
            return self.registry
        names = [t for t in tools if isinstance(t, str)]
        selected = self.registry.select(names) if names else ToolRegistry()
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
        ends with the final ``result``, or with an ``error`` coded NO_ANSWER when the run found no answer."""
        if not self._loaded:
            raise AgentError(ErrorCode.MODEL_NOT_LOADED, "Call load_model() before act()")
        if not isinstance(instruction, str) or not instruction.strip():
            raise AgentError(ErrorCode.INVALID_INSTRUCTION, "Instruction must be a non-empty string")
        registry = self._run_registry(tools)
        return await self._agent.run(instruction, on_message=on_message, tools=registry,
                                     deadline=Deadline(self.run_timeout),
                                     documents=dict(documents) if documents is not None else None)

    def act(
        self,
        instruction: str,
        tools: Iterable[Callable[..., Any] | Tool | str] | None = None,
        on_message: OnMessage | None = None,
        *,
        documents: Mapping[str, str] | None = None,
    ) -> list[AgentMessage]:
        """Sync :meth:`aact`. Results stream to ``on_message``; the transcript is also returned."""
        return run_sync(lambda: self._closing(self.aact(instruction, tools, on_message, documents=documents)))

    async def _closing(self, coro: Awaitable[T]) -> T:
        # The sync API runs each call in its own event loop; the connection pool must not outlive it.
        try:
            return await coro
        finally:
            await self.client.aclose()

    # ---------------------------------------------------------------------------- the built-in tools

    def _context(self) -> ActionContext:
        return ActionContext(self.context, llm=LLM(self.client, self.model_name, Deadline(self.run_timeout)))

    async def extract_data(self, text: str, schema: dict[str, str]) -> dict[str, Any]:
        return await extract_data(self._context(), text, schema)

    async def analyze_sentiment(self, text: str) -> dict[str, Any]:
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
        registered, and the agent refuses any other (UNKNOWN_TOOL). ``max_concurrency`` tasks run at once; ``options`` go to
        :class:`~lmstudio_agent.bridge.agent_client.BridgeAgent` (timeouts, backoff, frame limit).
        Raises ``ConnectionError`` (CONNECTION_FAILED) when the bridge cannot be reached at the first connect.
        """
        from .bridge.agent_client import serve_agent

        async def runner(instruction: str, tool_names: list[str],
                         documents: Mapping[str, str] | None = None) -> list[AgentMessage]:
            return await self.aact(instruction, tool_names or None, documents=documents)

        if not self._loaded:
            await self.aload_model()
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
            tools=self.registry.names(),
            side_effect_tools=[tool.name for tool in self.registry if tool.side_effects],
            max_concurrency=max_concurrency,
            **options,
        )
