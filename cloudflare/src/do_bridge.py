"""The bridge hub on Workers: one Durable Object per agent (``AgentObject``, bound as ``AGENTS``) and one
directory object (``DirectoryObject``, bound as ``DIRECTORY``).

Why an object per agent: the agent's WebSocket must end somewhere that lives as long as the connection, and
a Durable Object accepted with the WebSocket Hibernation API does, at no cost while idle: between events the
runtime may evict the object from memory and keep the socket open. So nothing the object needs later is kept
in memory only: the connection's identity and registration live in the socket's attachment
(``serializeAttachment``), and each event reads them back from ``ctx.getWebSockets()``. Heartbeat frames are
answered by the runtime itself (``setWebSocketAutoResponse``) without waking the object.

Why a directory object and not KV: ``/execute`` must find the agents online *now*. KV is eventually
consistent (a write may take 60 s to be seen elsewhere), takes one write a second per key and has a 60 s
minimum TTL, so a departed agent would stay listed and a new one stay unseen. One object's storage is
strongly consistent and serialises its events, so a register, a close and a lookup are ordered. It is one
object for the deployment: each lookup is one small read, and it is written only when an agent connects
or leaves (an object serves on the order of a thousand requests a second).

A task: the Worker's ``/execute`` (core's contract, with :class:`WorkerRelay` under core's
``RelayBackend``) asks the directory for the agents that offer the tools and posts the task to one agent's
object; the object sends it down the socket and answers with the ``task:result``, with UPSTREAM_TIMEOUT
when none comes in time, or with "lost" when the socket closes first, and the backend gives the task to
another agent. The protocol, the identity rules and the error codes are core's (``lmstudio_agent.bridge``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from workers import DurableObject, Response

from js_streams import to_stream_response

from lmstudio_agent.bridge.identities import AgentIdentity, Identities, IdentityError, parse_identities
from lmstudio_agent.bridge.protocol import RegisterData, TaskCancelData, TaskCancelMessage, TaskExecuteData, TaskResultData, encode
from lmstudio_agent.bridge.relay import (
    BUSY_CODE,
    HEARTBEAT_ACK_FRAME,
    HEARTBEAT_FRAME,
    DirectoryEntry,
    already_connected,
    check_lost,
    lost_result,
    on_agent_frame,
    parse_relay_line,
    registration_success,
    relay_line,
    task_frame,
    timeout_result,
)
from lmstudio_agent.endpoint.contract import presented_key
from lmstudio_agent.errors import AgentError
from lmstudio_agent.agent.events import RunEvent
from lmstudio_agent.endpoint.streaming import StreamResponse

logger = logging.getLogger("lmstudio_agent.worker.bridge")

AGENTS_SECRET = "BRIDGE_AGENTS"  # `wrangler secret put BRIDGE_AGENTS`: one "agent_id: token tools" a line
AGENTS_BINDING = "AGENTS"
DIRECTORY_BINDING = "DIRECTORY"
DIRECTORY_NAME = "directory"
DIRECTORY_KEY = "agents"
POLICY_VIOLATION = 1008
INTERNAL_URL = "https://bridge.internal"
# Messages an object receives are capped at 1 MiB on Workers: the same as the protocol's frame limit.
MAX_MESSAGE_BYTES = 1024 * 1024


def identities_of(env: Any) -> Identities | None:
    """The agents this Worker admits (the ``BRIDGE_AGENTS`` secret), None when the bridge is not configured.

    Args:
        env: The Worker's env.

    Raises:
        IdentityError: The secret is malformed (its message names the entry, never a token).
    """
    text = getattr(env, AGENTS_SECRET, None)
    if not isinstance(text, str) or not text.strip():
        return None
    return Identities(tuple(parse_identities(text, source=AGENTS_SECRET)))


def bridge_enabled(env: Any) -> bool:
    """Whether this Worker is a bridge hub: the secret and the agents' namespace are both there."""
    return getattr(env, AGENTS_BINDING, None) is not None and isinstance(getattr(env, AGENTS_SECRET, None), str)


def authenticate(headers: Any, env: Any) -> AgentIdentity | None:
    """The identity of an agent's handshake (its ``Authorization: Bearer`` token), or None.

    Args:
        headers: The request's headers, as (name, value) pairs.
        env: The Worker's env.
    """
    try:
        key = presented_key(headers)
        identities = identities_of(env)
    except (AgentError, IdentityError):
        return None
    if not key or identities is None:
        return None
    return identities.authenticate(key)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, headers={"Content-Type": "application/json"})


# ---------------------------------------------------------------------------------------- the agent


class AgentObject(DurableObject):
    """One agent's connection, named by its ``agent_id``: the upgrade (``fetch`` with ``Upgrade: websocket``)
    and the tasks the Worker posts to ``/task``. Everything it knows between events is in its sockets'
    attachments; the only in-memory state is the tasks waiting for an answer, and an object waiting on a
    ``fetch`` is never evicted."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.waiting: dict[str, asyncio.Future[TaskResultData]] = {}
        self.events: dict[str, asyncio.Queue[RunEvent]] = {}  # the streamed tasks' events, as they come
        from js import WebSocketRequestResponsePair

        # The agent's text heartbeat is answered by the runtime, without waking (or billing) the object.
        ctx.setWebSocketAutoResponse(WebSocketRequestResponsePair.new(HEARTBEAT_FRAME, HEARTBEAT_ACK_FRAME))

    async def fetch(self, request: Any) -> Response:
        path = urlsplit(str(request.url)).path
        if (request.headers.get("upgrade") or "").lower() == "websocket":
            return self._accept(request)
        if path == "/task":
            body = await request.text()
            if json.loads(body).get("stream"):
                return self._streamed_task(body)
            return _json(json.loads(await self._task(body)))
        return _json({"success": False, "error": "Not found", "code": "NOT_FOUND"}, 404)

    # ------------------------------------------------------------------------------------ connection

    def _accept(self, request: Any) -> Response:
        from js import Object, WebSocketPair

        identity = authenticate(list(request.headers.items()), self.env)
        if identity is None or identity.agent_id is None:  # the Worker checked it; the secret may have changed
            return _json({"success": False, "error": "Invalid token", "code": "FORBIDDEN"}, 403)
        client, server = Object.values(WebSocketPair.new())
        self.ctx.acceptWebSocket(server)
        server.serializeAttachment(json.dumps({
            "connection": uuid.uuid4().hex,
            "identity": identity.agent_id,
            "allowed": None if identity.tools is None else sorted(identity.tools),
            "registered": None,
        }))
        return Response(None, status=101, web_socket=client)

    @staticmethod
    def _attachment(ws: Any) -> dict[str, Any]:
        raw = ws.deserializeAttachment()
        return json.loads(raw) if isinstance(raw, str) else {}

    def _registered(self, exclude: Any = None) -> tuple[Any, dict[str, Any]] | None:
        """The socket registered as this object's agent (rebuilt from getWebSockets after hibernation)."""
        for ws in self.ctx.getWebSockets():
            if ws is exclude:
                continue
            attachment = self._attachment(ws)
            if attachment.get("registered"):
                return ws, attachment
        return None

    async def webSocketMessage(self, ws: Any, message: Any) -> None:  # noqa: N802 - the runtime's name
        attachment = self._attachment(ws)
        allowed = attachment.get("allowed")
        identity = AgentIdentity(attachment.get("identity"), "", None if allowed is None else frozenset(allowed))
        registered = attachment.get("registered")
        outcome = on_agent_frame(message, identity=identity, max_bytes=MAX_MESSAGE_BYTES,
                                 registered=RegisterData.model_validate(registered) if registered else None)
        if outcome.registered is not None:
            data = outcome.registered
            if self._registered(exclude=ws) is not None:
                # Two connections with one agent_id: the first keeps it (as on the process hub); the agent
                # client retries a reconnect refused this way, so a stale socket's successor gets in.
                ws.send(already_connected(data.agent_id))
                ws.close(POLICY_VIOLATION, "agent_id in use")
                return
            attachment["registered"] = data.model_dump(mode="json")
            ws.serializeAttachment(json.dumps(attachment))
            await self._directory("PUT", DirectoryEntry.of(data, attachment["connection"]).model_dump_json())
            ws.send(registration_success(data.agent_id))
            logger.info("agent %s registered (%d tool(s))", data.agent_id, len(data.tools))
            return
        if outcome.reply is not None:
            ws.send(outcome.reply)
        if outcome.close:
            ws.close(POLICY_VIOLATION, "registration not allowed")
        if outcome.event is not None and outcome.event.task_id in self.events:
            self.events[outcome.event.task_id].put_nowait(outcome.event.event)
        answered = outcome.result
        if outcome.failed_task is not None:
            answered = lost_result(outcome.failed_task, "the agent sent an invalid result")
        if answered is not None:
            future = self.waiting.pop(answered.task_id, None)
            if future is not None and not future.done():
                future.set_result(answered)
            # else: a late or repeated result, for a task already answered: dropped (answered once only)

    async def webSocketClose(self, ws: Any, code: int, reason: str, wasClean: bool) -> None:  # noqa: N802, N803
        attachment = self._attachment(ws)
        try:
            ws.close(code if code in (1000, 1001) or 3000 <= code <= 4999 else 1000, "closing")
        except Exception:
            pass
        if not attachment.get("registered"):
            return
        why = f"the agent's connection closed (code {code})"
        for task_id, future in list(self.waiting.items()):
            if not future.done():
                future.set_result(lost_result(task_id, why))
        self.waiting.clear()
        agent_id = attachment["registered"]["agent_id"]
        await self._directory("DELETE", json.dumps({"agent_id": agent_id, "connection": attachment["connection"]}))
        logger.info("agent %s disconnected (%s)", agent_id, why)

    async def webSocketError(self, ws: Any, error: Any) -> None:  # noqa: N802 - the runtime's name
        await self.webSocketClose(ws, 1011, "error", False)

    # ----------------------------------------------------------------------------------------- tasks

    async def _task(self, body: str) -> str:
        """Send one task down the socket and wait for its result (a TaskResultData as JSON)."""
        request = json.loads(body)
        task = TaskExecuteData.model_validate(request["task"])
        timeout = float(request.get("timeout", 30.0))
        found = self._registered()
        if found is None:
            # The directory listed a socket this object no longer has (closed without webSocketClose): as
            # this object alone holds the agent's sockets, the entry is stale whatever its connection.
            agent_id = request.get("agent_id")
            if isinstance(agent_id, str):
                await self._directory("DELETE", json.dumps({"agent_id": agent_id, "connection": None}))
            return lost_result(task.task_id, "the agent is not connected").model_dump_json()
        ws, attachment = found
        limit = int(attachment["registered"].get("max_concurrency", 1))
        if len(self.waiting) >= limit:
            return TaskResultData(task_id=task.task_id, status="error", code=BUSY_CODE,
                                  error="the agent is at its concurrency limit").model_dump_json()
        future: asyncio.Future[TaskResultData] = asyncio.get_running_loop().create_future()
        self.waiting[task.task_id] = future
        try:
            ws.send(task_frame(task))
        except Exception:
            self.waiting.pop(task.task_id, None)
            return lost_result(task.task_id, "the agent's socket is closed").model_dump_json()
        try:
            result = await asyncio.wait_for(future, timeout)
        except asyncio.CancelledError:  # the caller went away: so does the task
            self.waiting.pop(task.task_id, None)
            try:
                ws.send(encode(TaskCancelMessage(data=TaskCancelData(task_id=task.task_id, reason="caller left"))))
            except Exception:
                pass
            raise
        except TimeoutError:
            self.waiting.pop(task.task_id, None)
            try:
                ws.send(encode(TaskCancelMessage(data=TaskCancelData(task_id=task.task_id, reason="deadline"))))
            except Exception:
                pass
            result = timeout_result(task.task_id, attachment["registered"]["agent_id"], timeout)
        return result.model_dump_json()

    def _streamed_task(self, body: str) -> Response:
        """A task sent with ``stream: true``: the answer is a stream of lines (core's ``relay_line``), each
        ``task:event`` as it arrives, then the result (the Worker passes the events on to its client). A
        reader that goes away ends the stream, which cancels the task (``task:cancel`` to the agent)."""
        task_id = TaskExecuteData.model_validate(json.loads(body)["task"]).task_id
        queue: asyncio.Queue[RunEvent] = asyncio.Queue()
        self.events[task_id] = queue

        async def lines() -> AsyncIterator[bytes]:
            running = asyncio.ensure_future(self._task(body))
            try:
                while True:
                    getting = asyncio.ensure_future(queue.get())
                    await asyncio.wait({getting, running}, return_when=asyncio.FIRST_COMPLETED)
                    if getting.done():
                        yield relay_line(getting.result()).encode()
                        continue
                    getting.cancel()
                    while not queue.empty():
                        yield relay_line(queue.get_nowait()).encode()
                    yield relay_line(TaskResultData.model_validate_json(running.result())).encode()
                    return
            finally:
                self.events.pop(task_id, None)
                if not running.done():
                    running.cancel()

        return to_stream_response(StreamResponse(lines(), 200, {"Content-Type": "application/x-ndjson"}))

    async def _directory(self, method: str, body: str) -> None:
        namespace = getattr(self.env, DIRECTORY_BINDING)
        stub = namespace.get(namespace.idFromName(DIRECTORY_NAME))
        await stub.fetch(f"{INTERNAL_URL}/agents", method=method, body=body)


# ------------------------------------------------------------------------------------------ directory


class DirectoryObject(DurableObject):
    """Who is online: ``GET /agents`` lists the entries, ``PUT`` adds one, ``DELETE`` removes the entry of one
    connection (not a newer connection's entry for the same agent_id). Reached only from the Worker's code."""

    async def fetch(self, request: Any) -> Response:
        method = str(getattr(request.method, "value", request.method))
        entries = await self._entries()
        if method == "GET":
            return _json([entry for entry in entries.values()])
        body = json.loads(await request.text())
        if method == "PUT":
            entry = DirectoryEntry.model_validate(body)
            entries[entry.agent_id] = entry.model_dump(mode="json")
        elif method == "DELETE":
            current = entries.get(body.get("agent_id"))
            # A connection's close removes only its own entry; None (the agent's object has no socket) any.
            if current is not None and body.get("connection") in (None, current.get("connection")):
                del entries[body["agent_id"]]
        await self.ctx.storage.put(DIRECTORY_KEY, json.dumps(entries))
        return _json({"agents": len(entries)})

    async def _entries(self) -> dict[str, Any]:
        raw = await self.ctx.storage.get(DIRECTORY_KEY)
        return json.loads(raw) if isinstance(raw, str) else {}


# ----------------------------------------------------------------------------------------- the relay


class WorkerRelay:
    """Core's ``Relay`` on Workers: the directory object lists the agents, each agent's object runs a task.

    Args:
        env: The Worker's env (the ``AGENTS`` and ``DIRECTORY`` bindings).
    """

    def __init__(self, env: Any) -> None:
        self.env = env

    async def agents(self) -> list[DirectoryEntry]:
        namespace = getattr(self.env, DIRECTORY_BINDING)
        stub = namespace.get(namespace.idFromName(DIRECTORY_NAME))
        answer = await stub.fetch(f"{INTERNAL_URL}/agents", method="GET")
        return [DirectoryEntry.model_validate(item) for item in json.loads(await answer.text())]

    async def dispatch(self, agent: DirectoryEntry, task: TaskExecuteData, timeout: float) -> TaskResultData:
        namespace = getattr(self.env, AGENTS_BINDING)
        stub = namespace.get(namespace.idFromName(agent.agent_id))
        started = time.monotonic()
        answer = await stub.fetch(f"{INTERNAL_URL}/task", method="POST",
                                  body=json.dumps({"task": task.model_dump(mode="json", exclude_none=True),
                                                   "agent_id": agent.agent_id, "timeout": timeout}))
        logger.debug("task %s on %s: %.3fs", task.task_id, agent.agent_id, time.monotonic() - started)
        return check_lost(TaskResultData.model_validate_json(await answer.text()))

    async def dispatch_stream(self, agent: DirectoryEntry, task: TaskExecuteData,
                              timeout: float) -> AsyncIterator[RunEvent | TaskResultData]:
        """The agent's object streams the task's events, then its result, one ``relay_line`` each."""
        namespace = getattr(self.env, AGENTS_BINDING)
        stub = namespace.get(namespace.idFromName(agent.agent_id))
        answer = await stub.fetch(f"{INTERNAL_URL}/task", method="POST",
                                  body=json.dumps({"task": task.model_dump(mode="json", exclude_none=True),
                                                   "agent_id": agent.agent_id, "timeout": timeout, "stream": True}))
        if answer.body is None:
            yield parse_relay_line(await answer.text())
            return
        reader = answer.body.getReader()
        buffered = ""
        finished = False
        try:
            while True:
                chunk = await reader.read()
                if chunk.done:
                    finished = True
                    break
                buffered += bytes(chunk.value).decode("utf-8")
                while "\n" in buffered:
                    line, buffered = buffered.split("\n", 1)
                    if line.strip():
                        yield parse_relay_line(line)
        finally:
            if not finished:  # the client left: cancelling the stream makes the object cancel the task
                await reader.cancel()
        if buffered.strip():
            yield parse_relay_line(buffered)
