"""Running suite tasks through the agent's own first round and scoring what comes back.

Each task goes through :meth:`Agent.first_turn`: the same system prompt (goals, tool listing, the
``terminate`` tool), the same request, call extraction and argument validation as round one of ``act()``.
The ``plain`` mode is the baseline of plain prompting: the constrained mode's system prompt, asking in
words for one JSON call, without ``response_format``; calls are parsed from the text as in the other modes.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from collections.abc import Callable, Mapping, Sequence

from lmstudio_agent.agent.loop import DEFAULT_POLICY, Agent, FirstTurn, Goal
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.lmstudio import DEFAULT_GOALS
from lmstudio_agent.model.modes import ConstrainedStrategy, Strategy, ToolMode, detect_mode
from lmstudio_agent.model.policy import SmallModelPolicy
from lmstudio_agent.agent.rounds import RoundContext
from lmstudio_agent.agent.tools import Tool, ToolRegistry
from .scoring import Score, score_call, to_plain
from .suite import Task, tools_for

logger = logging.getLogger("lmstudio_eval")

EVAL_MODES = ("plain", "native", "parsed", "constrained")
MODE_CHOICES = ("auto", *EVAL_MODES, "all")
MAX_CONTENT_CHARS = 400
T = TypeVar("T")


class PlainStrategy(ConstrainedStrategy):
    """The plain-prompting baseline: the constrained prompt, but nothing constrains the reply."""

    def request(self, tools: Sequence[Tool], messages: Sequence[Mapping[str, Any]] = (),
                context: RoundContext | None = None) -> dict[str, Any]:
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
    kind: str = "call"
    restrained: bool | None = None  # no_call tasks: no tool called
    second_called: str | None = None  # two_step tasks: the call after the first result
    second_arguments: dict[str, Any] | None = None
    second_reason: str = ""
    two_step_ok: bool | None = None
    call_latencies: list[float] = field(default_factory=list)  # every model round of the task

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


def strategy_override(mode: str, policy: SmallModelPolicy | None = DEFAULT_POLICY) -> Strategy | None:
    return PlainStrategy(policy) if mode == "plain" else None


def build_agent(client: ChatClient, tools: Sequence[Tool], mode: str, goals: Sequence[Goal] = DEFAULT_GOALS,
                max_tokens: int = 512, policy: SmallModelPolicy | None = DEFAULT_POLICY) -> Agent:
    """The agent a task runs on: the mode's strategy (``plain`` runs on the constrained prompt), with the
    small-model ``policy`` (None: switched off)."""
    agent_mode = ToolMode.CONSTRAINED if mode == "plain" else ToolMode(mode)
    return Agent(client=client, tools=list(tools), goals=goals, mode=agent_mode, max_rounds=6, max_tokens=max_tokens,
                 policy=policy)


async def run_task(client: ChatClient, task: Task, mode: str, *, registry: ToolRegistry | None = None,
                   goals: Sequence[Goal] = DEFAULT_GOALS, max_tokens: int = 512,
                   request_timeout: float = 120.0, policy: SmallModelPolicy | None = DEFAULT_POLICY) -> TaskResult:
    """Run one task in ``mode`` (a concrete mode, not ``auto``) and score it: the first round for every task;
    for a two-step task whose first call is right, the round after its result too."""
    tools = tools_for(task, registry)
    agent = build_agent(client, tools, mode, goals, max_tokens, policy)
    expected = task.expected
    base: dict[str, Any] = dict(task_id=task.id, mode=mode, kind=task.kind, expected_tool=expected.name if expected else "",
                expected_arguments=expected.arguments if expected else {}, offered=[t.name for t in tools])
    strategy = strategy_override(mode, policy if policy is not None else SmallModelPolicy.off())
    try:
        outcome = await agent.first_turn(task.instruction, deadline=Deadline(request_timeout), strategy=strategy)
    except AgentError as exc:
        if exc.code is ErrorCode.CONNECTION_FAILED:
            raise  # the server is gone: no later task can run either
        return TaskResult(**base, called=None, arguments=None, name_ok=False, exact=False,
                          reason=f"{exc.code.value}: {exc.message}", latency_s=0.0, prompt_tokens=0,
                          completion_tokens=0, restrained=None if expected else False,
                          two_step_ok=False if task.kind == "two_step" else None)
    response = outcome.turn.response
    content = (response.content if response else "")[:MAX_CONTENT_CHARS]
    latencies = [round(response.latency_s, 4)] if response else []
    called, raw_arguments, score = _first_call(outcome, task)
    restrained = None
    if task.kind == "no_call":
        restrained = all(c.tool is not None and c.tool.terminal for c in outcome.checked)
        score = Score(False, False, "" if restrained else f"called '{called}' though no offered tool fits")
    result = TaskResult(
        **base, called=called, arguments=raw_arguments, name_ok=score.name_ok, exact=score.exact,
        reason=score.reason, latency_s=latencies[0] if latencies else 0.0,
        prompt_tokens=response.usage.prompt_tokens if response else 0,
        completion_tokens=response.usage.completion_tokens if response else 0, content=content,
        restrained=restrained, call_latencies=latencies,
    )
    if task.kind == "two_step":
        result.two_step_ok = False
        if score.exact:
            await _second_step(agent, outcome, task, tools, strategy, request_timeout, result)
    return result


def _first_call(outcome: FirstTurn, task: Task) -> tuple[str | None, dict[str, Any] | None, Score]:
    if not outcome.checked:
        reason = outcome.turn.errors[0] if outcome.turn.errors else "answered in words, no tool call"
        return None, None, Score(False, False, reason)
    checked = outcome.checked[0]
    if task.expected is None:
        return checked.call.name, to_plain(checked.call.arguments), Score(False, False, "")
    arguments = to_plain(checked.arguments) if checked.error is None else None
    parameters = checked.tool.parameters if checked.tool is not None else None
    score = score_call(task.expected.name, task.expected.arguments, checked.call.name, arguments, parameters,
                       checked.error)
    return checked.call.name, to_plain(checked.call.arguments), score


async def _second_step(agent: Agent, outcome: FirstTurn, task: Task, tools: Sequence[Tool], strategy: Strategy | None,
                       request_timeout: float, result: TaskResult) -> None:
    # a two_step task always has both (Task's validator requires them)
    assert task.expected_calls is not None and task.results is not None
    want = task.expected_calls[1]
    try:
        second = await agent.next_turn(outcome, task.results[0], deadline=Deadline(request_timeout), strategy=strategy)
    except AgentError as exc:
        if exc.code is ErrorCode.CONNECTION_FAILED:
            raise
        result.second_reason = f"{exc.code.value}: {exc.message}"
        return
    if second.turn.response is not None:
        result.call_latencies.append(round(second.turn.response.latency_s, 4))
    if not second.checked:
        result.second_reason = "no second call"
        return
    checked = second.checked[0]
    tool = next((t for t in tools if t.name == want.name), None)
    arguments = to_plain(checked.arguments) if checked.error is None else None
    score = score_call(want.name, want.arguments, checked.call.name, arguments,
                       tool.parameters if tool is not None else None, checked.error)
    result.second_called = checked.call.name
    result.second_arguments = to_plain(checked.call.arguments)
    result.second_reason = score.reason
    result.two_step_ok = score.exact


async def run_suite(client: ChatClient, tasks: Sequence[Task], mode: str, *, registry: ToolRegistry | None = None,
                    goals: Sequence[Goal] = DEFAULT_GOALS, max_tokens: int = 512, request_timeout: float = 120.0,
                    on_result: Callable[[TaskResult], Any] | None = None,
                    policy: SmallModelPolicy | None = DEFAULT_POLICY) -> list[TaskResult]:
    """Every task in one mode, one after the other (a local model server runs one request at a time)."""
    results = []
    for task in tasks:
        result = await run_task(client, task, mode, registry=registry, goals=goals, max_tokens=max_tokens,
                                request_timeout=request_timeout, policy=policy)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def spread(tasks: Sequence[T], limit: int | None) -> list[T]:
    """At most ``limit`` tasks, evenly spaced through the suite (so every tool keeps a share)."""
    if not limit or limit >= len(tasks):
        return list(tasks)
    step = len(tasks) / limit
    return [tasks[int(i * step)] for i in range(limit)]
