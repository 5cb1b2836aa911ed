"""The agent loop: Goals, Actions, Memory, Environment (the notebook's GAME design), kept apart from the model
adapters (:mod:`.modes`) and the transport (:mod:`.client`).

One :class:`Agent` holds configuration only; every :meth:`Agent.run` keeps its own state, so one process can
run many agents, or many runs of one agent, at once.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from .client import ChatClient
from .deadline import Deadline
from .errors import AgentError, ErrorCode
from .llm import LLM
from .messages import AgentMessage
from .modes import Strategy, ToolMode, Turn, detect_mode, strategy_for
from .toolcalls import ToolCall
from .tools import ActionContext, Tool, ToolRegistry, tool_from_function

logger = logging.getLogger("lmstudio_agent.agent")

OnMessage = Callable[[AgentMessage], Any]
MAX_RESULT_CHARS = 4000


@dataclass(frozen=True)
class Goal:
    """A goal or persona line of the system prompt."""

    name: str
    description: str
    priority: int = 0


def terminate(message: str) -> str:
    """Finish the task and give the final answer to the user.

    Args:
        message: The final answer.
    """
    return message


TERMINATE = tool_from_function(terminate, terminal=True, tags=["system"])


class Memory:
    """The conversation so far, as chat messages, plus the notebook's typed items."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add_memory(self, memory: dict[str, Any]) -> None:
        self.items.append(memory)

    def get_memories(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self.items[:limit]

    def copy_without_system_memories(self) -> "Memory":
        copy = Memory()
        copy.items = [m for m in self.items if m.get("type") != "system"]
        return copy

    def to_chat_messages(self) -> list[dict[str, Any]]:
        """The chat messages (OpenAI format) recorded in memory, in order."""
        return [m["message"] for m in self.items if "message" in m]

    def add_message(self, kind: str, message: dict[str, Any]) -> None:
        self.add_memory({"type": kind, "content": message.get("content", ""), "message": message})


@dataclass
class ToolOutcome:
    """What running one tool gave: a result, or an error message for the model (the traceback stays here)."""

    ok: bool
    result: Any = None
    error: str | None = None
    traceback: str | None = field(default=None, repr=False)
    timestamp: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def for_model(self) -> str:
        if self.ok:
            return render_result(self.result)
        return f"Error: {self.error}"


class Environment:
    """Runs tools and captures their failures. The traceback is logged, never shown to the model or a client."""

    async def execute(self, tool: Tool, args: dict[str, Any], context: ActionContext) -> ToolOutcome:
        try:
            return ToolOutcome(ok=True, result=await tool.call(args, context))
        except AgentError as exc:
            if exc.code in (ErrorCode.UPSTREAM_TIMEOUT, ErrorCode.CONNECTION_FAILED):
                raise  # the model server itself failed inside a tool: the run cannot go on
            return ToolOutcome(ok=False, error=exc.message)
        except Exception as exc:  # a user tool may raise anything: it becomes a message, not a crash
            tb = traceback.format_exc()
            logger.info("tool %s raised %s", tool.name, type(exc).__name__)
            logger.debug("traceback of tool %s:\n%s", tool.name, tb)
            return ToolOutcome(ok=False, error=f"{type(exc).__name__}: {exc}", traceback=tb)


def render_result(result: Any) -> str:
    """A tool result as text for the model, cut to a size small models can take."""
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " …[truncated]"


@dataclass
class CheckedCall:
    """A call from the model with its validation outcome against the offered tools."""

    call: ToolCall
    tool: Tool | None
    arguments: dict[str, Any] | None
    error: str | None


@dataclass
class FirstTurn:
    """The first round of a run, checked: what the evaluation harness scores."""

    mode: ToolMode
    turn: Turn
    checked: list[CheckedCall]
    messages: list[dict[str, Any]]


class Agent:
    """An agent: goals, tools, a model and how to get tool calls from it.

    ``mode`` is ``auto`` (detected once per agent from the backend), ``native``, ``parsed`` or ``constrained``.
    ``max_rounds`` bounds the model calls of a run; on the last round the tools are withdrawn, so the model
    must answer in words.
    """

    def __init__(
        self,
        *,
        client: ChatClient,
        tools: ToolRegistry | Sequence[Tool] = (),
        goals: Sequence[Goal] = (),
        mode: ToolMode | str = ToolMode.AUTO,
        model: str | None = None,
        environment: Environment | None = None,
        max_rounds: int = 6,
        max_tokens: int = 512,
        context: dict[str, Any] | None = None,
    ) -> None:
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self.client = client
        self.registry = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.goals = sorted(goals, key=lambda g: -g.priority)
        self.mode = ToolMode(mode)
        self.model = model or client.model
        self.environment = environment or Environment()
        self.max_rounds = max_rounds
        self.max_tokens = max_tokens
        self.context_properties = context if context is not None else {}
        self._resolved_mode: ToolMode | None = None if self.mode is ToolMode.AUTO else self.mode

    async def resolve_mode(self, deadline: Deadline | None = None) -> ToolMode:
        if self._resolved_mode is None:
            self._resolved_mode = await detect_mode(self.client, self.model, deadline=deadline)
            logger.info("tool-call mode for %s: %s", self.model, self._resolved_mode.value)
        return self._resolved_mode

    def offered_tools(self, registry: ToolRegistry | None = None) -> list[Tool]:
        """The tools a run offers: the registry's, plus ``terminate`` unless the registry has its own."""
        tools = list(registry if registry is not None else self.registry)
        if not any(t.terminal for t in tools) and all(t.name != TERMINATE.name for t in tools):
            tools.append(TERMINATE)
        return tools

    def system_message(self, strategy: Strategy, tools: Sequence[Tool]) -> dict[str, Any]:
        sep = "\n-------------------\n"
        parts = [f"{g.name}:{sep}{g.description.strip()}{sep}" for g in self.goals]
        extra = strategy.system_prompt(tools)
        if extra:
            parts.append(extra)
        return {"role": "system", "content": "\n\n".join(parts) or "You are a helpful assistant."}

    # ------------------------------------------------------------------------------------------ one round

    async def _ask(self, strategy: Strategy, messages: list[dict[str, Any]], tools: Sequence[Tool],
                   deadline: Deadline | None) -> Turn:
        response = await self.client.chat(
            messages, model=self.model, max_tokens=self.max_tokens, deadline=deadline, **strategy.request(tools, messages)
        )
        return strategy.read(response, tools)

    @staticmethod
    def check(call: ToolCall, tools: Sequence[Tool]) -> CheckedCall:
        """Match a call to an offered tool and validate its arguments (nothing runs)."""
        tool = next((t for t in tools if t.name == call.name), None)
        if tool is None:
            names = ", ".join(t.name for t in tools) or "none"
            return CheckedCall(call, None, None, f"Unknown tool '{call.name}'. Available tools: {names}.")
        try:
            return CheckedCall(call, tool, tool.validate_arguments(call.arguments), None)
        except AgentError as exc:
            return CheckedCall(call, tool, None, exc.message)

    async def first_turn(self, instruction: str, *, deadline: Deadline | None = None,
                         strategy: Strategy | None = None) -> FirstTurn:
        """Run only the first round of :meth:`run` (same prompt, same extraction, same validation).

        ``strategy`` replaces the mode's (the evaluation's plain-prompting baseline uses it)."""
        if strategy is None:
            strategy = strategy_for(await self.resolve_mode(deadline))
        mode = strategy.mode
        tools = self.offered_tools()
        messages = [self.system_message(strategy, tools), {"role": "user", "content": instruction}]
        turn = await self._ask(strategy, messages, tools, deadline)
        return FirstTurn(mode, turn, [self.check(c, tools) for c in turn.calls], messages)

    async def next_turn(self, previous: FirstTurn, result: str, *, deadline: Deadline | None = None,
                        strategy: Strategy | None = None) -> FirstTurn:
        """The round after ``previous``, whose first call returned ``result`` (nothing runs: the evaluation
        harness supplies the result), with the messages :meth:`run` would send then."""
        if strategy is None:
            strategy = strategy_for(previous.mode)
        if not previous.turn.calls:
            raise ValueError("the previous turn made no call")
        tools = self.offered_tools()
        messages = [*previous.messages, previous.turn.assistant_message,
                    strategy.result_message(previous.turn.calls[0], result)]
        turn = await self._ask(strategy, messages, tools, deadline)
        return FirstTurn(previous.mode, turn, [self.check(c, tools) for c in turn.calls], messages)

    # ------------------------------------------------------------------------------------------- the loop

    async def run(
        self,
        instruction: str,
        *,
        on_message: OnMessage | None = None,
        memory: Memory | None = None,
        deadline: Deadline | None = None,
        tools: ToolRegistry | None = None,
    ) -> list[AgentMessage]:
        """Run the loop for ``instruction``; stream events to ``on_message`` and return the transcript."""
        if not isinstance(instruction, str) or not instruction.strip():
            raise AgentError(ErrorCode.INVALID_INSTRUCTION, "Instruction must be a non-empty string")
        transcript: list[AgentMessage] = []

        async def emit(message: AgentMessage) -> None:
            transcript.append(message)
            if on_message is not None:
                try:
                    outcome = on_message(message)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    logger.warning("on_message callback raised; the run goes on", exc_info=True)

        mode = await self.resolve_mode(deadline)
        strategy = strategy_for(mode)
        offered = self.offered_tools(tools)
        memory = memory if memory is not None else Memory()
        context = ActionContext(
            self.context_properties,
            llm=LLM(self.client, self.model, deadline, self.max_tokens),
            agent=self,
            memory=memory,
        )
        system = self.system_message(strategy, offered)
        memory.add_message("user", {"role": "user", "content": instruction})

        try:
            await self._loop(strategy, offered, system, memory, context, emit, deadline)
        except AgentError as exc:
            await emit(AgentMessage(type="error", code=exc.code.value, content=exc.message))
            raise
        return transcript

    async def _loop(self, strategy: Strategy, offered: list[Tool], system: dict[str, Any], memory: Memory,
                    context: ActionContext, emit: Callable[[AgentMessage], Awaitable[None]],
                    deadline: Deadline | None) -> None:
        for round_index in range(self.max_rounds):
            last_round = round_index == self.max_rounds - 1
            round_tools = [] if last_round else offered
            messages = [system if round_tools else self.system_message(strategy, [])] + memory.to_chat_messages()
            if last_round and round_index > 0:
                messages.append({"role": "user", "content": "Give your final answer now, in plain words."})
            turn = await self._ask(strategy, messages, round_tools, deadline)
            memory.add_message("assistant", turn.assistant_message)

            if last_round:
                # No tools were offered: whatever came back is the answer, call markup included.
                text = turn.text if not turn.calls else (turn.response.content.strip() if turn.response else turn.text)
                await emit(AgentMessage(type="result", content=text))
                return
            if not turn.calls:
                if turn.errors:
                    await emit(AgentMessage(type="error", code=ErrorCode.MODEL_OUTPUT_INVALID.value,
                                            content=turn.errors[0]))
                    memory.add_message("environment", {"role": "user", "content": turn.errors[0]})
                    continue
                await emit(AgentMessage(type="result", content=turn.text))
                return

            if turn.text:
                await emit(AgentMessage(type="thought", content=turn.text))
            for call in turn.calls:
                await emit(AgentMessage(type="action", tool=call.name, args=call.arguments))
                checked = self.check(call, round_tools)
                if checked.error is not None:
                    outcome = ToolOutcome(ok=False, error=checked.error)
                else:
                    outcome = await self.environment.execute(checked.tool, call.arguments, context)
                terminal = outcome.ok and checked.tool is not None and checked.tool.terminal
                if terminal:
                    await emit(AgentMessage(type="result", content=render_result(outcome.result)))
                    return
                if outcome.ok:
                    await emit(AgentMessage(type="result", tool=call.name, content=render_result(outcome.result)))
                else:
                    await emit(AgentMessage(type="error", tool=call.name, content=outcome.error,
                                            code=ErrorCode.TOOL_EXECUTION_FAILED.value))
                memory.add_message("environment", strategy.result_message(call, outcome.for_model()))

