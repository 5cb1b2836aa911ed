"""The agent loop: Goals, Actions, Memory, Environment (the notebook's GAME design), kept apart from the model
adapters (:mod:`.modes`) and the transport (:mod:`.client`).

One :class:`Agent` holds configuration only; every :meth:`Agent.run` keeps its own state, so one process can
run many agents, or many runs of one agent, at once. The loop's parts live beside it: :mod:`.memory` (the
conversation), :mod:`.environment` (running a tool), :mod:`.goals`, :mod:`.turns` (single rounds, checked, for the
evaluation) and :mod:`._streaming` (:meth:`Agent.astream`'s events); this module re-exports their names.
"""

from __future__ import annotations

import inspect
import json
import logging
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from ..model.client import ChatClient
from ..deadline import Deadline
from .documents import RunInput, UnknownDocumentError, check_input, listing, resolve, with_long_input
from ..errors import AgentError, ErrorCode
from .events import RunEvent
from ..model.llm import LLM
from .messages import AgentMessage
from ..model.modes import Strategy, ToolMode, Turn, detect_mode, strategy_for
from ..model.policy import SmallModelPolicy
from .rounds import RoundContext
from ..model.toolcalls import ToolCall, parse_tool_calls
from .tools import ActionContext, Tool, ToolRegistry, tool_from_function
from . import turns
from ._streaming import EVENT_SINK, ask_streaming, stream_run
# The loop's parts, importable from here as they were before each had a module of its own.
from .environment import MAX_RESULT_CHARS as MAX_RESULT_CHARS
from .environment import Environment as Environment
from .environment import ToolOutcome as ToolOutcome
from .environment import render_result as render_result
from .goals import Goal as Goal
from .memory import Memory as Memory
from .turns import CheckedCall as CheckedCall
from .turns import FirstTurn as FirstTurn
from .turns import check_call

logger = logging.getLogger("lmstudio_agent.agent.loop")

OnMessage = Callable[[AgentMessage], Any]
FINAL_MAX_TOKENS = 160  # the forced final answer is a few sentences, never a page (a tiny model rambles on)
DEFAULT_POLICY = SmallModelPolicy()


def terminate(message: str) -> str:
    """Finish the task and give the final answer to the user.

    Args:
        message: The final answer.
    """
    return message


TERMINATE = tool_from_function(terminate, terminal=True, tags=["system"])


def _note(text: str) -> dict[str, Any]:
    """A note the agent writes into the conversation itself (:func:`~lmstudio_agent.model.smallmodel.wire.agent_note`:
    marked so the constrained mode never copies from it); the small-model rules load with the first note.
    """
    from ..model.smallmodel.wire import agent_note

    return agent_note(text)


def is_words(text: str | None) -> bool:
    """True when ``text`` can be a final answer for a person: not empty, not a serialized tool call, not JSON
    (nor the start of it).

    Args:
        text: The model's reply text (None counts as empty).
    """
    stripped = (text or "").strip()
    if not stripped or stripped[0] in "[{":  # JSON, or a fragment of it (a reply cut off at the token cap)
        return False
    parsed = parse_tool_calls(stripped)
    return not (parsed.calls or parsed.errors)


def call_key(call: ToolCall) -> tuple[str, str]:
    """What makes two calls identical: the tool and its arguments (key order does not matter).

    Args:
        call: The tool call.
    """
    return call.name, json.dumps(call.arguments, sort_keys=True, ensure_ascii=False, default=str)


# Said to the model with a repeated call's result. Kept to a few words: a tiny model copies the latest text into
# its next values, so a full sentence here ("... give the final answer") came back as the final answer itself.
REPEAT_NOTE = "(same as before: {tool} is done)"
NOT_WORDS = "Your final answer must be a short sentence for the user in plain words, not a tool call or JSON."


class Agent:
    """An agent: goals, tools, a model and how to get tool calls from it.

    ``mode`` is ``auto`` (detected once per agent from the backend), ``native``, ``parsed`` or ``constrained``.
    ``max_rounds`` bounds the model calls of a run; on the last round the tools are withdrawn, so the model
    must answer in words. Within a run an identical call (same tool, same arguments) is never run twice: the
    first result is reused and the tool withdrawn. A run that ends without an answer (the rounds ran out
    without words, or every tool call failed) ends with an ``error`` event coded NO_ANSWER instead of a
    ``result``.

    Args:
        client: The chat client to the model server.
        tools: The tools the agent may call (a registry, or a sequence of tools).
        goals: The goal and persona lines of the system prompt (highest priority first).
        mode: How tool calls are obtained: ``auto`` (detected once from the server), ``native``, ``parsed`` or
            ``constrained``.
        model: The model id (default: the client's).
        environment: What runs the tools and turns their failures into messages (default: :class:`Environment`).
        max_rounds: The most model calls one run makes.
        max_tokens: The most tokens one model reply may have.
        context: Properties every tool run sees in its :class:`~lmstudio_agent.agent.tools.ActionContext`.
        policy: The small-model rules the constrained mode applies (:class:`~lmstudio_agent.SmallModelPolicy`;
            default: all of them; ``None``: none). Native and parsed modes never apply them.
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
        policy: SmallModelPolicy | None = DEFAULT_POLICY,
    ) -> None:
        """Configure the agent; nothing is sent to the model until a run starts."""
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
        self.policy = policy if policy is not None else SmallModelPolicy.off()
        self._resolved_mode: ToolMode | None = None if self.mode is ToolMode.AUTO else self.mode

    async def resolve_mode(self, deadline: Deadline | None = None) -> ToolMode:
        """The concrete tool-call mode: the one configured, or (for ``auto``) the one :func:`detect_mode` picks, asked
        of the server once and then kept.

        Args:
            deadline: Bounds the model-info request ``auto`` makes.
        """
        if self._resolved_mode is None:
            self._resolved_mode = await detect_mode(self.client, self.model, deadline=deadline)
            logger.info("tool-call mode for %s: %s", self.model, self._resolved_mode.value)
        return self._resolved_mode

    def offered_tools(self, registry: ToolRegistry | None = None) -> list[Tool]:
        """The tools a run offers: the registry's, plus ``terminate`` unless the registry has its own.

        Args:
            registry: The tools to offer instead of the agent's own (None: the agent's registry).
        """
        tools = list(registry if registry is not None else self.registry)
        if not any(t.terminal for t in tools) and all(t.name != TERMINATE.name for t in tools):
            tools.append(TERMINATE)
        return tools

    def strategy(self, mode: ToolMode) -> Strategy:
        """The strategy of a concrete ``mode``, with this agent's small-model policy.

        Args:
            mode: A concrete mode (not ``auto``).
        """
        return strategy_for(mode, self.policy)

    def system_message(self, strategy: Strategy, tools: Sequence[Tool],
                       context: RoundContext | None = None) -> dict[str, Any]:
        """The system prompt: goals, the mode's tool listing (for the round ``context`` describes), and (when
        tools are offered) the run's documents.

        Args:
            strategy: The mode's strategy, which adds its tool listing.
            tools: The tools offered this round (none: no listing and no documents).
            context: The round (request, plan, documents); None for a caller outside the loop.
        """
        sep = "\n-------------------\n"
        parts = [f"{g.name}:{sep}{g.description.strip()}{sep}" for g in self.goals]
        extra = strategy.system_prompt(tools, context)
        if extra:
            parts.append(extra)
        if tools and context is not None and context.documents:
            parts.append(listing(context.documents))
        return {"role": "system", "content": "\n\n".join(parts) or "You are a helpful assistant."}

    def first_messages(self, instruction: str, strategy: Strategy | ToolMode | str = ToolMode.CONSTRAINED,
                       documents: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The messages of a run's first round: the system message (goals, the mode's tool listing) and the
        request. Fine-tuning data is built from exactly these (nothing is sent).

        Args:
            instruction: The user's request.
            strategy: The mode's strategy, or a concrete mode (not ``auto``).
            documents: The run's documents (name -> text), listed by name for the model to pass by reference.
        """
        if isinstance(strategy, str):  # a ToolMode is a str too
            strategy = self.strategy(ToolMode(strategy))
        tools = self.offered_tools()
        context = RoundContext.start(instruction, tools, self.goals, documents)
        return [self.system_message(strategy, tools, context), {"role": "user", "content": instruction}]

    # ------------------------------------------------------------------------------------------ one round

    async def _ask(self, strategy: Strategy, messages: list[dict[str, Any]], tools: Sequence[Tool],
                   deadline: Deadline | None, context: RoundContext,
                   max_tokens: int | None = None) -> Turn:
        extra = strategy.request(tools, messages, context)
        sink = EVENT_SINK.get()
        if sink is not None:  # inside :meth:`astream`
            return await ask_streaming(sink, self.client, self.model, strategy, messages, tools, deadline, extra,
                                       max_tokens or self.max_tokens)
        response = await self.client.chat(
            messages, model=self.model, max_tokens=max_tokens or self.max_tokens, deadline=deadline, **extra
        )
        return strategy.read(response, tools)

    def astream(
        self,
        instruction: str | RunInput,
        *,
        memory: Memory | None = None,
        deadline: Deadline | None = None,
        tools: ToolRegistry | None = None,
        documents: dict[str, str] | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Run the loop for ``instruction`` and yield its :class:`RunEvent` s as they happen: each round's
        ``step-start``, the model's text as ``text-delta`` s (chat completions with ``stream: true``) and every
        transcript message. A failed run yields its ``error`` message, then raises its AgentError.

        Leaving the iteration early (``break``, a cancelled consumer) cancels the run.

        Args:
            instruction: The user's request (or a :class:`~lmstudio_agent.agent.documents.RunInput`, see :meth:`run`).
            memory: The conversation to continue (default: a new one).
            deadline: When the whole run must end.
            tools: The tools to offer instead of the agent's registry.
            documents: Document texts by name, passed to tools by reference (see :meth:`run`).
        """
        return stream_run(lambda on_message: self.run(instruction, on_message=on_message, memory=memory,
                                                      deadline=deadline, tools=tools, documents=documents))

    # ------------------------------------------------------------------ single rounds, checked, nothing run
    # What the evaluation harness scores (:mod:`.turns`, where they are written as functions of the agent);
    # the loop checks each call with ``check`` before it runs it.

    check = staticmethod(check_call)
    first_turn = turns.first_turn
    next_turn = turns.next_turn

    # ------------------------------------------------------------------------------------------- the loop

    async def run(
        self,
        instruction: str | RunInput,
        *,
        on_message: OnMessage | None = None,
        memory: Memory | None = None,
        deadline: Deadline | None = None,
        tools: ToolRegistry | None = None,
        documents: dict[str, str] | None = None,
    ) -> list[AgentMessage]:
        """Run the loop for ``instruction``; stream events to ``on_message`` and return the transcript.

        ``documents`` (name -> text) are passed to tools by reference: a string argument ``"@doc:NAME"`` is
        replaced by that document's text (:mod:`.documents`). An instruction longer than
        ``documents.LONG_INPUT_CHARS`` is also the document ``input``. The transcript ends with a final
        ``result``, or with an ``error`` coded NO_ANSWER when the run ended without an answer
        (:func:`~lmstudio_agent.agent.messages.answered` tells which).

        The instruction and the documents are checked once, here (:func:`~lmstudio_agent.agent.documents.check_input`);
        a :class:`~lmstudio_agent.agent.documents.RunInput` (the endpoint's, from a request the contract validated)
        is taken as it is, with its documents in it.

        Args:
            instruction: The user's request (a non-empty string), or a checked :class:`RunInput`.
            on_message: Called with each transcript message as it is made.
            memory: The conversation to continue (default: a new one).
            deadline: When the whole run must end; a run past it fails with UPSTREAM_TIMEOUT.
            tools: The tools to offer instead of the agent's registry.
            documents: Document texts by name, passed to tools by reference.
        """
        checked = check_input(instruction, documents)
        instruction = checked.instruction
        documents = with_long_input(instruction, dict(checked.documents))
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
        strategy = self.strategy(mode)
        offered = self.offered_tools(tools)
        memory = memory if memory is not None else Memory()
        context = ActionContext(
            self.context_properties,
            llm=LLM(self.client, self.model, deadline, self.max_tokens),
            agent=self,
            memory=memory,
        )
        memory.add_message("user", {"role": "user", "content": instruction})
        start = RoundContext.start(instruction, offered, self.goals, documents)

        try:
            await self._loop(strategy, offered, start, memory, context, emit, deadline)
        except AgentError as exc:
            await emit(AgentMessage(type="error", code=exc.code.value, content=exc.message))
            raise
        return transcript

    async def _loop(self, strategy: Strategy, offered: list[Tool], start: RoundContext, memory: Memory,
                    context: ActionContext, emit: Callable[[AgentMessage], Awaitable[None]],
                    deadline: Deadline | None) -> None:
        documents = dict(start.documents)
        done: dict[tuple[str, str], ToolOutcome] = {}  # identical calls run once per run
        withdrawn: set[str] = set()  # tools called twice with the same arguments: not offered again
        attempted = 0  # calls to non-terminal tools
        succeeded: list[str] = []  # the tools whose calls returned a result, oldest first
        results: list[tuple[str, str]] = []  # (tool, result as the model read it) of each of those calls
        reminded: set[int] = set()  # the plan steps the model was reminded of once already
        just_succeeded = False
        grounding = strategy.mode is ToolMode.CONSTRAINED and self.policy.ground_answers

        async def no_answer(reason: str) -> None:
            await emit(AgentMessage(type="error", code=ErrorCode.NO_ANSWER.value,
                                    content=f"The run ended without an answer: {reason}"))

        async def finish(text: str, can_go_on: bool) -> bool:
            """End the run with ``text`` as its answer, unless a required step was left out: then remind the
            model once (when ``can_go_on``) and return False, or end it NO_ANSWER."""
            if attempted and not succeeded:
                shown = text.strip()
                said = f' The model said: "{shown[:200]}"' if shown else ""
                await no_answer(f"every tool call failed ({attempted}).{said}")
                return True
            step = start.plan.left_out(succeeded)
            if step is not None:
                index = start.plan.steps.index(step)
                tools = " or ".join(step.tools)
                if can_go_on and index not in reminded:
                    reminded.add(index)
                    memory.add_message("environment", _note(
                        f"Not done yet: {step.text}. Call {tools} first."))
                    return False
                await no_answer(f"the step \"{step.text}\" was never done ({tools} never succeeded).")
                return True
            answer = text.strip()
            if grounding and results:
                from . import answers  # only the constrained mode's grounding reads it

                if not answers.stated(answer, results[-1][1], start.request):
                    # A tiny model's words that miss the result are often wrong about it too ("I can't find
                    # ..." after the find succeeded): the result, in words, replaces them.
                    answer = answers.in_words(*results[-1])
            await emit(AgentMessage(type="result", content=answer))
            return True

        for round_index in range(self.max_rounds):
            last_round = round_index == self.max_rounds - 1
            round_tools = [] if last_round else [t for t in offered if t.name not in withdrawn]
            round_context = RoundContext(
                request=start.request, plan=start.plan, succeeded=tuple(succeeded), results=tuple(results),
                documents=documents, first=round_index == 0, last=last_round, just_succeeded=just_succeeded)
            history = memory.to_chat_messages()
            messages = [self.system_message(strategy, round_tools, round_context)] + history
            if last_round and round_index > 0:
                messages.append(_note("Give your final answer now, in plain words."))
            turn = await self._ask(strategy, messages, round_tools, deadline, round_context,
                                   min(self.max_tokens, FINAL_MAX_TOKENS) if last_round else None)
            memory.add_message("assistant", turn.assistant_message)
            just_succeeded = False

            if last_round:
                # No tools were offered: only words count as the answer, never call markup.
                if turn.calls or not is_words(turn.text):
                    await no_answer(f"the {self.max_rounds} rounds ran out without a final answer in words.")
                    return
                await finish(turn.text, can_go_on=False)
                return
            if not turn.calls:
                problem = turn.errors[0] if turn.errors else (None if is_words(turn.text) else NOT_WORDS)
                if problem is not None:
                    await emit(AgentMessage(type="error", code=ErrorCode.MODEL_OUTPUT_INVALID.value, content=problem))
                    memory.add_message("environment", _note(problem))
                    continue
                if await finish(turn.text, can_go_on=round_index < self.max_rounds - 2):
                    return
                continue

            if turn.text:
                await emit(AgentMessage(type="thought", content=turn.text))
            for call in turn.calls:
                await emit(AgentMessage(type="action", tool=call.name, args=call.arguments))
                tool = next((t for t in round_tools if t.name == call.name), None)
                key = call_key(call)
                repeated = key in done and tool is not None and not tool.terminal
                if repeated:
                    outcome = done[key]
                    withdrawn.add(call.name)
                else:
                    outcome = await self._perform(call, round_tools, documents, context)
                terminal = outcome.ok and tool is not None and tool.terminal
                if terminal:
                    answer = render_result(outcome.result)
                    if not is_words(answer):
                        await emit(AgentMessage(type="error", tool=call.name, content=NOT_WORDS,
                                                code=ErrorCode.MODEL_OUTPUT_INVALID.value))
                        memory.add_message("environment", strategy.result_message(call, f"Error: {NOT_WORDS}"))
                        continue
                    if await finish(answer, can_go_on=round_index < self.max_rounds - 2):
                        return
                    continue
                content = outcome.for_model()
                if (tool is None or not tool.terminal) and not repeated:
                    attempted += 1
                    done[key] = outcome
                    if outcome.ok:
                        succeeded.append(call.name)
                        results.append((call.name, content))
                        just_succeeded = True
                if outcome.ok:
                    await emit(AgentMessage(type="result", tool=call.name, content=render_result(outcome.result)))
                else:
                    await emit(AgentMessage(type="error", tool=call.name, content=outcome.error,
                                            code=ErrorCode.TOOL_EXECUTION_FAILED.value))
                if repeated:
                    content = f"{REPEAT_NOTE.format(tool=call.name)} {content}"
                memory.add_message("environment", strategy.result_message(call, content))

    async def _perform(self, call: ToolCall, tools: Sequence[Tool], documents: dict[str, str],
                       context: ActionContext) -> ToolOutcome:
        """Resolve the call's document references, check it against ``tools``, and run it."""
        try:
            resolved = ToolCall(call.name, resolve(call.arguments, documents), call.id, call.invalid)
        except UnknownDocumentError as exc:
            return ToolOutcome(ok=False, error=exc.message)
        checked = self.check(resolved, tools)
        if checked.tool is None or checked.arguments is None:
            return ToolOutcome(ok=False, error=checked.error)
        return await self.environment.execute(checked.tool, checked.arguments, context)
