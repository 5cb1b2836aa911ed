"""Single rounds of a run, asked and checked but never run: what the evaluation harness scores.

:meth:`Agent.first_turn <lmstudio_agent.agent.loop.Agent.first_turn>` and :meth:`Agent.next_turn
<lmstudio_agent.agent.loop.Agent.next_turn>` are :func:`first_turn` and :func:`next_turn`; :meth:`Agent.check
<lmstudio_agent.agent.loop.Agent.check>`, which the loop also uses before it runs a call, is :func:`check_call`.
They send what :meth:`Agent.run <lmstudio_agent.agent.loop.Agent.run>` would send (same prompt, same extraction,
same validation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from ..deadline import Deadline
from ..errors import AgentError
from ..model.modes import Strategy, ToolMode, Turn
from ..model.toolcalls import ToolCall
from .documents import UnknownDocumentError, check_documents, resolve, with_long_input
from .rounds import RoundContext
from .tools import Tool

if TYPE_CHECKING:
    from .loop import Agent

__all__ = ["CheckedCall", "FirstTurn", "check_call", "first_turn", "next_turn"]


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


def check_call(call: ToolCall, tools: Sequence[Tool]) -> CheckedCall:
    """Match a call to an offered tool and validate its arguments (nothing runs).

    Args:
        call: The call the model made.
        tools: The tools offered this round.
    """
    tool = next((t for t in tools if t.name == call.name), None)
    if tool is None:
        names = ", ".join(t.name for t in tools) or "none"
        return CheckedCall(call, None, None, f"Unknown tool '{call.name}'. Available tools: {names}.")
    if call.invalid is not None:
        return CheckedCall(call, tool, None, call.invalid)
    try:
        return CheckedCall(call, tool, tool.validate_arguments(call.arguments), None)
    except AgentError as exc:
        return CheckedCall(call, tool, None, exc.message)


async def first_turn(agent: Agent, instruction: str, *, deadline: Deadline | None = None,
                     strategy: Strategy | None = None, documents: dict[str, str] | None = None) -> FirstTurn:
    """Run only the first round of :meth:`Agent.run <lmstudio_agent.agent.loop.Agent.run>` (same prompt, same
    extraction, same validation).

    ``strategy`` replaces the mode's (the evaluation's plain-prompting baseline uses it). Calls are checked
    with their document references resolved.

    Args:
        agent: The agent (this is its method ``first_turn``).
        instruction: The user's request.
        deadline: When the round must end.
        strategy: Replaces the mode's strategy.
        documents: Document texts by name (see :meth:`Agent.run <lmstudio_agent.agent.loop.Agent.run>`).
    """
    if strategy is None:
        strategy = agent.strategy(await agent.resolve_mode(deadline))
    mode = strategy.mode
    tools = agent.offered_tools()
    documents = with_long_input(instruction, check_documents(documents))
    context = RoundContext.start(instruction, tools, agent.goals, documents)
    messages = [agent.system_message(strategy, tools, context), {"role": "user", "content": instruction}]
    turn = await agent._ask(strategy, messages, tools, deadline, context)
    checked = []
    for call in turn.calls:
        try:
            resolved = ToolCall(call.name, resolve(call.arguments, documents), call.id, call.invalid)
        except UnknownDocumentError as exc:
            checked.append(CheckedCall(call, next((t for t in tools if t.name == call.name), None), None,
                                       exc.message))
            continue
        checked.append(agent.check(resolved, tools))
    return FirstTurn(mode, turn, checked, messages)


async def next_turn(agent: Agent, previous: FirstTurn, result: str, *, deadline: Deadline | None = None,
                    strategy: Strategy | None = None) -> FirstTurn:
    """The round after ``previous``, whose first call returned ``result`` (nothing runs: the evaluation
    harness supplies the result), with the messages :meth:`Agent.run <lmstudio_agent.agent.loop.Agent.run>` would
    send then.

    Args:
        agent: The agent (this is its method ``next_turn``).
        previous: The round before, as :func:`first_turn` (or this function) returned it.
        result: The result of ``previous``'s first call, as the tool would have returned it.
        deadline: When the round must end.
        strategy: Replaces the strategy of ``previous``'s mode.
    """
    if strategy is None:
        strategy = agent.strategy(previous.mode)
    if not previous.turn.calls:
        raise ValueError("the previous turn made no call")
    tools = agent.offered_tools()
    call = previous.turn.calls[0]
    messages = [*previous.messages, previous.turn.assistant_message, strategy.result_message(call, result)]
    ok = not result.startswith("Error")
    start = RoundContext.start(next((m["content"] for m in previous.messages if m.get("role") == "user"), None),
                               tools, agent.goals)
    context = RoundContext(request=start.request, plan=start.plan, succeeded=(call.name,) if ok else (),
                           results=((call.name, result),) if ok else (), first=False, just_succeeded=ok)
    turn = await agent._ask(strategy, messages, tools, deadline, context)
    return FirstTurn(previous.mode, turn, [agent.check(c, tools) for c in turn.calls], messages)
