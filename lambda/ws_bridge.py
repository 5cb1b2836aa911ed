"""The bridge hub on AWS: API Gateway's WebSocket API holds the agents' connections, and Lambda answers
their events (``$connect``, ``$default``, ``$disconnect``: :func:`handler`) and the clients' ``/execute``
(app.py, with :class:`AwsRelay` under core's ``RelayBackend``).

Nothing lives between events but two DynamoDB tables:

- the connections table (partition key ``pk``): a ``conn#<connectionId>`` item per open connection (who its
  token says it is, the tools that token allows, the ``agent_id`` once registered) and an
  ``agent#<agent_id>`` item per registered agent (its registration and its connection: the directory);
  both expire (``expires_at``, the table's TTL) after API Gateway's 2 h connection limit;
- the tasks table (partition key ``task_id``): a task in flight, ``pending`` until the agent's
  ``task:result`` arrives on ``$default`` and is written with a conditional update, so only the first
  result counts; ``lost`` when its connection went away first.

``/execute`` writes the task, sends it with ``PostToConnection`` (``apigatewaymanagementapi``) and polls its
item with backoff (50 to 500 ms) until the result or the deadline. Step Functions' callback pattern
(``waitForTaskToken``) exists only in Standard workflows, which cannot answer synchronously, so polling is
what an HTTP request that waits for an agent can do. A ``GoneException`` (410) on a post means the
connection is stale: its items are removed and the task goes to another agent.

API Gateway's quotas shape this: a message is at most 128 KB (a larger task is refused with
PAYLOAD_TOO_LARGE), the integration timeout is 29 s (so ``/execute``'s deadline stays under it; longer work
goes to ``POST /runs``), a connection idles out after 10 minutes (the agent's heartbeat is shorter) and
lives at most 2 h (the agent reconnects by itself). The protocol, the identity rules and the error codes
are core's (``lmstudio_agent.bridge``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any
from collections.abc import Callable, Mapping

from lmstudio_agent.bridge.identities import AgentIdentity, Identities, IdentityError, parse_identities
from lmstudio_agent.bridge.protocol import (
    RegisterData,
    TaskCancelData,
    TaskCancelMessage,
    TaskExecuteData,
    TaskResultData,
    encode,
)
from lmstudio_agent.bridge.relay import (
    AgentLost,
    DirectoryEntry,
    already_connected,
    on_agent_frame,
    registration_success,
    task_frame,
    timeout_result,
)
from lmstudio_agent.endpoint.contract import error_response, presented_key
from lmstudio_agent.errors import AgentError, ErrorCode

logger = logging.getLogger("lmstudio_agent.lambda.bridge")

CONNECTION_TTL_SECONDS = 2 * 3600  # API Gateway closes a connection after 2 h
TASK_TTL_SECONDS = 3600
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message quota
POLL_BACKOFF = (0.05, 0.5)
CLIENT_CONFIG = {"connect_timeout": 2, "read_timeout": 5, "retries": {"max_attempts": 2, "mode": "standard"}}


class _Clients:
    """The boto3 clients of one container, made on first use (the tests point them at moto and the stand-in)."""

    def __init__(self) -> None:
        self._dynamodb: Any = None
        self._management: dict[str, Any] = {}

    @property
    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            import boto3
            from botocore.config import Config

            self._dynamodb = boto3.client("dynamodb", config=Config(**CLIENT_CONFIG))
        return self._dynamodb

    def management(self, endpoint_url: str) -> Any:
        """The ``apigatewaymanagementapi`` client of the WebSocket API's stage at ``endpoint_url``."""
        if endpoint_url not in self._management:
            import boto3
            from botocore.config import Config

            self._management[endpoint_url] = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url,
                                                          config=Config(**CLIENT_CONFIG))
        return self._management[endpoint_url]


clients = _Clients()


def callback_url(event: Mapping[str, Any] | None = None) -> str:
    """The management API's endpoint: ``BRIDGE_CALLBACK_URL`` (set by the template), else the event's own
    ``https://{domainName}/{stage}``.

    Args:
        event: A WebSocket route's event, when there is one.
    """
    configured = os.environ.get("BRIDGE_CALLBACK_URL")
    if configured:
        return configured
    context = (event or {}).get("requestContext") or {}
    return f"https://{context.get('domainName')}/{context.get('stage')}"


def _gone(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code == "GoneException" or status == 410


class Tables:
    """The two tables, by the names in ``CONNECTIONS_TABLE`` and ``TASKS_TABLE``.

    Args:
        connections: The connections table's name.
        tasks: The tasks table's name.
        clock: Epoch seconds.
    """

    def __init__(self, connections: str | None = None, tasks: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.connections = connections or os.environ["CONNECTIONS_TABLE"]
        self.tasks = tasks or os.environ["TASKS_TABLE"]
        self.clock = clock

    @property
    def db(self) -> Any:
        return clients.dynamodb

    def get(self, pk: str) -> dict[str, Any] | None:
        item = self.db.get_item(TableName=self.connections, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
        if not item or float(item["expires_at"]["N"]) <= self.clock():
            return None
        return json.loads(item["data"]["S"])

    def put(self, pk: str, data: dict[str, Any]) -> None:
        self.db.put_item(TableName=self.connections, Item={
            "pk": {"S": pk}, "data": {"S": json.dumps(data)}, "connection": {"S": str(data.get("connection", ""))},
            "expires_at": {"N": str(int(self.clock() + CONNECTION_TTL_SECONDS))}})

    def delete(self, pk: str, connection: str | None = None) -> None:
        """Delete ``pk``; with ``connection``, only while the item is still that connection's."""
        extra: dict[str, Any] = {}
        if connection is not None:
            extra = {"ConditionExpression": "#c = :c", "ExpressionAttributeNames": {"#c": "connection"},
                     "ExpressionAttributeValues": {":c": {"S": connection}}}
        try:
            self.db.delete_item(TableName=self.connections, Key={"pk": {"S": pk}}, **extra)
        except self.db.exceptions.ConditionalCheckFailedException:
            pass

    def agents(self) -> list[DirectoryEntry]:
        entries: list[DirectoryEntry] = []
        kwargs: dict[str, Any] = {"TableName": self.connections, "ConsistentRead": True,
                                  "FilterExpression": "begins_with(pk, :p)",
                                  "ExpressionAttributeValues": {":p": {"S": "agent#"}}}
        while True:
            page = self.db.scan(**kwargs)
            for item in page.get("Items", []):
                if float(item["expires_at"]["N"]) > self.clock():
                    entries.append(DirectoryEntry.model_validate_json(item["data"]["S"]))
            if "LastEvaluatedKey" not in page:
                return entries
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ------------------------------------------------------------------------------------------ tasks

    def put_task(self, task_id: str, agent_id: str, connection: str) -> None:
        self.db.put_item(TableName=self.tasks, Item={
            "task_id": {"S": task_id}, "status": {"S": "pending"}, "agent_id": {"S": agent_id},
            "connection": {"S": connection}, "expires_at": {"N": str(int(self.clock() + TASK_TTL_SECONDS))}})

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        return self.db.get_item(TableName=self.tasks, Key={"task_id": {"S": task_id}}, ConsistentRead=True).get("Item")

    def settle_task(self, task_id: str, status: str, result: str = "", connection: str | None = None) -> bool:
        """Move a pending task to ``status`` (done, lost, expired); False when it was not pending (or, with
        ``connection``, not that connection's): the first outcome wins, a later one is dropped."""
        condition = "#s = :pending"
        values: dict[str, Any] = {":pending": {"S": "pending"}, ":new": {"S": status}, ":r": {"S": result}}
        names = {"#s": "status", "#r": "result"}
        if connection is not None:
            condition += " AND #c = :c"
            values[":c"] = {"S": connection}
            names["#c"] = "connection"
        try:
            self.db.update_item(TableName=self.tasks, Key={"task_id": {"S": task_id}},
                                UpdateExpression="SET #s = :new, #r = :r", ConditionExpression=condition,
                                ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except self.db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def pending_of(self, connection: str) -> list[str]:
        ids: list[str] = []
        kwargs: dict[str, Any] = {"TableName": self.tasks, "ConsistentRead": True,
                                  "FilterExpression": "#c = :c AND #s = :pending",
                                  "ExpressionAttributeNames": {"#c": "connection", "#s": "status"},
                                  "ExpressionAttributeValues": {":c": {"S": connection}, ":pending": {"S": "pending"}}}
        while True:
            page = self.db.scan(**kwargs)
            ids += [item["task_id"]["S"] for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return ids
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# ----------------------------------------------------------------------------------- WebSocket routes


def handler(event: Mapping[str, Any], context: Any, *, identities: Callable[[], Identities] | None = None) -> dict[str, Any]:
    """The WebSocket API's three routes, by ``requestContext.routeKey``. Never raises: a failure is logged and
    answered 500 (API Gateway then refuses the handshake or drops the message).

    Args:
        event: The route's event.
        context: The Lambda context.
        identities: Where the admitted agents come from (app.py passes its Secrets Manager reader).
    """
    try:
        route = event["requestContext"]["routeKey"]
        connection = event["requestContext"]["connectionId"]
        tables = Tables()
        if route == "$connect":
            return on_connect(event, connection, tables, identities or load_identities)
        if route == "$disconnect":
            on_disconnect(connection, tables)
            return {"statusCode": 200}
        return on_message(event, connection, tables)
    except Exception:
        logger.exception("the bridge's WebSocket route failed")
        return {"statusCode": 500}


def load_identities() -> Identities:
    """``BRIDGE_AGENTS`` read from the Secrets Manager secret named by ``BRIDGE_AGENTS_SECRET``."""
    import boto3

    name = os.environ.get("BRIDGE_AGENTS_SECRET", "")
    if not name:
        return Identities()
    text = boto3.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    return Identities(tuple(parse_identities(text, source="BRIDGE_AGENTS secret")))


def _headers(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    multi = event.get("multiValueHeaders")
    if isinstance(multi, dict) and multi:
        return [(str(k), str(v)) for k, values in multi.items() for v in (values or [])]
    single = event.get("headers")
    return [(str(k), str(v)) for k, v in single.items()] if isinstance(single, dict) else []


def on_connect(event: Mapping[str, Any], connection: str, tables: Tables,
               identities: Callable[[], Identities]) -> dict[str, Any]:
    """``$connect``: the token of the handshake, checked as the process hub checks it (401/403 refuse it)."""
    try:
        key = presented_key(_headers(event))
        admitted = identities()
    except AgentError as exc:
        return _refusal(error_response(exc.code, exc.message, {"WWW-Authenticate": "Bearer"}))
    except IdentityError as exc:
        logger.error("BRIDGE_AGENTS is malformed: %s", exc)
        return _refusal(error_response(ErrorCode.INTERNAL_ERROR, "The bridge is misconfigured"))
    if key is None:
        return _refusal(error_response(ErrorCode.UNAUTHORIZED, "Missing token: send 'Authorization: Bearer <token>'",
                                       {"WWW-Authenticate": "Bearer"}))
    identity = admitted.authenticate(key)
    if identity is None or identity.agent_id is None:
        return _refusal(error_response(ErrorCode.FORBIDDEN, "Invalid token"))
    tables.put(f"conn#{connection}", {"connection": connection, "identity": identity.agent_id,
                                      "allowed": None if identity.tools is None else sorted(identity.tools),
                                      "registered": None})
    return {"statusCode": 200}


def _refusal(response: Any) -> dict[str, Any]:
    return {"statusCode": response.status, "headers": response.all_headers(), "body": response.json()}


def on_disconnect(connection: str, tables: Tables) -> None:
    """``$disconnect``: the connection's tasks are marked lost (their ``/execute`` hands them to another
    agent) and its directory entry goes."""
    state = tables.get(f"conn#{connection}")
    tables.delete(f"conn#{connection}")
    for task_id in tables.pending_of(connection):
        tables.settle_task(task_id, "lost", "the agent's connection closed", connection=connection)
    if state and state.get("registered"):
        tables.delete(f"agent#{state['registered']['agent_id']}", connection=connection)


def on_message(event: Mapping[str, Any], connection: str, tables: Tables) -> dict[str, Any]:
    """``$default``: one frame from an agent, through core's :func:`on_agent_frame`."""
    state = tables.get(f"conn#{connection}")
    endpoint = callback_url(event)
    if state is None:  # $connect's item is gone (expired): the connection is not the hub's any more
        _close(endpoint, connection)
        return {"statusCode": 200}
    allowed = state.get("allowed")
    identity = AgentIdentity(state.get("identity"), "", None if allowed is None else frozenset(allowed))
    registered = RegisterData.model_validate(state["registered"]) if state.get("registered") else None
    body = event.get("body") or ""
    outcome = on_agent_frame(body, identity=identity, registered=registered, max_bytes=MAX_MESSAGE_BYTES)
    if outcome.registered is not None:
        register(outcome.registered, state, connection, tables, endpoint)
        return {"statusCode": 200}
    if outcome.reply is not None:
        post(endpoint, connection, outcome.reply)
    if outcome.close:
        _close(endpoint, connection)
    if outcome.result is not None:
        result = outcome.result
        if not tables.settle_task(result.task_id, "done", result.model_dump_json(), connection=connection):
            logger.info("dropped a late or repeated result for task %s", result.task_id[:64])
    elif outcome.failed_task is not None:
        tables.settle_task(outcome.failed_task, "lost", "the agent sent an invalid result", connection=connection)
    return {"statusCode": 200}


def register(data: RegisterData, state: dict[str, Any], connection: str, tables: Tables, endpoint: str) -> None:
    """Put the agent in the directory unless another live connection holds its id (the first keeps it, as
    on the process hub); a holder whose connection is gone (410) is replaced."""
    entry = DirectoryEntry.of(data, connection, tables.clock()).model_dump(mode="json")
    pk = f"agent#{data.agent_id}"
    placed = _put_agent(tables, pk, entry, connection)
    if not placed:
        holder = tables.get(pk)
        if holder is not None and holder.get("connection") and not alive(endpoint, holder["connection"]):
            tables.delete(pk, connection=holder["connection"])
            placed = _put_agent(tables, pk, entry, connection)
    if not placed:
        post(endpoint, connection, already_connected(data.agent_id))
        _close(endpoint, connection)
        return
    state["registered"] = data.model_dump(mode="json")
    tables.put(f"conn#{connection}", state)
    post(endpoint, connection, registration_success(data.agent_id, MAX_MESSAGE_BYTES))


def _put_agent(tables: Tables, pk: str, entry: dict[str, Any], connection: str) -> bool:
    try:
        tables.db.put_item(TableName=tables.connections, Item={
            "pk": {"S": pk}, "data": {"S": json.dumps(entry)}, "connection": {"S": connection},
            "expires_at": {"N": str(int(tables.clock() + CONNECTION_TTL_SECONDS))}},
            ConditionExpression="attribute_not_exists(pk) OR #c = :c OR expires_at < :now",
            ExpressionAttributeNames={"#c": "connection"},
            ExpressionAttributeValues={":c": {"S": connection}, ":now": {"N": str(int(tables.clock()))}})
    except tables.db.exceptions.ConditionalCheckFailedException:
        return False
    return True


def post(endpoint: str, connection: str, text: str) -> bool:
    """``PostToConnection``; False when the connection is gone (410)."""
    try:
        clients.management(endpoint).post_to_connection(ConnectionId=connection, Data=text.encode())
    except Exception as exc:
        if _gone(exc):
            return False
        raise
    return True


def alive(endpoint: str, connection: str) -> bool:
    """``GetConnection``: whether API Gateway still has the connection."""
    try:
        clients.management(endpoint).get_connection(ConnectionId=connection)
    except Exception as exc:
        if _gone(exc):
            return False
        raise
    return True


def _close(endpoint: str, connection: str) -> None:
    try:
        clients.management(endpoint).delete_connection(ConnectionId=connection)
    except Exception as exc:
        if not _gone(exc):
            logger.warning("could not close connection %s", connection)


# ------------------------------------------------------------------------------------------ the relay


class AwsRelay:
    """Core's ``Relay`` on AWS: the connections table is the directory; a task is a tasks-table item, posted
    to the agent's connection and polled until its result.

    Args:
        tables: The two tables.
        endpoint: The management API's endpoint (the WebSocket API's stage URL).
    """

    def __init__(self, tables: Tables, endpoint: str) -> None:
        self.tables = tables
        self.endpoint = endpoint

    async def agents(self) -> list[DirectoryEntry]:
        return self.tables.agents()

    async def dispatch(self, agent: DirectoryEntry, task: TaskExecuteData, timeout: float) -> TaskResultData:
        frame = task_frame(task)
        if len(frame.encode()) > MAX_MESSAGE_BYTES:
            return TaskResultData(task_id=task.task_id, status="error", code=ErrorCode.PAYLOAD_TOO_LARGE.value,
                                  error=f"The task is larger than API Gateway's {MAX_MESSAGE_BYTES // 1024} KB message "
                                        f"limit; send smaller documents")
        # One task id per attempt on AWS: the item is the attempt's, and a lost agent's late result (if its
        # connection ever sent one) matches nothing.
        task = task.model_copy(update={"task_id": f"{task.task_id[:32]}-{int(time.time() * 1000) % 10**9}"})
        self.tables.put_task(task.task_id, agent.agent_id, agent.connection)
        if not post(self.endpoint, agent.connection, task_frame(task)):
            # A stale connection: it leaves the directory, and the task goes to another agent.
            self.tables.delete(f"agent#{agent.agent_id}", connection=agent.connection)
            self.tables.delete(f"conn#{agent.connection}")
            self.tables.settle_task(task.task_id, "lost", "the agent's connection is gone")
            raise AgentLost("its connection is gone (410)")
        give_up = time.monotonic() + timeout
        pause = POLL_BACKOFF[0]
        while True:
            item = self.tables.get_task(task.task_id)
            status = item["status"]["S"] if item else "lost"
            if status == "done":
                return TaskResultData.model_validate_json(item["result"]["S"])  # type: ignore[index]
            if status == "lost":
                raise AgentLost((item or {}).get("result", {}).get("S") or "the task's record is gone")
            left = give_up - time.monotonic()
            if left <= 0:
                if self.tables.settle_task(task.task_id, "expired", "deadline"):
                    post(self.endpoint, agent.connection,
                         encode(TaskCancelMessage(data=TaskCancelData(task_id=task.task_id, reason="deadline"))))
                    return timeout_result(task.task_id, agent.agent_id, timeout)
                continue  # the result landed just now: read it
            await asyncio.sleep(min(pause, left))
            pause = min(POLL_BACKOFF[1], pause * 2)
