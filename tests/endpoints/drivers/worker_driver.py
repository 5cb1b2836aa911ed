"""The Cloudflare Worker (cloudflare/src/entry.py) as an endpoint driver for the shared contract scenarios.

BOUNDARY: workerd cannot start a Python Worker here, so the Worker runs in-process under CPython. The real
``entry.py``, ``kv_cache.py`` and core package handle each request and call the real loopback upstream over
HTTP; only the runtime around them is stood in for (tests/cloudflare/runtime.py): the ``workers`` SDK's
Request/Response/WorkerEntrypoint, the KV namespace bound as ``CACHE`` and ``self.env``'s vars and secrets.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Optional
from collections.abc import Mapping

from tests.cloudflare.runtime import DurableObjectNamespace, ExecutionContext, KVNamespace, Request, WorkerEnv, load_entry

from .base import DriverResponse, EndpointConfig, Headers, RequestBody, SSEReader, StreamResult

WORKER_ORIGIN = "https://lmstudio-agent.example.workers.dev"


def worker_env(config: EndpointConfig, kv: KVNamespace) -> WorkerEnv:
    """``self.env`` as wrangler.toml's [vars], `wrangler secret put` and the KV binding would give it."""
    vars_ = {
        "LM_STUDIO_URL": config.upstream_url,
        "LM_STUDIO_MODEL": config.model,
        "LM_TOOL_MODE": config.tool_mode,
        "EXECUTE_DEADLINE_SECONDS": f"{config.deadline_seconds:g}",
        "CACHE_TTL_SECONDS": str(config.cache_ttl_seconds),
    }
    if config.allowed_tools is not None:
        vars_["ALLOWED_TOOLS"] = ",".join(config.allowed_tools)
    secrets = {"CLIENT_API_KEY": config.client_key}
    if config.upstream_token:
        secrets["LM_STUDIO_TOKEN"] = config.upstream_token
    return WorkerEnv(vars=vars_, secrets=secrets, bindings={"CACHE": kv})


class WorkerDriver:
    """Each request: a fresh ``Default(ctx, env)`` (as the runtime makes one per event) and its ``fetch``, on
    one event loop that lives as long as the driver (a run's Durable Object alarm fires on it after the
    request that queued the run has been answered)."""

    name = "worker"
    supports_runs = True  # one Durable Object per run (cloudflare/src/do_runs.py)

    def __init__(self, config: EndpointConfig) -> None:
        self.kv = KVNamespace()
        self.env = worker_env(config, self.kv)
        self.entry = load_entry()
        self.runs = DurableObjectNamespace(self.entry.RunObject, self.env)
        self.env.RUNS = self.runs
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="workerd", daemon=True)
        self.thread.start()

    def _run(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def request(
        self, method: str, path: str, *, headers: Optional[Headers] = None, body: RequestBody = None
    ) -> DriverResponse:
        # A JS Request for GET/HEAD cannot carry a body: the runtime never hands the Worker one.
        if method.upper() in ("GET", "HEAD"):
            body = None
        request = Request(WORKER_ORIGIN + path, method=method, headers=headers or {}, body=body)
        return self._run(self._fetch(request))

    async def _fetch(self, request: Request) -> DriverResponse:
        worker = self.entry.Default(ExecutionContext(), self.env)
        response = await worker.fetch(request)
        return DriverResponse.from_parts(response.status, dict(response.headers.items()), await response.text())

    def stream(
        self, method: str, path: str, *, headers: Optional[Mapping[str, str]] = None, body: RequestBody = None,
        stop_after: Optional[int] = None,
    ) -> StreamResult:
        """``fetch`` and read the Response's body as the runtime would send it: chunk by chunk from its
        ReadableStream while the Worker is still writing (``stop_after``: cancel it after that many events)."""
        method = method.upper()
        if method in ("GET", "HEAD"):
            body = None
        request = Request(WORKER_ORIGIN + path, method=method, headers=dict(headers or {}), body=body)
        return self._run(self._stream(request, stop_after))

    async def _stream(self, request: Request, stop_after: Optional[int]) -> StreamResult:
        worker = self.entry.Default(ExecutionContext(), self.env)
        response = await worker.fetch(request)
        result = StreamResult(response.status, {k.lower(): v for k, v in dict(response.headers.items()).items()})
        if response.body is None:
            result.text = await response.text()
            return result
        reader = SSEReader(result, time.monotonic)
        stream = response.body.getReader()
        while True:
            chunk = await stream.read()
            if chunk.done:
                break
            reader.feed(bytes(chunk.value).decode("utf-8"))
            if stop_after is not None and len(result.events) >= stop_after:
                await response.body.cancel()
                break
        for _ in range(200):  # let the Worker's writer task see the cancel and wind down
            if not self.entry._PUMPS:
                break
            await asyncio.sleep(0.01)
        return result

    def cache_entries(self) -> int:
        return len(self.kv)

    def close(self) -> None:
        async def settle() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._run(settle())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def make_driver(config: EndpointConfig) -> WorkerDriver:
    return WorkerDriver(config)
