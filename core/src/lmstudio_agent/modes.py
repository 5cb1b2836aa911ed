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
from typing import Any, Mapping, Protocol, Sequence

from . import smallmodel
from .client import ChatClient, ChatResponse
from .deadline import Deadline
from .documents import references
from .smallmodel.policy import SmallModelPolicy
from .rounds import RoundContext
from .toolcalls import ToolCall, format_lfm2_calls, parse_tool_calls
from .tools import Tool


class ToolMode(str, Enum):
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
    mode: ToolMode

    def system_prompt(self, tools: Sequence[Tool], context: RoundContext | None = None) -> str | None:
        """Text to add to the system prompt when ``tools`` are offered in the round ``context`` describes
        (None: nothing)."""

    def request(self, tools: Sequence[Tool], messages: Sequence[Mapping[str, Any]] = (),
                context: RoundContext | None = None) -> dict[str, Any]:
        """Extra keyword arguments for :meth:`ChatClient.chat` when ``tools`` are offered for ``messages`` in the
        round ``context`` describes (its documents are what tool calls may pass by reference)."""

    def read(self, response: ChatResponse, tools: Sequence[Tool]) -> Turn:
        """The calls and text in a response."""

    def result_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        """The message that carries a tool's result (or error) back to the model."""


def _ensure_ids(calls: list[ToolCall]) -> list[ToolCall]:
    for call in calls:
        if not call.id:
            call.id = f"call_{uuid.uuid4().hex[:12]}"
    return calls


class NativeStrategy:
    mode = ToolMode.NATIVE

    def system_prompt(self, tools: Sequence[Tool], context: RoundContext | None = None) -> str | None:
        return None

    def request(self, tools: Sequence[Tool], messages: Sequence[Mapping[str, Any]] = (),
                context: RoundContext | None = None) -> dict[str, Any]:
        return {"tools": [t.to_openai() for t in tools], "tool_choice": "auto"} if tools else {}

    def read(self, response: ChatResponse, tools: Sequence[Tool]) -> Turn:
        if response.tool_calls:
            calls = _ensure_ids(list(response.tool_calls))
            message = {"role": "assistant", "content": response.content, "tool_calls": [c.to_openai() for c in calls]}
            return Turn(calls, response.content.strip(), [], message, response)
        parsed = parse_tool_calls(response.content)
        return Turn(_ensure_ids(parsed.calls), parsed.text, parsed.errors,
                    {"role": "assistant", "content": response.content}, response)

    def result_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": call.id, "content": content}


class ParsedStrategy(NativeStrategy):
    mode = ToolMode.PARSED

    def system_prompt(self, tools: Sequence[Tool], context: RoundContext | None = None) -> str | None:
        if not tools:
            return None
        listing = json.dumps([t.to_openai()["function"] for t in tools], separators=(",", ":"))
        example = format_lfm2_calls([ToolCall(name="tool_name", arguments={"arg": "value"})])
        return f"List of tools: <|tool_list_start|>{listing}<|tool_list_end|>\nTo call a tool, reply with {example}."

    def request(self, tools: Sequence[Tool], messages: Sequence[Mapping[str, Any]] = (),
                context: RoundContext | None = None) -> dict[str, Any]:
        return {}

    def read(self, response: ChatResponse, tools: Sequence[Tool]) -> Turn:
        # The raw call text stays in the assistant message: LFM2's template renders only content.
        parsed = parse_tool_calls(response.content)
        calls = _ensure_ids(parsed.calls or list(response.tool_calls))
        return Turn(calls, parsed.text, parsed.errors, {"role": "assistant", "content": response.content}, response)


class ConstrainedStrategy:
    """Grammar-constrained JSON (:mod:`.smallmodel`): each reply is one call, or an answer in words
    (``{"type": "answer", "answer": "..."}``), which ends the run with no call. With no tools (a run's last
    round) only the answer can be written. ``policy`` says which small-model rules steer the calls
    (:class:`~lmstudio_agent.smallmodel.policy.SmallModelPolicy`).

    Args:
        policy: The small-model rules to apply (default: all of them).
    """

    mode = ToolMode.CONSTRAINED

    def __init__(self, policy: SmallModelPolicy | None = None) -> None:
        self.policy = policy if policy is not None else SmallModelPolicy()

    def system_prompt(self, tools: Sequence[Tool], context: RoundContext | None = None) -> str | None:
        # With the policy's routing, only the tools the plan names are listed (all when it names none): a
        # shorter prompt is both faster and less for a tiny model to confuse; the grammar never offers a tool
        # that is not listed.
        return smallmodel.system_prompt(smallmodel.listed_tools(tools, context, self.policy))

    def request(self, tools: Sequence[Tool], messages: Sequence[Mapping[str, Any]] = (),
                context: RoundContext | None = None) -> dict[str, Any]:
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
        # A user turn, not the tool role: many small models' templates accept only user/assistant.
        return {"role": "user", "content": smallmodel.format_result(call.name, content)}


def context_of(messages: Sequence[Mapping[str, Any]], tools: Sequence[Tool] = ()) -> RoundContext:
    """A round's context read off its messages alone, for a caller outside the loop (a single evaluated turn):
    the request is the first user message, and the round is the first when no assistant message is there."""
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
    """
    model = model or client.model
    info = await client.model_info(model, deadline=deadline)
    if info is not None:
        return ToolMode.NATIVE if "tool_use" in (info.get("capabilities") or []) else ToolMode.CONSTRAINED
    if "lfm2" in model.lower():
        return ToolMode.PARSED
    return ToolMode.NATIVE
