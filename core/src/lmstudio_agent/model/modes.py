"""The three ways to get a tool call out of a model, chosen per backend.

- ``native``: the server returns ``tool_calls`` (with a fallback parse of ``content``, where LM Studio leaves
  calls it could not parse);
- ``parsed``: the tools are listed in the system prompt and calls are parsed out of ``content``
  (LFM2's ``<|tool_call_start|>[...]``, a bare ``[fn(...)]``, ``[TOOL_REQUEST]``, ``<tool_call>``);
- ``constrained``: grammar-constrained JSON through ``response_format``, for models with no tool support.

Each strategy builds the request, reads the response into a :class:`Turn`, and shapes the messages that
go back to the model, so the agent loop never branches on the mode.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol
from collections.abc import Mapping, Sequence

from .client import ChatClient, ChatResponse
from ..deadline import Deadline
from ..agent.documents import references
from .policy import SmallModelPolicy
from ..agent.rounds import RoundContext
from .toolcalls import ToolCall, format_lfm2_calls, parse_tool_calls
from ..agent.tools import Tool


class ToolMode(str, Enum):
    """How tool calls are asked for and read: ``native`` (the server's ``tools``), ``parsed`` (LFM2 call text in the
    content), ``constrained`` (grammar-constrained JSON) or ``auto`` (picked per model by :func:`detect_mode`).
    """

    AUTO = "auto"
    NATIVE = "native"
    PARSED = "parsed"
    CONSTRAINED = "constrained"


@dataclass
class Turn:
    """What one model round produced."""

    calls: list[ToolCall]
    text: str
    errors: list[str]
    assistant_message: dict[str, Any]
    response: ChatResponse | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Strategy(Protocol):
    """What a tool-call mode does in each round: the prompt text, the request's extra arguments, reading the reply and
    sending a result back.
    """

    mode: ToolMode

    def system_prompt(self, tools: Sequence[Tool], context: RoundContext | None = None) -> str | None:
        """Text to add to the system prompt when ``tools`` are offered in the round ``context`` describes
        (None: nothing).

        Args:
            tools: The tools offered.
            context: The round (request, plan, documents); None for a caller outside the loop.
        """

    def request(self, tools: Sequence[Tool], messages: Sequence[Mapping[str, Any]] = (),
                context: RoundContext | None = None) -> dict[str, Any]:
        """Extra keyword arguments for :meth:`ChatClient.chat` when ``tools`` are offered for ``messages`` in the
        round ``context`` describes (its documents are what tool calls may pass by reference).

        Args:
            tools: The tools offered.
            messages: The messages about to be sent.
            context: The round; None for a caller outside the loop (it is then read off ``messages``).
        """

    def read(self, response: ChatResponse, tools: Sequence[Tool]) -> Turn:
        """The calls and text in a response.

        Args:
            response: The model's reply.
            tools: The tools offered this round.
        """

    def result_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        """The message that carries a tool's result (or error) back to the model.

        Args:
            call: The call the result answers.
            content: The result (or error) as text.
        """


def _ensure_ids(calls: list[ToolCall]) -> list[ToolCall]:
    for call in calls:
        if not call.id:
            call.id = f"call_{uuid.uuid4().hex[:12]}"
    return calls


class NativeStrategy:
    """The server's own tool calling: tools go in the request's ``tools``, calls come back as ``tool_calls`` (or,
    failing that, as call text in the content) and results go back in ``tool`` messages.
    """

    mode = ToolMode.NATIVE

    def system_prompt(self, tools: Sequence[Tool], context: RoundContext | None = None) -> str | None:
        """Nothing: the tools travel in the request.

        Args:
            tools: The tools offered.
            context: The round (unused).
        """
        return None

    def request(self, tools: Sequence[Tool], messages: Sequence[Mapping[str, Any]] = (),
                context: RoundContext | None = None) -> dict[str, Any]:
        """The tools in OpenAI format, with ``tool_choice: auto`` (nothing when no tool is offered).

        Args:
            tools: The tools offered.
            messages: The messages about to be sent (unused).
            context: The round (unused).
        """
        return {"tools": [t.to_openai() for t in tools], "tool_choice": "auto"} if tools else {}

    def read(self, response: ChatResponse, tools: Sequence[Tool]) -> Turn:
        """The reply's ``tool_calls``, or calls parsed from its content when it has none.

        Args:
            response: The model's reply.
            tools: The tools offered (unused).
        """
        if response.tool_calls:
            calls = _ensure_ids(list(response.tool_calls))
            message = {"role": "assistant", "content": response.content, "tool_calls": [c.to_openai() for c in calls]}
            return Turn(calls, response.content.strip(), [], message, response)
        parsed = parse_tool_calls(response.content)
        return Turn(_ensure_ids(parsed.calls), parsed.text, parsed.errors,
                    {"role": "assistant", "content": response.content}, response)

    def result_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        """A ``tool`` message answering the call's id.

        Args:
            call: The call the result answers.
            content: The result (or error) as text.
        """
        return {"role": "tool", "tool_call_id": call.id, "content": content}


class ParsedStrategy(NativeStrategy):
    """LFM2's call syntax: tools listed in the system prompt, calls parsed from the reply's text."""

    mode = ToolMode.PARSED

    def system_prompt(self, tools: Sequence[Tool], context: RoundContext | None = None) -> str | None:
        """The tools between LFM2's ``<|tool_list_start|>`` markers, with an example call (None when no tool is
        offered).

        Args:
            tools: The tools offered.
            context: The round (unused).
        """
        if not tools:
            return None
        listing = json.dumps([t.to_openai()["function"] for t in tools], separators=(",", ":"))
        example = format_lfm2_calls([ToolCall(name="tool_name", arguments={"arg": "value"})])
        return f"List of tools: <|tool_list_start|>{listing}<|tool_list_end|>\nTo call a tool, reply with {example}."

    def request(self, tools: Sequence[Tool], messages: Sequence[Mapping[str, Any]] = (),
                context: RoundContext | None = None) -> dict[str, Any]:
        """Nothing: the tools are in the prompt.

        Args:
            tools: The tools offered (unused).
            messages: The messages about to be sent (unused).
            context: The round (unused).
        """
        return {}

    def read(self, response: ChatResponse, tools: Sequence[Tool]) -> Turn:
        """The calls parsed from the reply's text (its ``tool_calls`` when none parse); the call text stays in the
        assistant message.

        Args:
            response: The model's reply.
            tools: The tools offered (unused).
        """
        # The raw call text stays in the assistant message: LFM2's template renders only content.
        parsed = parse_tool_calls(response.content)
        calls = _ensure_ids(parsed.calls or list(response.tool_calls))
        return Turn(calls, parsed.text, parsed.errors, {"role": "assistant", "content": response.content}, response)


class ConstrainedStrategy:
    """Grammar-constrained JSON (:mod:`.smallmodel`): each reply is one call, or an answer in words
    (``{"type": "answer", "answer": "..."}``), which ends the run with no call. With no tools (a run's last
    round) only the answer can be written. ``policy`` says which small-model rules steer the calls
    (:class:`~lmstudio_agent.model.policy.SmallModelPolicy`). The rules are imported by the methods, with the
    first constrained round: ``import lmstudio_agent`` does not load them.

    Args:
        policy: The small-model rules to apply (default: all of them).
    """

    mode = ToolMode.CONSTRAINED

    def __init__(self, policy: SmallModelPolicy | None = None) -> None:
        """Keep ``policy`` (None: all the rules)."""
        self.policy = policy if policy is not None else SmallModelPolicy()

    def system_prompt(self, tools: Sequence[Tool], context: RoundContext | None = None) -> str | None:
        """The small-model tool listing: with the policy's routing, only the tools the plan names.

        Args:
            tools: The tools offered.
            context: The round, whose plan the routing reads.
        """
        from . import smallmodel

        # With the policy's routing, only the tools the plan names are listed (all when it names none): a
        # shorter prompt is both faster and less for a tiny model to confuse; the grammar never offers a tool
        # that is not listed.
        return smallmodel.system_prompt(smallmodel.listed_tools(tools, context, self.policy))

    def request(self, tools: Sequence[Tool], messages: Sequence[Mapping[str, Any]] = (),
                context: RoundContext | None = None) -> dict[str, Any]:
        """The ``response_format`` whose grammar allows only the round's calls (with values copied from the
        conversation) and, when allowed, an answer.

        Args:
            tools: The tools offered (none: only the answer).
            messages: The messages about to be sent; argument values are copied from them.
            context: The round; None for a caller outside the loop (it is then read off ``messages``).
        """
        from . import smallmodel

        # Argument values copied from the conversation: measured on SmolLM2-135M (docs/readme/eval.md); the
        # run's document references ("@doc:NAME") are copy candidates for string arguments too. With no
        # tools (the last round) the grammar offers only the answer.
        if context is None:
            context = context_of(messages, tools)
        sources = smallmodel.copy_sources(messages) if tools else []
        # The plan's current step, when the goals wrote it, is asked too: its values ("the gold tier") count.
        step = context.plan.next_step(context.succeeded)
        asked = [context.request] if context.request else []
        if tools and step is not None and step.source == "goals":
            sources = [*sources, step.text]
            asked.append(step.text)
        refs = references(context.documents) if tools and context.documents else ()
        answer = not tools or smallmodel.answer_offered(tools, context, self.policy)
        offered = smallmodel.round_tools(tools, context, self.policy) if tools else []
        # A tool whose required number, date or identifier the conversation does not hold is not offered:
        # the model could only invent it. With none left, it answers (and can ask for what is missing).
        return {"response_format": smallmodel.response_format(
            offered, sources, refs, answer=answer or not offered, leave_out_unfilled=self.policy.withhold_unfilled,
            results=context.results, policy=self.policy, asked=asked)}

    def read(self, response: ChatResponse, tools: Sequence[Tool]) -> Turn:
        """The answer, or the call, in a grammar-constrained reply.

        Args:
            response: The model's reply.
            tools: The tools offered (none: the reply is the answer, whatever it is).
        """
        from . import smallmodel

        message = {"role": "assistant", "content": response.content}
        answer = smallmodel.read_answer(response.content)
        if answer is not None:
            return Turn([], answer, [], message, response, {"answer": True})
        if not tools:  # the last round: whatever came back is the answer (a server that ignored the grammar)
            return Turn([], response.content.strip(), [], message, response)
        parsed = parse_tool_calls(response.content)
        if parsed.calls:
            return Turn(_ensure_ids(parsed.calls[:1]), "", parsed.errors, message, response)
        reason = "it was cut off" if response.finish_reason == "length" else "it is not a JSON tool call"
        error = f"Your reply could not be read as a tool call or an answer ({reason}). Reply with one JSON " \
                'object: {"tool": "<tool name>", "arguments": {...}}, or ' + smallmodel.format_answer("...") + "."
        return Turn([], "", [error], message, response)

    def result_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        """A user message carrying the result (many small models' templates accept only user and assistant turns).

        Args:
            call: The call the result answers.
            content: The result (or error) as text.
        """
        from . import smallmodel

        return {"role": "user", "content": smallmodel.format_result(call.name, content)}


def context_of(messages: Sequence[Mapping[str, Any]], tools: Sequence[Tool] = ()) -> RoundContext:
    """A round's context read off its messages alone, for a caller outside the loop (a single evaluated turn):
    the request is the first user message, and the round is the first when no assistant message is there.

    Args:
        messages: The round's messages.
        tools: The tools offered.
    """
    request = next((m.get("content") for m in messages if m.get("role") == "user"), None)
    context = RoundContext.start(request if isinstance(request, str) else None, tools)
    first = not any(m.get("role") == "assistant" for m in messages)
    return context if first else RoundContext(request=context.request, plan=context.plan, first=False)


STRATEGIES: dict[ToolMode, Strategy] = {
    ToolMode.NATIVE: NativeStrategy(),
    ToolMode.PARSED: ParsedStrategy(),
    ToolMode.CONSTRAINED: ConstrainedStrategy(),
}


def strategy_for(mode: ToolMode | str, policy: SmallModelPolicy | None = None) -> Strategy:
    """The strategy of a concrete mode; the constrained one applies ``policy`` (default: every rule).

    Args:
        mode: ``native``, ``parsed`` or ``constrained`` (``auto`` must be resolved first).
        policy: The small-model rules of the constrained mode.
    """
    mode = ToolMode(mode)
    if mode is ToolMode.AUTO:
        raise ValueError("resolve 'auto' with detect_mode() first")
    if mode is ToolMode.CONSTRAINED and policy is not None:
        return ConstrainedStrategy(policy)
    return STRATEGIES[mode]


async def detect_mode(client: ChatClient, model: str | None = None, *, deadline: Deadline | None = None) -> ToolMode:
    """Pick the mode for a backend.

    LM Studio (and gateway-model, which mirrors it) lists each model's ``capabilities``: ``tool_use`` means
    native tool calls; without it, grammar-constrained JSON. A server without that listing gets native calls
    with the content fallback, except LFM2 models, whose calls are parsed from content.

    Args:
        client: The client of the server to ask.
        model: The model's id (default: the client's).
        deadline: Bounds the model-info request.
    """
    model = model or client.model
    info = await client.model_info(model, deadline=deadline)
    if info is not None:
        return ToolMode.NATIVE if "tool_use" in (info.get("capabilities") or []) else ToolMode.CONSTRAINED
    if "lfm2" in model.lower():
        return ToolMode.PARSED
    return ToolMode.NATIVE
