"""The one request pipeline: a validated :class:`~lmstudio_agent.endpoint.contract.ExecuteRequest` from its plan to its
answer, the same for a JSON answer and a stream.

- :func:`plan_execute`: the tools (allow-list applied, selected once), the model, the cache rule and key;
- :class:`Execution` (built by :func:`start_execution`, which also reads the cache): the run's events, replayed
  from the cache or read from the backend under the deadline; at their end the outcome is decided once
  (NO_ANSWER for a run without an answer, never cached) and an answered, cacheable run is written once, in
  the cache's one codec (:func:`lmstudio_agent.endpoint.cache.encode_entry`);
- :func:`execute`: the JSON answer, the events collected; :mod:`.streaming` encodes the same events as a stream.

The router (:func:`lmstudio_agent.endpoint.router.route`) reads and validates the body (:mod:`.contract`), then hands
the request here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from .cache import CacheStore, cache_key, is_cacheable, read_events, write_events
from .contract import (Body, ExecuteBackend, ExecuteOptions, ExecuteRequest, ExecuteResponse, Headers, HttpResponse,
                       ToolSelection, error_response, header_map, parse_execute_request)
from ..deadline import Deadline
from ..errors import AgentError, ErrorCode
from ..agent.events import RunEvent, events_from_transcript, transcript_of
from ..agent.messages import AgentMessage, answered

logger = logging.getLogger("lmstudio_agent.endpoint.contract")  # the contract's log name, as before this module

@dataclass(frozen=True)
class ExecutePlan:
    """What the contract decides about a request before its run, the same for a JSON answer and a stream:
    the tools (allow-list applied), the model, whether the answer may be cached and under which key."""

    selection: ToolSelection
    model: str
    use_cache: bool
    cache_key: str


async def prepare(backend: ExecuteBackend) -> None:
    """Let the backend connect what it needs before a run (MCP servers: once, again after one went away),
    once the request is authenticated and valid. A backend without ``start`` needs nothing.

    Args:
        backend: The backend about to run the request.
    """
    start = getattr(backend, "start", None)
    if start is not None:
        await start()


def plan_execute(request: ExecuteRequest, backend: ExecuteBackend, *, headers: Mapping[str, str] | None = None,
                 cache: CacheStore | None = None) -> ExecutePlan:
    """The tool selection (UNKNOWN_TOOL is raised here), the model, the cache rule and the cache key: the key
    names the deployment's scope, the owner of the tools (an agent identity on the hub), the instruction, the
    tools, the model and the documents.

    Args:
        request: The validated request.
        backend: The backend that will run it (its allow-list, default model and cache scope).
        headers: The request headers; ``Cache-Control: no-cache`` (or ``no-store``) skips the cache.
        cache: The cache store (None: the answer is never cached).
    """
    selection = backend.select_tools(request.tools)
    model = request.model or backend.default_model
    use_cache = cache is not None and is_cacheable(has_side_effects=selection.has_side_effects, headers=headers or {})
    scope = backend.cache_scope() + (f"|owner:{selection.owner}" if selection.owner else "")
    key = cache_key(instruction=request.instruction, tools=list(selection.names), model=model, scope=scope,
                    documents=request.documents)
    return ExecutePlan(selection, model, use_cache, key)


def no_answer_error(transcript: list[AgentMessage]) -> AgentError | None:
    """NO_ANSWER (with the transcript) for a run that ended without an answer, else None. Such a run is never
    cached: the same request may well succeed on another try.

    Args:
        transcript: The run's messages.
    """
    if answered(transcript):
        return None
    last = transcript[-1] if transcript else None
    reason = last.content if last is not None and last.type == "error" and last.content else \
        "The run ended without an answer."
    return AgentError(ErrorCode.NO_ANSWER, reason, details={"transcript": transcript})


async def backend_events(backend: ExecuteBackend, instruction: str, tools: ToolSelection, model: str,
                         deadline: Deadline, documents: dict[str, str] | None = None, *,
                         live: bool = True) -> AsyncIterator[RunEvent]:
    """The backend's live events where it streams (and ``live``), else its transcript's events once the run
    is over.

    Args:
        backend: What runs the agent (one with a ``stream`` method streams live).
        instruction: What the agent should do.
        tools: The selected tools.
        model: The model to run on.
        deadline: The run's deadline.
        documents: The request's long inputs, name -> text (passed on only when there are some).
        live: Whether the events are read as they happen (a stream); False for an answer sent whole, which
            takes the backend's ``run`` (the hub retries a lost task there on another agent).
    """
    extra = {"documents": documents} if documents else {}
    stream = getattr(backend, "stream", None) if live else None
    if stream is None:
        for event in events_from_transcript(await backend.run(instruction, tools, model, deadline, **extra)):
            yield event
        return
    async for event in stream(instruction, tools, model, deadline, **extra):
        yield event


class Execution:
    """One execute request from its plan to its end: the pipeline a JSON answer and a stream share.

    :meth:`events` yields the run's events, replayed from the cache on a hit, else from the backend under the
    deadline (with a backstop for a backend that overruns it). At their end the outcome is decided once:
    :attr:`error` is the run's failure (NO_ANSWER for a run that ended without an answer), and only an
    answered, cacheable run is written to the cache, once, in the cache's codec. Build one with
    :func:`start_execution`.

    Args:
        request: The validated request.
        backend: What runs the agent.
        plan: The request's plan (:func:`plan_execute`).
        options: The deployment's limits.
        cache: The cache store (None: no cache).
        hit: The events a cache hit replays (None: a miss).
        live: Whether the backend's events are read as they happen (a stream).
    """

    def __init__(self, request: ExecuteRequest, backend: ExecuteBackend, plan: ExecutePlan, options: ExecuteOptions,
                 cache: CacheStore | None = None, hit: list[RunEvent] | None = None, *, live: bool = True) -> None:
        """Keep what the run needs; nothing runs until :meth:`events` is iterated."""
        self.request = request
        self.backend = backend
        self.plan = plan
        self.options = options
        self.cache = cache
        self.hit = hit
        self.live = live
        self.recorded: list[RunEvent] = []
        self.error: AgentError | None = None

    @property
    def cached(self) -> bool:
        """Whether the answer is replayed from the cache."""
        return self.hit is not None

    def transcript(self) -> list[AgentMessage]:
        """The run's messages so far (all of them once :meth:`events` is exhausted)."""
        return transcript_of(self.hit if self.hit is not None else self.recorded)

    async def events(self) -> AsyncIterator[RunEvent]:
        """The run's events; never raises for the run's failure (it is :attr:`error` once they end)."""
        if self.hit is not None:
            for event in self.hit:
                yield event
            return
        options, plan, request = self.options, self.plan, self.request
        deadline = Deadline(options.deadline_seconds)
        try:
            # The backend honours the deadline call by call; this is the backstop for anything that does not.
            async with asyncio.timeout(options.deadline_seconds + 1.0):
                async for event in backend_events(self.backend, request.instruction, plan.selection, plan.model,
                                                  deadline, request.documents, live=self.live):
                    self.recorded.append(event)
                    yield event
        except TimeoutError:
            self.error = AgentError(ErrorCode.UPSTREAM_TIMEOUT,
                                    f"The model did not finish within {options.deadline_seconds:g}s")
        except AgentError as exc:
            self.error = exc
        except Exception:
            logger.exception("unexpected error in an execute")
            self.error = AgentError(ErrorCode.INTERNAL_ERROR, "Internal error while running the agent")
        if self.error is None:
            self.error = no_answer_error(transcript_of(self.recorded))  # never cached: another try may answer
        if self.error is None and plan.use_cache:
            await write_events(self.cache, plan.cache_key, self.recorded, options.cache_ttl_seconds)


async def start_execution(request: ExecuteRequest, backend: ExecuteBackend, *, headers: Mapping[str, str] | None = None,
                          cache: CacheStore | None = None, options: ExecuteOptions | None = None,
                          live: bool = True) -> Execution:
    """Everything before a run, the same for a JSON answer and a stream: the backend prepared, the plan (the
    tools: UNKNOWN_TOOL is raised here) and the cache read. Raises AgentError for a request refused before
    its run.

    Args:
        request: The validated request.
        backend: What runs the agent.
        headers: The request headers; ``Cache-Control: no-cache`` (or ``no-store``) skips the cache.
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`ExecuteOptions`'s).
        live: Whether the backend's events are read as they happen (a stream) or the run is answered whole.
    """
    options = options or ExecuteOptions()
    await prepare(backend)
    plan = plan_execute(request, backend, headers=headers, cache=cache)
    hit = await read_events(cache, plan.cache_key) if plan.use_cache else None
    return Execution(request, backend, plan, options, cache, hit, live=live)


async def execute(
    request: ExecuteRequest,
    backend: ExecuteBackend,
    *,
    headers: Mapping[str, str] | None = None,
    cache: CacheStore | None = None,
    options: ExecuteOptions | None = None,
) -> ExecuteResponse:
    """Run a validated request through the tool allow-list, the cache and the backend, under the deadline:
    the :class:`Execution`'s events collected.

    Raises AgentError for every failure (NO_ANSWER with the transcript for a run that ended without an answer).

    Args:
        request: The validated request.
        backend: What runs the agent.
        headers: The request headers; ``Cache-Control: no-cache`` (or ``no-store``) skips the cache.
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`ExecuteOptions`'s).
    """
    run = await start_execution(request, backend, headers=headers, cache=cache, options=options, live=False)
    async for _ in run.events():
        pass
    if run.error is not None:
        raise run.error
    return ExecuteResponse(result=run.transcript(), cached=run.cached)


def execute_error(exc: AgentError) -> HttpResponse:
    """The contract's answer for an execute that failed (NO_ANSWER carries the transcript).

    Args:
        exc: What it failed with.
    """
    if exc.http_status >= 500:
        logger.warning("execute failed: %s", exc)
    transcript = exc.details.get("transcript") if exc.code is ErrorCode.NO_ANSWER else None
    return error_response(exc.code, exc.message, result=transcript)


async def execute_response(request: ExecuteRequest, headers: Mapping[str, str], backend: ExecuteBackend, *,
                           cache: CacheStore | None = None, options: ExecuteOptions | None = None) -> HttpResponse:
    """A validated request's JSON answer: every outcome is an :class:`HttpResponse`, never an exception.

    Args:
        request: The validated request.
        headers: The request headers (lower-case names).
        backend: What runs the agent.
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`ExecuteOptions`'s).
    """
    try:
        response = await execute(request, backend, headers=headers, cache=cache, options=options)
    except AgentError as exc:
        return execute_error(exc)
    except Exception:
        logger.exception("unexpected error in execute")
        return error_response(ErrorCode.INTERNAL_ERROR, "Internal error while running the agent")
    return HttpResponse(200, response.model_dump(mode="json", exclude_none=True), {"Cache-Control": "no-store"})


async def handle_execute(
    body: Body,
    headers: Headers,
    backend: ExecuteBackend,
    *,
    cache: CacheStore | None = None,
    options: ExecuteOptions | None = None,
) -> HttpResponse:
    """``POST /execute`` after auth: every outcome is an :class:`HttpResponse`, never an exception.

    Args:
        body: The raw request body.
        headers: The request headers: a mapping or (name, value) pairs.
        backend: What runs the agent.
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`ExecuteOptions`'s).
    """
    options = options or ExecuteOptions()
    try:
        request = parse_execute_request(body, options.max_body_bytes)
    except AgentError as exc:
        return execute_error(exc)
    return await execute_response(request, header_map(headers), backend, cache=cache, options=options)
