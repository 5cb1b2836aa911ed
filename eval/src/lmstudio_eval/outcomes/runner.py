"""Running outcome tasks through the real agent loop: ``Agent(...)`` then ``await agent.run(instruction, documents=...)``.

Every wording of a task is one whole run, on a fresh copy of the task's world, with the task's tools and goals (the
project's default goals where the task has none) and a bounded number of rounds. Nothing of the loop is
re-implemented here: what the run did is read back from the world, the invoice storage and the transcript
(:mod:`.checks`). Extra keyword arguments go to ``Agent(...)`` unchanged (``agent_kwargs``), e.g. a ``policy=``.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import asdict, dataclass, field
from typing import Any
from collections.abc import Callable, Mapping, Sequence

from lmstudio_agent.agent.loop import Agent, Goal
from lmstudio_agent.model.client import ChatClient, ChatResponse
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.lmstudio import DEFAULT_GOALS
from lmstudio_agent.agent.messages import AgentMessage, final_answer
from .checks import Verdict, check_run
from .world import CountingStorage, World, build_tools

logger = logging.getLogger("lmstudio_eval.outcomes")

DEFAULT_MAX_ROUNDS = 6
MAX_SHOWN_CHARS = 300


class TimedClient(ChatClient):
    """A :class:`ChatClient` that keeps the latency of every model call (the loop's and the tools' own, such as
    the invoice extraction), so the report can give seconds per model call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latencies: list[float] = []

    async def chat(self, *args: Any, **kwargs: Any) -> ChatResponse:
        response = await super().chat(*args, **kwargs)
        self.latencies.append(response.latency_s)
        return response


def policy_kwargs(policy: str) -> tuple[dict[str, Any], str]:
    """The ``Agent`` keyword arguments for ``--policy on|off``, and what was applied.

    ``off`` passes ``policy=None`` where ``Agent`` takes a ``policy`` argument; ``on`` leaves the agent's default.
    Where ``Agent`` has no such argument, both leave it out (and say so).

    Args:
        policy: ``on`` or ``off``.
    """
    if policy not in ("on", "off"):
        raise ValueError(f"policy must be on or off, not {policy!r}")
    if "policy" not in inspect.signature(Agent).parameters:
        return {}, f"{policy} requested; this Agent has no policy argument (rules built into the loop)"
    if policy == "off":
        return {"policy": None}, "off (policy=None)"
    return {}, "on (the agent's default policy)"


@dataclass
class WordingResult:
    """One run: a task's wording, what the run did, and its verdict."""

    task_id: str
    kind: str
    family: str
    style: str
    instruction: str
    verdict: Verdict
    calls: list[dict[str, Any]]
    answer: str | None
    end: str  # the last event: result, or the error code
    call_latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["instruction"] = self.instruction[:MAX_SHOWN_CHARS]
        return data


def goals_of(task: Mapping[str, Any]) -> Sequence[Goal]:
    """The task's goals (exactly as written), or the project's default goals."""
    if not task.get("goals"):
        return DEFAULT_GOALS
    return [Goal(name=g["name"], description=g["description"]) for g in task["goals"]]


async def run_wording(client: TimedClient, task: Mapping[str, Any], wording: Mapping[str, str], *, mode: str = "auto",
                      max_rounds: int = DEFAULT_MAX_ROUNDS, max_tokens: int = 512, run_timeout: float = 600.0,
                      agent_kwargs: Mapping[str, Any] | None = None) -> WordingResult:
    """Run one wording of ``task`` through ``Agent.run`` on a fresh world and judge it.

    Args:
        client: The model server (a :class:`TimedClient`, so the calls are timed).
        task: A task of an outcome split.
        wording: One of the task's wordings (``style``, ``instruction``).
        mode: The agent's tool mode (``auto``, ``native``, ``parsed``, ``constrained``).
        max_rounds: The most model calls the loop makes.
        max_tokens: The most tokens of one reply.
        run_timeout: Seconds the whole run may take.
        agent_kwargs: Further keyword arguments for ``Agent(...)`` (e.g. ``policy``); they override the ones above.
    """
    world = World.from_state(task["state"])
    storage = CountingStorage()
    options: dict[str, Any] = {"mode": mode, "max_rounds": max_rounds, "max_tokens": max_tokens,
                               **dict(agent_kwargs or {})}  # what the caller passes wins
    agent = Agent(client=client, tools=build_tools(list(task["tools"])), goals=goals_of(task),
                  context={"world": world, "invoice_storage": storage}, **options)
    transcript: list[AgentMessage] = []
    start = len(client.latencies)
    deadline = Deadline(run_timeout)
    try:
        await agent.run(wording["instruction"], documents=task.get("documents") or None, on_message=transcript.append,
                        deadline=deadline)
    except AgentError as exc:
        if exc.code is ErrorCode.CONNECTION_FAILED:
            raise  # the server is gone: no later run can go on either
        logger.info("run of %s (%s) ended with %s", task["id"], wording["style"], exc.code.value)
    verdict = check_run(task, wording["instruction"], transcript, world, storage)
    last = transcript[-1] if transcript else None
    answer = final_answer(transcript)
    latencies = [round(s, 4) for s in client.latencies[start:]]
    return WordingResult(
        task_id=task["id"], kind=task["kind"], family=task["family"], style=wording["style"],
        instruction=wording["instruction"], verdict=verdict,
        calls=[{"tool": m.tool, "args": m.args} for m in transcript if m.type == "action"],
        answer=answer[:MAX_SHOWN_CHARS] if answer is not None else None,
        end=(last.code or last.type) if last else "none", call_latencies=latencies,
        seconds=round(sum(latencies), 3),
    )


async def run_tasks(client: TimedClient, tasks: Sequence[Mapping[str, Any]], *, mode: str = "auto",
                    max_rounds: int = DEFAULT_MAX_ROUNDS, max_tokens: int = 512, run_timeout: float = 600.0,
                    agent_kwargs: Mapping[str, Any] | None = None, styles: Sequence[str] | None = None,
                    on_result: Callable[[WordingResult], Any] | None = None) -> list[WordingResult]:
    """Every wording (or those of ``styles``) of every task, one run after the other (a local server runs one
    request at a time).

    Args:
        client: The model server (timed).
        tasks: The tasks to run.
        mode: The agent's tool mode.
        max_rounds: The most model calls of one run.
        max_tokens: The most tokens of one reply.
        run_timeout: Seconds one run may take.
        agent_kwargs: Further keyword arguments for ``Agent(...)``.
        styles: Only these wording styles (default: all five).
        on_result: Called with each run's result as it comes.
    """
    results = []
    for task in tasks:
        for wording in task["wordings"]:
            if styles and wording["style"] not in styles:
                continue
            result = await run_wording(client, task, wording, mode=mode, max_rounds=max_rounds, max_tokens=max_tokens,
                                       run_timeout=run_timeout, agent_kwargs=agent_kwargs)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results

