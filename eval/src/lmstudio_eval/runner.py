"""Running suite tasks through the agent's own first round and scoring what comes back.

Each task goes through :meth:`Agent.first_turn`: the same system prompt (goals, tool listing, the
``terminate`` tool), the same request, call extraction and argument validation as round one of ``act()``.
The ``plain`` mode is the baseline of plain prompting: the constrained mode's system prompt, asking in
words for one JSON call, without ``response_format``; calls are parsed from the text as in the other modes.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from lmstudio_agent.agent import Agent, Goal
from lmstudio_agent.client import ChatClient
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.lmstudio import DEFAULT_GOALS
from lmstudio_agent.modes import ConstrainedStrategy, Strategy, ToolMode, detect_mode
from lmstudio_agent.tools import Tool, ToolRegistry
from .scoring import Score, score_call, to_plain
from .suite import Task, tools_for

logger = logging.getLogger("lmstudio_eval")

EVAL_MODES = ("plain", "native", "parsed", "constrained")
MODE_CHOICES = ("auto", *EVAL_MODES, "all")
MAX_CONTENT_CHARS = 400


class PlainStrategy(ConstrainedStrategy):
    """The plain-prompting baseline: the constrained prompt, but nothing constrains the reply."""

    def request(self, tools: Sequence[Tool], messages: Sequence[dict[str, Any]] = (),
                documents: Any = None) -> dict[str, Any]:
        return {}


@dataclass
class TaskResult:
    """One task in one mode: what the model called, how it scored, what it cost."""

    task_id: str
    mode: str
    expected_tool: str
    expected_arguments: dict[str, Any]
    called: str | None
    arguments: dict[str, Any] | None
    name_ok: bool
    exact: bool
    reason: str
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    content: str = ""
    offered: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_modes(requested: Sequence[str]) -> list[str]:
    """The modes to run, in order, without repeats (``all`` is every mode, plain baseline first)."""
    modes: list[str] = []
    for mode in requested or ("auto",):
        for item in (EVAL_MODES if mode == "all" else (mode,)):
            if item not in MODE_CHOICES:
                raise ValueError(f"unknown mode '{item}': choose from {', '.join(MODE_CHOICES)}")
            if item not in modes:
                modes.append(item)
    return modes


async def concrete_mode(client: ChatClient, mode: str) -> str:
    """``auto`` resolved the way the agent resolves it (the server's model listing); others unchanged."""
    if mode != "auto":
        return mode
    return (await detect_mode(client, client.model)).value


def strategy_override(mode: str) -> Strategy | None:
    return PlainStrategy() if mode == "plain" else None


def build_agent(client: ChatClient, tools: Sequence[Tool], mode: str, goals: Sequence[Goal] = DEFAULT_GOALS,
                max_tokens: int = 512) -> Agent:
    """The agent a task runs on: the mode's strategy (``plain`` runs on the constrained prompt)."""
    agent_mode = ToolMode.CONSTRAINED if mode == "plain" else ToolMode(mode)
    return Agent(client=client, tools=list(tools), goals=goals, mode=agent_mode, max_rounds=6, max_tokens=max_tokens)


async def run_task(client: ChatClient, task: Task, mode: str, *, registry: ToolRegistry | None = None,
                   goals: Sequence[Goal] = DEFAULT_GOALS, max_tokens: int = 512,
                   request_timeout: float = 120.0) -> TaskResult:
    """Run one task's first round in ``mode`` (a concrete mode, not ``auto``) and score it."""
    tools = tools_for(task, registry)
    agent = build_agent(client, tools, mode, goals, max_tokens)
    expected_tool = next(t for t in tools if t.name == task.expected.name)
    base = dict(task_id=task.id, mode=mode, expected_tool=task.expected.name,
                expected_arguments=task.expected.arguments, offered=[t.name for t in tools])
    try:
        outcome = await agent.first_turn(task.instruction, deadline=Deadline(request_timeout),
                                         strategy=strategy_override(mode))
    except AgentError as exc:
        if exc.code is ErrorCode.CONNECTION_FAILED:
            raise  # the server is gone: no later task can run either
        return TaskResult(**base, called=None, arguments=None, name_ok=False, exact=False,
                          reason=f"{exc.code.value}: {exc.message}", latency_s=0.0, prompt_tokens=0,
                          completion_tokens=0)
    response = outcome.turn.response
    content = (response.content if response else "")[:MAX_CONTENT_CHARS]
    if outcome.checked:
        checked = outcome.checked[0]
        arguments = to_plain(checked.arguments) if checked.error is None else None
        score = score_call(task.expected.name, task.expected.arguments, checked.call.name, arguments,
                           expected_tool.parameters, checked.error)
        called, raw_arguments = checked.call.name, to_plain(checked.call.arguments)
    else:
        reason = outcome.turn.errors[0] if outcome.turn.errors else "answered in words, no tool call"
        score = Score(False, False, reason)
        called, raw_arguments = None, None
    return TaskResult(
        **base, called=called, arguments=raw_arguments, name_ok=score.name_ok, exact=score.exact,
        reason=score.reason, latency_s=round(response.latency_s, 4) if response else 0.0,
        prompt_tokens=response.usage.prompt_tokens if response else 0,
        completion_tokens=response.usage.completion_tokens if response else 0, content=content,
    )


async def run_suite(client: ChatClient, tasks: Sequence[Task], mode: str, *, registry: ToolRegistry | None = None,
                    goals: Sequence[Goal] = DEFAULT_GOALS, max_tokens: int = 512, request_timeout: float = 120.0,
                    on_result: Callable[[TaskResult], Any] | None = None) -> list[TaskResult]:
    """Every task in one mode, one after the other (a local model server runs one request at a time)."""
    results = []
    for task in tasks:
        result = await run_task(client, task, mode, registry=registry, goals=goals, max_tokens=max_tokens,
                                request_timeout=request_timeout)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def spread(tasks: Sequence[Task], limit: int | None) -> list[Task]:
    """At most ``limit`` tasks, evenly spaced through the suite (so every tool keeps a share)."""
    if not limit or limit >= len(tasks):
        return list(tasks)
    step = len(tasks) / limit
    return [tasks[int(i * step)] for i in range(limit)]
