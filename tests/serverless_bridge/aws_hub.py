"""The SAM stack as a bridge hub, for the serverless bridge tests: the real lambda/app.py and ws_bridge.py
and the core package, with moto's DynamoDB and Secrets Manager.

BOUNDARY: API Gateway's WebSocket API cannot run here (``sam local`` cannot emulate it), nor can Lambda's
runtime. :class:`ApiGatewayFront` stands in for exactly that part, mirroring its API:

- a loopback WebSocket server: a client's handshake becomes the ``$connect`` event API Gateway sends
  (``requestContext.routeKey``/``eventType``/``connectionId``, the handshake's headers), and a non-200 answer
  refuses the handshake with that status; each text frame becomes a ``$default`` ``MESSAGE`` event, the close
  a ``$disconnect`` event. A message over 128 KB closes the connection (1009), as API Gateway does;
- the management API on loopback HTTP: ``POST /{stage}/@connections/{id}`` sends the body to the socket,
  ``GET`` describes it, ``DELETE`` closes it, and an unknown or stale connection is ``410 GoneException``.
  The real handlers reach it through boto3's ``apigatewaymanagementapi`` with ``endpoint_url`` pointed here
  (moto passes that one service through: its own mock never answers 410);
- Lambda: each invocation runs in a thread, in a container (a separate import of app.py, with its own
  globals) taken from a pool, so concurrent invocations never share one; "hibernation" empties the pool;
  the runner function's async invoke is queued and delivered by :meth:`AwsHub.tick`.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import secrets
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

from tests.endpoints.drivers.lambda_driver import LAMBDA_DIR, LambdaContext, restore_env, load_handler_module, proxy_event, response_of

STAGE = "prod"
CONNECTIONS_TABLE = "bridge-connections-test"
TASKS_TABLE = "bridge-tasks-test"
CACHE_TABLE = "bridge-cache-test"
RUNS_TABLE = "bridge-runs-test"
AGENTS_SECRET = "lmstudio-agent/bridge-agents"
CLIENT_KEY_SECRET = "lmstudio-agent/client-api-key"
MAX_MESSAGE_BYTES = 128 * 1024
LAMBDA_CONCURRENCY = 256


class ApiGatewayFront:
    """API Gateway's WebSocket front and its management API, on loopback (see the module docstring).

    Args:
        invoke: Runs the WebSocket function on an event (in a Lambda container): ``await invoke(event)``.
    """

    def __init__(self, invoke: Any) -> None:
        self.invoke = invoke
        self.connections: dict[str, Any] = {}  # connectionId -> the live socket
        self.connected_at: dict[str, float] = {}
        self.gone: set[str] = set()  # ids API Gateway no longer has (410), whatever the socket does
        self.posted: list[str] = []  # every message the management API sent, for assertions
        self._ws_server: Any = None
        self._http_server: Any = None
        self._pending: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        from websockets.asyncio.server import serve

        self._ws_server = await serve(self._handle, "127.0.0.1", 0, process_request=self._connect, compression=None,
                                      max_size=MAX_MESSAGE_BYTES, ping_interval=None)
        self._http_server = await asyncio.start_server(self._http, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._ws_server is not None:
            self._ws_server.close(close_connections=True)
            await self._ws_server.wait_closed()
        if self._http_server is not None:
            self._http_server.close()
            await self._http_server.wait_closed()
        pending = [task for task in self._pending if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._ws_server.sockets[0].getsockname()[1]}"

    @property
    def callback_url(self) -> str:
        return f"http://127.0.0.1:{self._http_server.sockets[0].getsockname()[1]}/{STAGE}"

    def _event(self, route: str, connection_id: str, **extra: Any) -> dict[str, Any]:
        event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
        return {
            "requestContext": {
                "routeKey": route, "eventType": event_type, "connectionId": connection_id, "stage": STAGE,
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "apiId": "abc123",
                "requestId": str(uuid.uuid4()), "messageDirection": "IN",
                "connectedAt": int(self.connected_at.get(connection_id, time.time()) * 1000),
                "requestTimeEpoch": int(time.time() * 1000),
            },
            "isBase64Encoded": False,
            **extra,
        }

    # ------------------------------------------------------------------------------------- WebSocket

    async def _connect(self, connection: Any, request: Any) -> Any:
        connection_id = base64.b64encode(secrets.token_bytes(9)).decode()
        self.connected_at[connection_id] = time.time()
        headers: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in request.headers.raw_items():
            headers[name] = value
            multi.setdefault(name, []).append(value)
        result = await self.invoke(self._event("$connect", connection_id, headers=headers, multiValueHeaders=multi))
        status = int(result.get("statusCode", 500))
        if status != 200:
            refused = connection.respond(status, result.get("body") or "")
            del refused.headers["Content-Type"]
            refused.headers["Content-Type"] = "application/json"
            return refused
        connection.apigw_id = connection_id
        self.connections[connection_id] = connection
        return None

    async def _handle(self, connection: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        connection_id = connection.apigw_id
        try:
            async for raw in connection:
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                # API Gateway invokes the $default route for each message, concurrently.
                task = asyncio.ensure_future(self.invoke(self._event("$default", connection_id, body=text)))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
        except ConnectionClosed:
            pass
        finally:
            self.connections.pop(connection_id, None)
            if connection_id not in self.gone:  # a stale connection's $disconnect never came
                self.gone.add(connection_id)
                await self.invoke(self._event("$disconnect", connection_id))

    # ------------------------------------------------------------------------------- management API

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        current = asyncio.current_task()
        if current is not None:  # a kept-alive client connection: ended by stop()
            self._pending.add(current)
            current.add_done_callback(self._pending.discard)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                length = 0
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length) if length else b""
                status, payload, error = await self._manage(method, target, body)
                data = json.dumps(payload).encode() if payload is not None else b""
                head = [f"HTTP/1.1 {status} {'OK' if status < 300 else 'Error'}", "Content-Type: application/json",
                        f"Content-Length: {len(data)}", f"x-amzn-RequestId: {uuid.uuid4()}"]
                if error:
                    head.append(f"x-amzn-ErrorType: {error}:http://internal.amazon.com/coral/com.amazonaws.gatewayapi/")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()

    async def _manage(self, method: str, target: str, body: bytes) -> tuple[int, Any, str | None]:
        prefix = f"/{STAGE}/@connections/"
        if not target.startswith(prefix):
            return 404, {"message": "Not Found"}, "NotFoundException"
        connection_id = unquote(target[len(prefix):])
        connection = self.connections.get(connection_id)
        if connection is None or connection_id in self.gone:
            return 410, {"message": None}, "GoneException"
        if method == "POST":
            if len(body) > MAX_MESSAGE_BYTES:
                return 413, {"message": "Message too long"}, "PayloadTooLargeException"
            text = body.decode("utf-8")
            self.posted.append(text)
            await connection.send(text)
            return 200, None, None
        if method == "GET":
            return 200, {"ConnectedAt": self.connected_at[connection_id], "Identity": {"SourceIp": "127.0.0.1"},
                         "LastActiveAt": time.time()}, None
        if method == "DELETE":
            await connection.close(1000, "")
            return 204, None, None
        return 405, {"message": "Method Not Allowed"}, None


class LambdaPool:
    """Lambda's containers: each invocation runs in a thread, in a container (a separate import of app.py with
    its own globals) taken from a pool, so concurrent invocations never share one.

    Args:
        queue_run: What the API function's async invoke of the runner function does (``await queue_run(id)``).
    """

    def __init__(self, queue_run: Any = None) -> None:
        self.queue_run = queue_run
        self.pool: list[Any] = []  # warm containers, free to take
        self.containers = 0
        self.warm = False  # True once moto holds the secrets: a new container then makes its clients at init
        # Lambda runs up to 1,000 invocations at once: a waiting /execute must not starve the $default
        # invocation that carries its result (asyncio's default pool has only cpu_count + 4 threads).
        self.executor = ThreadPoolExecutor(max_workers=LAMBDA_CONCURRENCY, thread_name_prefix="lambda")

    def container(self) -> Any:
        if self.pool:
            return self.pool.pop()
        module = load_handler_module()
        if self.queue_run is not None:
            module._start_run = self.queue_run
            module._run_service.__globals__["_start_run"] = self.queue_run
        if self.warm:
            # The container's init: its boto3 clients are made here, one container at a time (botocore's
            # client creation is not thread-safe, and a real container makes them before its first request).
            module._client_key()
            module._bridge_identities()
        self.containers += 1
        return module

    async def call(self, function: str, event: Any, timeout: float = 28.0) -> Any:
        container = self.container()
        try:
            call = functools.partial(getattr(container, function), event, LambdaContext(timeout_seconds=timeout))
            return await asyncio.get_running_loop().run_in_executor(self.executor, call)
        finally:
            self.pool.append(container)

    def cold(self) -> None:
        """Every container goes away (Lambda promises to keep none between invocations)."""
        self.pool.clear()

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def create_bridge_resources(db: Any, secrets_client: Any, agents_text: str) -> None:
    """The stack's bridge tables (as template.yaml declares them) and the BRIDGE_AGENTS secret, in moto."""
    for table, key in ((CONNECTIONS_TABLE, "pk"), (TASKS_TABLE, "task_id")):
        db.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])
    secrets_client.create_secret(Name=AGENTS_SECRET, SecretString=agents_text)


class AwsHub:
    """The stack's bridge: the API function (``lambda_handler``), the WebSocket function (``bridge_handler``),
    the runner function, moto's tables and secrets, and the API Gateway front.

    Args:
        agents_text: The BRIDGE_AGENTS secret's text.
        client_key: The client key secret.
        deadline_seconds: ``EXECUTE_DEADLINE_SECONDS``.
    """

    name = "aws"

    def __init__(self, agents_text: str, client_key: str, deadline_seconds: float = 25.0) -> None:
        self.agents_text = agents_text
        self.client_key = client_key
        self.deadline_seconds = deadline_seconds
        self.front = ApiGatewayFront(self._invoke_ws)
        self.queued_runs: list[str] = []

        async def queue_run(run_id: str) -> None:  # Lambda's async invoke: queued, delivered by tick()
            self.queued_runs.append(run_id)

        self.lambdas = LambdaPool(queue_run)
        self._mock: Any = None
        self._saved: dict[str, str | None] = {}

    async def start(self) -> AwsHub:
        from moto import mock_aws

        await self.front.start()
        env = {
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "lmstudio-agent", "POWERTOOLS_METRICS_NAMESPACE": "LMStudioAgent",
            "EXECUTE_DEADLINE_SECONDS": f"{self.deadline_seconds:g}", "CACHE_TTL_SECONDS": "3600",
            "CACHE_TABLE": CACHE_TABLE, "RUNS_TABLE": RUNS_TABLE, "RUNNER_FUNCTION": "RunnerFunction",
            "CLIENT_API_KEY_SECRET": CLIENT_KEY_SECRET, "LM_STUDIO_TOKEN_SECRET": "",
            "BRIDGE_AGENTS_SECRET": AGENTS_SECRET, "CONNECTIONS_TABLE": CONNECTIONS_TABLE, "TASKS_TABLE": TASKS_TABLE,
            "BRIDGE_CALLBACK_URL": self.front.callback_url, "LM_STUDIO_URL": "", "LM_STUDIO_TOKEN": "",
        }
        self._saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        self._mock = mock_aws(config={"core": {"mock_credentials": True, "reset_boto3_session": True,
                                               "service_whitelist": None,
                                               "passthrough": {"urls": [], "services": ["apigatewaymanagementapi"]}}})
        self._mock.start()
        import boto3

        if str(LAMBDA_DIR) not in sys.path:
            sys.path.insert(0, str(LAMBDA_DIR))
        import ws_bridge

        db = boto3.client("dynamodb", region_name="us-east-1")
        for table, key in ((CACHE_TABLE, "key"), (RUNS_TABLE, "run_id")):
            db.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        create_bridge_resources(db, sm, self.agents_text)
        sm.create_secret(Name=CLIENT_KEY_SECRET, SecretString=self.client_key)
        ws_bridge.clients.__init__()  # a fresh container's clients, made under moto
        self.lambdas.warm = True
        self.lambdas.pool.append(self.lambdas.container())
        return self

    async def stop(self) -> None:
        await self.front.stop()
        self.lambdas.close()
        if self._mock is not None:
            self._mock.stop()
        restore_env(self._saved)

    @property
    def url(self) -> str:
        return self.front.url

    # --------------------------------------------------------------------------------------- Lambda

    async def _call(self, function: str, event: Any, timeout: float = 28.0) -> Any:
        return await self.lambdas.call(function, event, timeout)

    async def _invoke_ws(self, event: dict[str, Any]) -> Any:
        return await self._call("bridge_handler", event)

    async def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                      ) -> tuple[int, Any]:
        """A client's request through API Gateway's REST API to the API function."""
        text = None if body is None else (body if isinstance(body, str) else json.dumps(body))
        result = await self._call("lambda_handler", proxy_event(method, path, headers=headers or {}, body=text))
        response = response_of(result)
        return response.status, response.json

    async def tick(self) -> None:
        """Deliver the queued async invokes to the runner function."""
        while self.queued_runs:
            run_id = self.queued_runs.pop(0)
            await self._call("run_handler", {"run_id": run_id}, timeout=900.0)

    # -------------------------------------------------------------------------------- inspection

    async def online(self) -> list[str]:
        from ws_bridge import Tables

        return sorted(entry.agent_id for entry in Tables().agents())

    def hibernate(self, agent_id: str) -> bool:
        """Every container goes cold (Lambda keeps no state between invocations it promises to keep)."""
        self.lambdas.cold()
        return True

    def constructed(self) -> int:
        return self.lambdas.containers

    def heartbeats_answered(self) -> int:
        """Heartbeat acks the $default route posted."""
        return sum(1 for text in self.front.posted if json.loads(text).get("type") == "heartbeat:ack")

    async def make_stale(self, agent_id: str) -> None:
        """API Gateway loses the agent's connection without a $disconnect: posts to it answer 410."""
        from ws_bridge import Tables

        entry = next(e for e in Tables().agents() if e.agent_id == agent_id)
        self.front.gone.add(entry.connection)
