"""The hub's scheduler: which agent runs which task, and what happens when an attempt fails.

It owns the pending tasks. A task goes to the least loaded connected agent that has its model and every tool it
names, with a free slot; when every such agent is full it waits in a bounded queue (full: HUB_BUSY at once),
oldest first. An attempt ends when its agent answers, disconnects, sends an invalid result, or exceeds
``task_timeout``; a failed attempt is retried on another connection (never the same one again) up to
``max_attempts``, ahead of everything queued, until the caller's deadline. Delivery to agents is at least once;
the answer to the caller is exactly once: the first result for a ``task_id`` wins, the attempt still running is
cancelled, and later results are dropped.

The scheduler sends its ``task:execute`` and ``task:cancel`` frames through the function it is given (the
transport's), so it can be driven without a socket.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lmstudio_agent.bridge.protocol import (
    TaskCancelData,
    TaskCancelMessage,
    TaskEventData,
    TaskExecuteData,
    TaskExecuteMessage,
    TaskResultMessage,
    agent_code,
    encode,
    error_frame,
)
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.agent.events import RunEvent
from lmstudio_agent.agent.messages import AgentMessage

from .state import MAX_ERROR_CHARS, Agent, AgentRegistry, HubSettings, HubStats, logger


@dataclass(eq=False)
class Task:
    """One submitted task until its caller has the answer: its attempts, and the agent that holds it now."""

    task_id: str
    instruction: str
    tools: tuple[str, ...]
    model: str
    future: asyncio.Future[list[AgentMessage]]
    deadline: Deadline
    documents: dict[str, str] | None = None
    attempts: int = 0
    agent: Agent | None = None
    queued: bool = False
    tried: set[str] = field(default_factory=set)
    sent_to: set[Agent] = field(default_factory=set)  # the connections that had an attempt: never again
    failures: list[str] = field(default_factory=list)
    timed_out: bool = False
    timer: asyncio.TimerHandle | None = None
    on_event: Callable[[RunEvent], None] | None = None


class Scheduler:
    """Dispatch, retry and requeue of the hub's tasks (see the module docstring).

    Args:
        settings: The hub's settings (read when they apply, so a change takes effect on the next decision).
        agents: The registered agents to choose from.
        stats: The hub's counters.
        send: Sends a frame to an agent without waiting (a lost connection is the transport's to report).
        serving: Whether the hub is serving: once not, a failed attempt is not retried.
        remember_finished: How many finished task ids are remembered, so a late duplicate result is recognised.
    """

    def __init__(
        self,
        settings: HubSettings,
        agents: AgentRegistry,
        stats: HubStats,
        send: Callable[[Agent, str], None],
        serving: Callable[[], bool],
        remember_finished: int = 10_000,
    ) -> None:
        self.settings = settings
        self.agents = agents
        self.stats = stats
        self._send = send
        self._serving = serving
        self._remember = remember_finished
        self._tasks: dict[str, Task] = {}
        self._queue: deque[Task] = deque()
        self._finished: OrderedDict[str, None] = OrderedDict()

    @property
    def queued(self) -> int:
        return len(self._queue)

    # ---------------------------------------------------------------------------------------- submit

    async def submit(
        self,
        instruction: str,
        tools: Iterable[str] = (),
        model: str | None = None,
        deadline: Deadline | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
        *,
        documents: dict[str, str] | None = None,
    ) -> list[AgentMessage]:
        """Run a task to its answer: see :meth:`lmstudio_hub.hub.BridgeHub.submit`."""
        if not self._serving():
            raise AgentError(ErrorCode.NO_AGENT_AVAILABLE, "The bridge hub is not running")
        settings = self.settings
        names = tuple(dict.fromkeys(tools))
        model = model or settings.default_model
        deadline = deadline or Deadline(settings.default_deadline)
        if not self.agents.any_can_run(names, model):
            self.stats.rejected_no_agent += 1
            raise AgentError(
                ErrorCode.NO_AGENT_AVAILABLE,
                self._no_agent_message(names, model),
                details={"retry_after": settings.retry_after_seconds},
            )
        loop = asyncio.get_running_loop()
        task = Task(uuid.uuid4().hex, instruction, names, model, loop.create_future(), deadline,
                    documents=dict(documents) if documents else None, on_event=on_event)
        agent = self._pick(task)
        if agent is None and len(self._queue) >= settings.max_queue:
            self.stats.rejected_busy += 1
            raise AgentError(
                ErrorCode.HUB_BUSY,
                f"Every agent that can run this task is at its concurrency limit and the hub's queue is full "
                f"({settings.max_queue} waiting); retry after {settings.retry_after_seconds}s",
                details={"retry_after": settings.retry_after_seconds},
            )
        self.stats.submitted += 1
        self._tasks[task.task_id] = task
        if agent is not None:
            self._assign(task, agent)
        else:
            task.queued = True
            self._queue.append(task)
        try:
            async with asyncio.timeout(deadline.remaining()):
                return await task.future
        except TimeoutError:
            raise self._deadline_error(task) from None
        finally:
            self._finish(task)

    # ------------------------------------------------------------------------------- what agents send

    def on_result(self, agent: Agent, msg: TaskResultMessage) -> str | None:
        """A ``task:result`` from ``agent``; the returned error frame, if any, goes back to it."""
        data = msg.data
        task = self._tasks.get(data.task_id)
        if task is None and data.task_id in self._finished:
            self.stats.duplicates_dropped += 1
            logger.debug("dropped a late result for finished task %s from %s", data.task_id, agent.agent_id)
            return None
        if task is None or agent.agent_id not in task.tried:
            self.stats.protocol_errors += 1
            logger.warning("agent %s sent a result for unknown task %r", agent.agent_id, data.task_id[:64])
            return error_frame(
                ErrorCode.NOT_FOUND, f"Unknown task_id {data.task_id!r}", task_id=data.task_id, message_type=msg.type
            )
        if task.future.done():
            self.stats.duplicates_dropped += 1
            return None
        # The first result wins, even one from an earlier attempt: stop whichever attempt is still running.
        if task.agent is agent:
            self._release(task)
        elif task.agent is not None:
            self._release(task, cancel="another agent answered first")
        elif task.queued:
            task.queued = False
            self._queue.remove(task)
        if data.status == "success":
            self.stats.completed += 1
            task.future.set_result(list(data.result or []))
        else:
            self._fail(task, AgentError(agent_code(data.code), (data.error or "")[:MAX_ERROR_CHARS]))
        self.drain()
        return None

    def on_invalid_result(self, agent: Agent, task_id: str) -> None:
        """``agent`` sent a ``task:result`` for ``task_id`` that is not valid: the attempt failed, retry it."""
        task = self._tasks.get(task_id)
        if task is not None and task.agent is agent:
            self._release(task)
            self._retry(task, f"agent {agent.agent_id!r} sent an invalid result")
            self.drain()

    def on_event(self, agent: Agent, data: TaskEventData) -> None:
        """A ``task:event``: passed to the task's listener when ``agent`` holds the task (else it is stale)."""
        task = self._tasks.get(data.task_id)
        if task is not None and task.agent is agent and task.on_event is not None and not task.future.done():
            try:
                task.on_event(data.event)
            except Exception:
                logger.warning("a task's event listener raised; the task goes on", exc_info=True)

    def agent_lost(self, agent: Agent, reason: str) -> None:
        """``agent``'s connection ended (``reason``): retry every task it held elsewhere."""
        for task in list(agent.active.values()):
            self._release(task)
            self._retry(task, f"agent {agent.agent_id!r} disconnected ({reason})")

    def fail_all(self, message: str) -> None:
        """Fail every pending task with NO_AGENT_AVAILABLE (the hub is going away)."""
        for task in list(self._tasks.values()):
            self._fail(task, AgentError(ErrorCode.NO_AGENT_AVAILABLE, message))

    # -------------------------------------------------------------------------------------- dispatch

    def _pick(self, task: Task) -> Agent | None:
        """The least loaded agent that can run the task and has a free slot, preferring untried agents.

        A connection that already had an attempt never gets the task again (it timed out, dropped its result
        or sent a bad one): a retry waits for another agent, until the deadline. An agent that reconnects
        is a new connection and may take it.
        """
        best: Agent | None = None
        best_key: tuple[bool, int] | None = None
        for agent in self.agents:
            if agent.free <= 0 or agent in task.sent_to or not agent.can_run(task.tools, task.model):
                continue
            key = (agent.agent_id not in task.tried, agent.free)
            if best_key is None or key > best_key:
                best, best_key = agent, key
        return best

    def _assign(self, task: Task, agent: Agent) -> None:
        task.attempts += 1
        task.agent = agent
        task.queued = False
        task.tried.add(agent.agent_id)
        task.sent_to.add(agent)
        agent.active[task.task_id] = task
        left = task.deadline.remaining()
        timeout = self.settings.task_timeout
        # When the caller's deadline comes first, it ends the task (and cancels the attempt): no retry then.
        if left is None or timeout < left:
            task.timer = asyncio.get_running_loop().call_later(
                timeout, self._on_attempt_timeout, task, agent, task.attempts, timeout
            )
        frame = TaskExecuteMessage(
            data=TaskExecuteData(task_id=task.task_id, instruction=task.instruction, tools=list(task.tools),
                                 documents=task.documents, stream=True if task.on_event is not None else None)
        )
        self._send(agent, encode(frame))

    def _release(self, task: Task, *, cancel: str | None = None) -> None:
        """Take the task off its agent (telling the agent to stop when ``cancel`` gives a reason)."""
        agent = task.agent
        if task.timer is not None:
            task.timer.cancel()
            task.timer = None
        if agent is None:
            return
        task.agent = None
        agent.active.pop(task.task_id, None)
        if cancel is not None:
            self._send(agent, encode(TaskCancelMessage(data=TaskCancelData(task_id=task.task_id, reason=cancel))))

    def _retry(self, task: Task, reason: str, *, timed_out: bool = False) -> None:
        """A failed attempt: dispatch again (another agent first) or, when attempts are spent, fail."""
        task.failures.append(reason)
        task.timed_out = timed_out
        if task.future.done():
            return
        if task.attempts >= self.settings.max_attempts or task.deadline.expired or not self._serving():
            code = ErrorCode.UPSTREAM_TIMEOUT if timed_out else ErrorCode.UPSTREAM_ERROR
            self._fail(
                task,
                AgentError(code, f"No agent finished the task after {task.attempts} attempt(s): {'; '.join(task.failures)}"),
            )
            return
        self.stats.requeued += 1
        agent = self._pick(task)
        if agent is not None:
            self._assign(task, agent)
        else:
            task.queued = True
            self._queue.appendleft(task)  # it is older than anything queued behind it

    def drain(self) -> None:
        """Dispatch queued tasks, oldest first, while agents have free slots."""
        if not self._queue:
            return
        waiting: deque[Task] = deque()
        while self._queue:
            if not any(agent.free > 0 for agent in self.agents):
                break
            task = self._queue.popleft()
            if task.future.done():
                task.queued = False
                continue
            agent = self._pick(task)
            if agent is None:
                waiting.append(task)
            else:
                self._assign(task, agent)
        waiting.extend(self._queue)
        self._queue = waiting

    def _fail(self, task: Task, error: AgentError) -> None:
        if not task.future.done():
            self.stats.failed += 1
            task.future.set_exception(error)

    def _finish(self, task: Task) -> None:
        """The caller has its answer (or gave up): forget the task, free its slot, remember its id."""
        self._tasks.pop(task.task_id, None)
        if task.queued:
            task.queued = False
            try:
                self._queue.remove(task)
            except ValueError:
                pass
        if task.agent is not None:
            self._release(task, cancel="the caller stopped waiting")
            self.drain()
        elif task.timer is not None:
            task.timer.cancel()
        self._finished[task.task_id] = None
        while len(self._finished) > self._remember:
            self._finished.popitem(last=False)

    def _on_attempt_timeout(self, task: Task, agent: Agent, attempt: int, seconds: float) -> None:
        if task.future.done() or task.agent is not agent or task.attempts != attempt:
            return
        task.timer = None
        logger.warning("agent %s gave no result for task %s within %.3gs; requeueing", agent.agent_id, task.task_id, seconds)
        self._release(task, cancel=f"no result within {seconds:g}s")
        self._retry(task, f"agent {agent.agent_id!r} gave no result within {seconds:g}s", timed_out=True)
        self.drain()

    # ---------------------------------------------------------------------------------------- errors

    def _deadline_error(self, task: Task) -> AgentError:
        seconds = task.deadline.seconds or 0.0
        retry_after = self.settings.retry_after_seconds
        if task.agent is not None:
            return AgentError(
                ErrorCode.UPSTREAM_TIMEOUT,
                f"Agent {task.agent.agent_id!r} did not finish the task within the deadline of {seconds:g}s",
            )
        if task.failures:
            code = ErrorCode.UPSTREAM_TIMEOUT if task.timed_out else ErrorCode.UPSTREAM_ERROR
            return AgentError(
                code,
                f"No other agent was free to retry the task within the deadline of {seconds:g}s, after "
                f"{task.attempts} attempt(s): {'; '.join(task.failures)}",
            )
        if self.agents.any_can_run(task.tools, task.model):
            self.stats.rejected_busy += 1
            return AgentError(
                ErrorCode.HUB_BUSY,
                f"Every agent that can run this task stayed at its concurrency limit for {seconds:g}s",
                details={"retry_after": retry_after},
            )
        self.stats.rejected_no_agent += 1
        why = f" (after: {'; '.join(task.failures)})" if task.failures else ""
        return AgentError(
            ErrorCode.NO_AGENT_AVAILABLE,
            f"{self._no_agent_message(task.tools, task.model)} within the deadline of {seconds:g}s{why}",
            details={"retry_after": retry_after},
        )

    def _no_agent_message(self, tools: tuple[str, ...], model: str) -> str:
        wants = f"model {model!r}" if model else "any model"
        if tools:
            wants += f" and tools {', '.join(tools)}"
        return f"No connected agent has {wants} ({len(self.agents)} agent(s) connected)"
