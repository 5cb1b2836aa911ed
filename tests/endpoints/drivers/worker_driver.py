"""The Cloudflare Worker (cloudflare/src/entry.py) as an endpoint driver for the shared contract scenarios.

BOUNDARY: workerd cannot start a Python Worker here, so the Worker runs in-process under CPython. The real
``entry.py``, ``kv_cache.py`` and core package handle each request and call the real loopback upstream over
HTTP; only the runtime around them is stood in for (tests/cloudflare/runtime.py): the ``workers`` SDK's
Request/Response/WorkerEntrypoint, the KV namespace bound as ``CACHE`` and ``self.env``'s vars and secrets.
"""

from __future__ import annotations

import asyncio
from typing import Mapping, Optional

from tests.cloudflare.runtime import ExecutionContext, KVNamespace, Request, WorkerEnv, load_entry

from .base import DriverResponse, EndpointConfig, Headers, RequestBody

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
    """Each request: a fresh ``Default(ctx, env)`` (as the runtime makes one per event) and its ``fetch``."""

    name = "worker"

    def __init__(self, config: EndpointConfig) -> None:
        self.kv = KVNamespace()
        self.env = worker_env(config, self.kv)
        self.entry = load_entry()

    def request(
        self, method: str, path: str, *, headers: Optional[Headers] = None, body: RequestBody = None
    ) -> DriverResponse:
        # A JS Request for GET/HEAD cannot carry a body: the runtime never hands the Worker one.
        if method.upper() in ("GET", "HEAD"):
            body = None
        request = Request(WORKER_ORIGIN + path, method=method, headers=headers or {}, body=body)
        return asyncio.run(self._fetch(request))

    async def _fetch(self, request: Request) -> DriverResponse:
        worker = self.entry.Default(ExecutionContext(), self.env)
        response = await worker.fetch(request)
        return DriverResponse.from_parts(response.status, dict(response.headers.items()), await response.text())

    def cache_entries(self) -> int:
        return len(self.kv)

    def close(self) -> None:
        pass


def make_driver(config: EndpointConfig) -> WorkerDriver:
    return WorkerDriver(config)
