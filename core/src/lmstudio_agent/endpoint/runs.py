"""Async runs: ``POST /runs`` answers ``202`` at once and the run goes on past the request.

One run-state model (:class:`RunState`), one store protocol (:class:`RunStore`), both in :mod:`.run_state` and
importable from here, and one service (:class:`RunService`) that every adapter uses; the adapters differ in the
store and in how a queued run gets executed (the ``launcher``):

- the hub: :class:`MemoryRunStore` and an asyncio task in its own process;
- the Lambda: DynamoDB (lambda/dynamo_runs.py) and an asynchronous invoke of the runner function (lambda/app.py);
- the Worker: a Durable Object per run, whose alarm runs it (cloudflare/src/do_runs.py, entry.py).

Routes (all keyed; a run is visible only to the key that created it, anyone else gets 404):

- ``POST /runs`` (the ``/execute`` body) -> ``202 {"run_id", "status": "queued"}``;
- ``GET /runs/{id}`` -> the status (queued, running, succeeded, failed, cancelled), the events so far, and at
  the end ``result`` in ``/execute``'s shape;
- ``GET /runs/{id}/events`` -> the events as the UI message stream (:mod:`.streaming`), from the start or
  after ``Last-Event-ID``, until the run ends;
- ``DELETE /runs/{id}`` -> cancels a queued or running run.

Runs expire ``ttl_seconds`` after they were created.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import time
import uuid
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from .contract import (
    Body,
    ExecuteBackend,
    ExecuteOptions,
    HttpResponse,
    error_response,
    parse_execute_request,
    presented_key,
)
from ..deadline import Deadline
from ..errors import AgentError, ErrorCode
from ..agent.events import RunEvent, transcript_of
from .pipeline import backend_events, no_answer_error, prepare
from .run_state import TERMINAL as TERMINAL
from .run_state import MemoryRunStore as MemoryRunStore
from .run_state import RunCreated as RunCreated
from .run_state import RunState as RunState
from .run_state import RunStatus as RunStatus
from .run_state import RunStore as RunStore
from .run_state import RunView as RunView
from .run_state import run_state_json as run_state_json
from .streaming import DONE, StreamResponse, UIMessageStream, finish_metadata, sse, with_heartbeat

logger = logging.getLogger("lmstudio_agent.endpoint.runs")

DEFAULT_RUN_TTL_SECONDS = 3600
DEFAULT_RUN_DEADLINE_SECONDS = 600.0
RUN_ID = re.compile(r"^run_[0-9a-f]{32}$")
CANCELLED_MESSAGE = "The run was cancelled"
RECONNECT = b"retry: 1000\n\n"


def owner_of(headers: Mapping[str, str]) -> str:
    """The owner tag of a request's key (a digest: the store never holds a key).

    Args:
        headers: The request's HTTP headers (its API key is read from them).
    """
    key = presented_key(headers) or ""
    return hashlib.sha256(("lmstudio-agent-run-owner:" + key).encode()).hexdigest()[:32]


def execute_body(transcript_events: list[RunEvent], error: AgentError | None) -> dict[str, Any]:
    """``/execute``'s answer for a finished run.

    Args:
        transcript_events: The run's events.
        error: The error the run ended with (None: it finished).
    """
    if error is not None:
        return {"success": False, "error": error.message, "code": error.code.value}
    return {"success": True, "result": [m.to_dict() for m in transcript_of(transcript_events)], "cached": False}


Launcher = Callable[[str], Awaitable[None]]


class RunService:
    """The runs routes over a store and a backend.

    Args:
        store: where runs live.
        backend: what runs them (the same backend ``/execute`` uses).
        options: the execute limits (body size); the run's own deadline is ``run_deadline_seconds``.
        launcher: starts a queued run somewhere (an async invoke, a queue); None runs it in this process as an
            asyncio task.
        ttl_seconds: how long a run stays readable after it was created.
        run_deadline_seconds: the deadline of one run (it is not bound by a request's timeout).
        poll_seconds: how often ``GET /runs/{id}/events`` looks at the store for new events.
        flush_seconds: how often a running run writes its new text deltas to the store (messages and steps
            are written at once).
        heartbeat_seconds: the keep-alive comment period of the events stream.
        follow_events: False where the platform cannot hold a response open (the Lambda): the events route
            then answers the events there are now and ends, with ``retry:`` so an EventSource reconnects with
            its ``Last-Event-ID``; ``data: [DONE]`` comes only once the run is over.
        new_run_id: makes the id of a new run (the Worker's Durable Object is addressed by the id it chose).
        clock: the wall clock (tests move it).
    """

    def __init__(
        self,
        store: RunStore,
        backend: ExecuteBackend,
        *,
        options: ExecuteOptions | None = None,
        launcher: Launcher | None = None,
        ttl_seconds: int = DEFAULT_RUN_TTL_SECONDS,
        run_deadline_seconds: float = DEFAULT_RUN_DEADLINE_SECONDS,
        poll_seconds: float = 0.2,
        flush_seconds: float = 0.5,
        heartbeat_seconds: float = 15.0,
        follow_events: bool = True,
        new_run_id: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Set up the routes; no run starts until one is created."""
        self.store = store
        self.backend = backend
        self.options = options or ExecuteOptions()
        self.launcher = launcher
        self.ttl_seconds = ttl_seconds
        self.run_deadline_seconds = run_deadline_seconds
        self.poll_seconds = poll_seconds
        self.flush_seconds = flush_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.follow_events = follow_events
        self.new_run_id = new_run_id or (lambda: f"run_{uuid.uuid4().hex}")
        self.clock = clock
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    # ------------------------------------------------------------------------------------------ routing

    async def handle(self, method: str, path: str, headers: Mapping[str, str], body: Body) -> HttpResponse | StreamResponse:
        """One authorised request under ``/runs``.

        Args:
            method: The HTTP method.
            path: The request path (``/runs``, ``/runs/{id}``, ``/runs/{id}/events``...).
            headers: The request's HTTP headers.
            body: The request body.
        """
        parts = [p for p in path.strip("/").split("/") if p]
        owner = owner_of(headers)
        try:
            if parts == ["runs"]:
                if method != "POST":
                    return error_response(ErrorCode.METHOD_NOT_ALLOWED, f"{method} is not allowed on /runs", {"Allow": "POST"})
                return await self.create(body, owner)
            if len(parts) == 2:
                if method in ("GET", "HEAD"):
                    return await self.view(parts[1], owner)
                if method == "DELETE":
                    return await self.cancel(parts[1], owner)
                return error_response(ErrorCode.METHOD_NOT_ALLOWED, f"{method} is not allowed on /runs/{{id}}",
                                      {"Allow": "GET, DELETE"})
            if len(parts) == 3 and parts[2] == "events":
                if method not in ("GET", "HEAD"):
                    return error_response(ErrorCode.METHOD_NOT_ALLOWED, f"{method} is not allowed on /runs/{{id}}/events",
                                          {"Allow": "GET"})
                return await self.events(parts[1], owner, headers)
            return error_response(ErrorCode.NOT_FOUND, f"No route for {path}")
        except AgentError as exc:
            return error_response(exc.code, exc.message)
        except Exception:
            logger.exception("unexpected error in %s %s", method, path)
            return error_response(ErrorCode.INTERNAL_ERROR, "Internal error in the runs API")

    async def _owned(self, run_id: str, owner: str) -> RunState:
        state = await self.store.get(run_id) if RUN_ID.match(run_id) else None
        if state is None or state.owner != owner:
            raise AgentError(ErrorCode.NOT_FOUND, f"No run {run_id[:64]!r} (it may have expired)")
        return state

    # ------------------------------------------------------------------------------------------- routes

    async def create(self, body: Body, owner: str) -> HttpResponse:
        """``POST /runs``: check the request, store it as a queued run and launch it; 202 with the run's id.

        Args:
            body: The request body (as ``/execute`` takes it).
            owner: The owner tag of the caller's key (:func:`owner_of`).
        """
        request = parse_execute_request(body, self.options.max_body_bytes)
        await prepare(self.backend)
        self.backend.select_tools(request.tools)  # refuse unknown tools now, not in the run
        now = self.clock()
        run_id = self.new_run_id()
        if not RUN_ID.match(run_id):
            raise AgentError(ErrorCode.INTERNAL_ERROR, "Invalid run id")
        state = RunState(run_id=run_id, owner=owner, request=request, created_at=now,
                         updated_at=now, expires_at=now + self.ttl_seconds)
        await self.store.put(state)
        try:
            await self.launch(state.run_id)
        except Exception:
            logger.exception("run %s could not be started", state.run_id)
            state.status = "failed"
            state.error_code = ErrorCode.INTERNAL_ERROR.value
            state.result = {"success": False, "error": "The run could not be started", "code": state.error_code}
            await self.store.put(state)
            raise AgentError(ErrorCode.INTERNAL_ERROR, "The run could not be started") from None
        logger.info("run %s queued", state.run_id)
        return HttpResponse(202, RunCreated(run_id=state.run_id).model_dump(),
                            {"Location": f"/runs/{state.run_id}", "Cache-Control": "no-store"})

    async def view(self, run_id: str, owner: str) -> HttpResponse:
        """``GET /runs/{id}``: the run's status, events so far and (once over) its result.

        Args:
            run_id: The run's id.
            owner: The owner tag of the caller's key; another owner's run is answered as not found.
        """
        state = await self._owned(run_id, owner)
        return HttpResponse(200, state.public(), {"Cache-Control": "no-store"})

    async def cancel(self, run_id: str, owner: str) -> HttpResponse:
        """``DELETE /runs/{id}``: mark a run that is not over as cancelled (and stop its task here, if it runs here).

        Args:
            run_id: The run's id.
            owner: The owner tag of the caller's key.
        """
        state = await self._owned(run_id, owner)
        for _ in range(3):  # the run may move on between the read and the write: read again
            if state.status in TERMINAL:
                break
            before = state.status
            state.status = "cancelled"
            state.updated_at = self.clock()
            if await self.store.put(state, expect=before):
                break
            state = await self._owned(run_id, owner)
        if state.status == "cancelled":
            task = self._tasks.get(run_id)
            if task is not None and not task.done():
                task.cancel()
            logger.info("run %s cancelled", run_id)
        return HttpResponse(200, {"run_id": run_id, "status": state.status}, {"Cache-Control": "no-store"})

    async def events(self, run_id: str, owner: str, headers: Mapping[str, str]) -> StreamResponse:
        """``GET /runs/{id}/events``: the run's events as server-sent events, from after ``Last-Event-ID``.

        Args:
            run_id: The run's id.
            owner: The owner tag of the caller's key.
            headers: The request's HTTP headers (``Last-Event-ID``).
        """
        await self._owned(run_id, owner)
        after = _last_event_id(headers)
        if not self.follow_events:
            return StreamResponse(self._follow(run_id, after))
        return StreamResponse(with_heartbeat(self._follow(run_id, after), self.heartbeat_seconds))

    async def _follow(self, run_id: str, after: int) -> AsyncIterator[bytes]:
        """The run's chunks numbered from 0 (the SSE ``id``), skipping those up to ``after``, until it ends."""
        encoder = UIMessageStream(message_id=f"msg-{run_id}")
        number = -1

        def out(chunks: list[dict[str, Any]]) -> list[bytes]:
            nonlocal number
            frames = []
            for chunk in chunks:
                number += 1
                if number > after:
                    frames.append(sse(chunk, number))
            return frames

        for frame in out(encoder.start()):
            yield frame
        seen = 0
        while True:
            state = await self.store.get(run_id)
            if state is None:  # expired while followed
                for frame in out(encoder.fail(ErrorCode.NOT_FOUND.value, "The run expired")):
                    yield frame
                break
            for event in state.events[seen:]:
                for frame in out(encoder.feed(event)):
                    yield frame
            seen = len(state.events)
            if state.status in TERMINAL:
                if state.status == "failed":
                    message = (state.result or {}).get("error", "The run failed")
                    for frame in out(encoder.fail(state.error_code or ErrorCode.INTERNAL_ERROR.value, message)):
                        yield frame
                    metadata = {"success": False, "code": state.error_code, "status": state.status}
                elif state.status == "cancelled":
                    for frame in out(encoder.fail("CANCELLED", CANCELLED_MESSAGE)):
                        yield frame
                    metadata = {"success": False, "status": state.status}
                else:
                    metadata = {**finish_metadata(None), "status": state.status}
                for frame in out(encoder.finish(metadata)):
                    yield frame
                break
            if not self.follow_events:
                yield RECONNECT  # not over yet: the client asks again from its Last-Event-ID
                return
            await asyncio.sleep(self.poll_seconds)
        yield DONE

    # ------------------------------------------------------------------------------------------ running

    async def launch(self, run_id: str) -> None:
        """Start a queued run: the launcher's way, or an asyncio task here.

        Args:
            run_id: The queued run's id.
        """
        if self.launcher is not None:
            await self.launcher(run_id)
            return
        task = asyncio.ensure_future(self.execute(run_id))
        self._tasks[run_id] = task
        task.add_done_callback(functools.partial(self._forget_task, run_id))

    def _forget_task(self, run_id: str, _task: asyncio.Task[Any]) -> None:
        self._tasks.pop(run_id, None)

    async def execute(self, run_id: str, *, deadline_seconds: float | None = None) -> RunState | None:
        """Run a queued run to its end, writing its events to the store as they come. A run that is not
        queued (already taken by another delivery, cancelled, expired) is left alone. ``deadline_seconds``
        cuts the run's deadline (the Lambda passes what its invocation has left).

        Args:
            run_id: The run's id.
            deadline_seconds: An upper bound on the run's deadline, in seconds (None: the service's own).
        """
        state = await self.store.get(run_id)
        if state is None or state.status != "queued":
            return state
        state.status = "running"
        state.updated_at = self.clock()
        if not await self.store.put(state, expect="queued"):  # another delivery took it, or it was cancelled
            return await self.store.get(run_id)
        seconds = min(self.run_deadline_seconds, deadline_seconds or self.run_deadline_seconds)
        deadline = Deadline(seconds)
        request = state.request
        error: AgentError | None = None
        last_flush = time.monotonic()
        try:
            await prepare(self.backend)
            selection = self.backend.select_tools(request.tools)
            model = request.model or self.backend.default_model
            async with asyncio.timeout(seconds + 1.0):
                async for event in backend_events(self.backend, request.instruction, selection, model, deadline,
                                                  request.documents):
                    state.events.append(event)
                    if event.type != "text-delta" or time.monotonic() - last_flush >= self.flush_seconds:
                        last_flush = time.monotonic()
                        state.updated_at = self.clock()
                        if not await self.store.put(state, expect="running"):  # cancelled (or expired)
                            return await self.store.get(run_id)
        except asyncio.CancelledError:
            current = await self.store.get(run_id)
            if current is not None and current.status == "running":
                current.status = "cancelled"
                current.updated_at = self.clock()
                await self.store.put(current, expect="running")
            raise
        except TimeoutError:
            error = AgentError(ErrorCode.UPSTREAM_TIMEOUT, f"The run did not finish within {seconds:g}s")
        except AgentError as exc:
            error = exc
        except Exception:
            logger.exception("run %s failed unexpectedly", run_id)
            error = AgentError(ErrorCode.INTERNAL_ERROR, "Internal error while running the agent")
        if error is None:
            error = no_answer_error(transcript_of(state.events))  # the same outcome as /execute's
        if error is not None and state.events and state.events[-1].type == "message":
            last = state.events[-1].message
            if last is not None and last.type == "error" and not last.tool and last.content == error.message:
                state.events.pop()  # the loop's record of the failure: the result says it
        state.status = "failed" if error is not None else "succeeded"
        state.error_code = error.code.value if error is not None else None
        state.result = execute_body(state.events, error)
        state.updated_at = self.clock()
        if not await self.store.put(state, expect="running"):  # cancelled while it finished
            return await self.store.get(run_id)
        logger.info("run %s %s", run_id, state.status)
        return state

    async def aclose(self) -> None:
        """Cancel the runs this process is executing (on shutdown)."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def new_run_id() -> str:
    """A fresh run id (``run_`` and 32 hex digits)."""
    return f"run_{uuid.uuid4().hex}"


def run_id_of(path: str) -> str | None:
    """The run id in a ``/runs/{id}...`` path, if it is one.

    Args:
        path: A request path.
    """
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) >= 2 and parts[0] == "runs" and RUN_ID.match(parts[1]):
        return parts[1]
    return None


def _last_event_id(headers: Mapping[str, str]) -> int:
    """The ``Last-Event-ID`` a reconnecting client sends (-1: none): a chunk number; anything else is a 400."""
    value = next((v for k, v in headers.items() if k.lower() == "last-event-id"), None)
    if value is None:
        return -1
    if not (value.isascii() and value.isdigit() and len(value) <= 12):
        raise AgentError(ErrorCode.INVALID_REQUEST, "Last-Event-ID must be the number of an event of this run")
    return int(value)
