"""The endpoint backend: settings shared by every deployment, and the agent loop as a contract backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .agent import Agent, Goal
from .builtins import builtin_registry
from .client import DEFAULT_BASE_URL, DEFAULT_MODEL, ChatClient
from .contract import ExecuteOptions, ToolSelection
from .deadline import Deadline
from .events import RunEvent
from .messages import AgentMessage
from .modes import ToolMode
from .tools import ToolRegistry

if TYPE_CHECKING:
    import httpx

ENDPOINT_GOALS = (
    Goal(name="Persona", description="You are an agent behind an API. You complete the request with the tools."),
)


class EndpointSettings(BaseModel):
    """What an endpoint deployment is configured with (env vars and secrets; the names are in ``from_env``)."""

    model_config = ConfigDict(extra="forbid")

    lm_studio_url: str = DEFAULT_BASE_URL
    lm_studio_token: Optional[SecretStr] = None
    model: str = DEFAULT_MODEL
    tool_mode: ToolMode = ToolMode.AUTO
    deadline_seconds: float = Field(default=25.0, gt=0, le=900)
    cache_ttl_seconds: int = Field(default=3600, ge=60)
    max_rounds: int = Field(default=4, ge=1, le=20)
    max_tokens: int = Field(default=512, ge=16, le=8192)
    allowed_tools: Optional[list[str]] = None

    @classmethod
    def from_env(cls, env: Mapping[str, Any], **overrides: Any) -> "EndpointSettings":
        """Read ``LM_STUDIO_URL`` (or ``LM_STUDIO_API_BASE``), ``LM_STUDIO_TOKEN`` (or ``LM_API_TOKEN``),
        ``LM_STUDIO_MODEL``, ``LM_TOOL_MODE``, ``EXECUTE_DEADLINE_SECONDS``, ``CACHE_TTL_SECONDS``,
        ``MAX_ROUNDS``, ``ALLOWED_TOOLS`` (comma-separated); ``overrides`` win."""

        def pick(*names: str) -> Any:
            for name in names:
                value = env.get(name)
                if value not in (None, ""):
                    return value
            return None

        values: dict[str, Any] = {
            "lm_studio_url": pick("LM_STUDIO_URL", "LM_STUDIO_API_BASE"),
            "lm_studio_token": pick("LM_STUDIO_TOKEN", "LM_API_TOKEN"),
            "model": pick("LM_STUDIO_MODEL"),
            "tool_mode": pick("LM_TOOL_MODE"),
            "deadline_seconds": pick("EXECUTE_DEADLINE_SECONDS"),
            "cache_ttl_seconds": pick("CACHE_TTL_SECONDS"),
            "max_rounds": pick("MAX_ROUNDS"),
        }
        allowed = pick("ALLOWED_TOOLS")
        if allowed:
            values["allowed_tools"] = [n.strip() for n in str(allowed).split(",") if n.strip()]
        values = {k: v for k, v in values.items() if v is not None}
        values.update(overrides)
        return cls.model_validate(values)

    def options(self) -> ExecuteOptions:
        return ExecuteOptions(deadline_seconds=self.deadline_seconds, cache_ttl_seconds=self.cache_ttl_seconds)


class AgentBackend:
    """Runs execute requests with the agent loop against the configured OpenAI-compatible upstream.

    Build it once per process (a Lambda container, a Worker isolate) and reuse it: it keeps the connection
    pool and the detected tool-call mode of each model.
    """

    def __init__(
        self,
        settings: EndpointSettings,
        registry: ToolRegistry | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        registry = registry if registry is not None else builtin_registry()
        self.registry = registry.select(settings.allowed_tools) if settings.allowed_tools else registry
        token = settings.lm_studio_token.get_secret_value() if settings.lm_studio_token else None
        self.client = ChatClient(settings.lm_studio_url, token, settings.model,
                                 timeout=settings.deadline_seconds, max_retries=2, transport=transport)
        self._context = context if context is not None else {}
        self._agents: dict[str, Agent] = {}

    @property
    def default_model(self) -> str:
        return self.settings.model

    def cache_scope(self) -> str:
        return "|".join([self.client.base_url, self.settings.tool_mode.value, str(self.settings.max_rounds),
                         ",".join(sorted(self.registry.names()))])

    def select_tools(self, names: list[str]) -> ToolSelection:
        selected = self.registry.select(names) if names else self.registry
        return ToolSelection(tuple(selected.names()), any(t.side_effects for t in selected))

    def _agent(self, model: str) -> Agent:
        if model not in self._agents:
            self._agents[model] = Agent(client=self.client, tools=self.registry, goals=ENDPOINT_GOALS,
                                        mode=self.settings.tool_mode, model=model,
                                        max_rounds=self.settings.max_rounds, max_tokens=self.settings.max_tokens,
                                        context=self._context)
        return self._agents[model]

    async def run(self, instruction: str, tools: ToolSelection, model: str, deadline: Deadline) -> list[AgentMessage]:
        return await self._agent(model).run(instruction, deadline=deadline, tools=self.registry.select(tools.names))

    async def stream(self, instruction: str, tools: ToolSelection, model: str, deadline: Deadline) -> AsyncIterator[RunEvent]:
        """The run's events as they happen (:meth:`Agent.astream`); raises AgentError at the end of a failed run."""
        async for event in self._agent(model).astream(instruction, deadline=deadline,
                                                      tools=self.registry.select(tools.names)):
            yield event

    async def aclose(self) -> None:
        await self.client.aclose()
