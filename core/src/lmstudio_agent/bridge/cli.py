"""``lmstudio-agent bridge``: run the hub (``serve``) or connect an agent to one (``agent``).

Mounted into the main CLI as ``bridge``; ``python -m lmstudio_agent.bridge.cli`` runs it on its own.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Optional

import typer

from ..cache import MemoryCacheStore
from ..contract import DEFAULT_DEADLINE_SECONDS, ExecuteOptions
from ..errors import AgentError
from .protocol import DEFAULT_BRIDGE_PORT, DEFAULT_BRIDGE_URL

app = typer.Typer(help="The AI Bridge: a WebSocket hub that agents connect out to.", no_args_is_help=True,
                  add_completion=False)

MIN_SECRET_CHARS = 16


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # websockets and httpx log every connection or request at INFO; the bridge logs what matters itself.
    for noisy in ("websockets", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", envvar="BRIDGE_HOST",
                             help="Interface to listen on (0.0.0.0 to accept agents from other hosts)."),
    port: int = typer.Option(DEFAULT_BRIDGE_PORT, "--port", envvar="BRIDGE_PORT", help="WebSocket port for agents."),
    http_port: int = typer.Option(65029, "--http-port", envvar="BRIDGE_HTTP_PORT",
                                  help="Port of the HTTP API (GET /health, POST /execute)."),
    token: str = typer.Option(..., "--token", envvar="BRIDGE_TOKEN", show_default=False,
                              help="Secret agents present (Authorization: Bearer)."),
    api_key: str = typer.Option(..., "--api-key", envvar="BRIDGE_API_KEY", show_default=False,
                                help="Client key for POST /execute."),
    default_model: str = typer.Option("", "--default-model", envvar="BRIDGE_DEFAULT_MODEL",
                                      help="Model for requests that name none (empty: any agent)."),
    deadline: float = typer.Option(DEFAULT_DEADLINE_SECONDS, "--deadline", envvar="EXECUTE_DEADLINE_SECONDS",
                                   help="Deadline of one /execute request, queueing and retries included."),
    task_timeout: float = typer.Option(60.0, "--task-timeout", help="Limit of one attempt on one agent (s)."),
    max_attempts: int = typer.Option(3, "--max-attempts", min=1, help="Agents a task is tried on at most."),
    max_queue: int = typer.Option(256, "--max-queue", min=0, help="Tasks waiting for a free agent before HUB_BUSY."),
    cache_ttl: int = typer.Option(3600, "--cache-ttl", envvar="CACHE_TTL_SECONDS", min=0,
                                  help="Seconds answers stay cached (0: no cache)."),
    ping_interval: float = typer.Option(10.0, "--ping-interval", help="Keepalive ping period (s)."),
    ping_timeout: float = typer.Option(10.0, "--ping-timeout", help="An agent silent this long after a ping is dropped."),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Run the hub: agents connect to ws://HOST:PORT, clients call http://HOST:HTTP_PORT/execute."""
    from .http import HubHttpApp, HubHttpServer
    from .hub import BridgeHub

    _logging(log_level)
    for name, secret in (("--token/BRIDGE_TOKEN", token), ("--api-key/BRIDGE_API_KEY", api_key)):
        if len(secret) < MIN_SECRET_CHARS:
            typer.echo(f"error: {name} must be at least {MIN_SECRET_CHARS} characters", err=True)
            raise typer.Exit(2)
    if token == api_key:
        typer.echo("error: the agents' token and the clients' API key must differ", err=True)
        raise typer.Exit(2)

    async def main() -> None:
        hub = BridgeHub(token, default_model=default_model, max_attempts=max_attempts, task_timeout=task_timeout,
                        default_deadline=deadline, max_queue=max_queue, ping_interval=ping_interval,
                        ping_timeout=ping_timeout)
        options = ExecuteOptions(deadline_seconds=deadline, cache_ttl_seconds=cache_ttl)
        http = HubHttpServer(HubHttpApp(hub, api_key=api_key, cache=MemoryCacheStore() if cache_ttl else None,
                                        options=options))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await hub.start(host, port)
        try:
            await http.start(host, http_port)
            try:
                print(f"AI Bridge hub: agents ws://{host}:{hub.port}  HTTP http://{host}:{http.port}", flush=True)
                await stop.wait()
            finally:
                await http.stop()
        finally:
            await hub.stop()

    try:
        asyncio.run(main())
    except OSError as exc:
        typer.echo(f"error: cannot listen: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def agent(
    bridge_url: str = typer.Option(DEFAULT_BRIDGE_URL, "--bridge-url", envvar="BRIDGE_URL", help="The hub's WebSocket URL."),
    token: str = typer.Option(..., "--token", envvar="BRIDGE_TOKEN", show_default=False, help="The hub's agent token."),
    base_url: Optional[str] = typer.Option(None, "--base-url", envvar="LM_STUDIO_API_BASE",
                                           help="OpenAI-compatible model server [default: http://localhost:1234/v1]."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="LM_API_TOKEN", show_default=False,
                                          help="Bearer token for the model server."),
    model: Optional[str] = typer.Option(None, "--model", envvar="LM_STUDIO_MODEL", help="Model id on that server."),
    agent_id: str = typer.Option("lm-studio-agent", "--agent-id", envvar="BRIDGE_AGENT_ID"),
    mode: Optional[str] = typer.Option(None, "--mode", help="Tool-call mode (auto, native, grammar, prompt)."),
    tool: list[str] = typer.Option([], "--tool", "-t", help="A built-in tool to offer (repeat); default: all. "
                                                            "MCP tools: allowedTools in --mcp-config."),
    timeout: float = typer.Option(300.0, "--timeout", help="Deadline of one task on this agent (s)."),
    mcp_config: Optional[str] = typer.Option(
        None, "--mcp-config", help="An mcp.json (LM Studio's format): the agent offers its servers' tools to the hub "
                                   "too (needs the mcp extra; choose them with allowedTools in the file)."),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Run an LMStudioAgent on a model server and serve the hub's tasks with it (no inbound port needed)."""
    from ..builtins import builtin_registry
    from ..lmstudio import LMStudioAgent

    _logging(log_level)
    options: dict = {}
    if model:
        options["model_name"] = model
    if mode:
        options["tool_mode"] = mode
    if tool:
        options["tools"] = builtin_registry().select(tool)
    try:
        lm_agent = LMStudioAgent(bridge_url=bridge_url, agent_id=agent_id, base_url=base_url, api_key=api_key,
                                 run_timeout=timeout, bridge_token=token, mcp_config=mcp_config, **options)
    except AgentError as exc:
        typer.echo(f"{exc.code.value}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    except ModuleNotFoundError as exc:  # --mcp-config without the mcp extra
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        serving = asyncio.ensure_future(lm_agent.connect_to_bridge())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (serving, stopping):
                task.cancel()
            await asyncio.gather(serving, stopping, return_exceptions=True)
            await lm_agent.aclose()  # MCP servers stopped, connections closed
        if serving.done() and not serving.cancelled() and serving.exception() is not None:
            raise serving.exception()  # type: ignore[misc]

    try:
        asyncio.run(main())
    except AgentError as exc:  # BridgeConnectionError, BridgeRefusedError, a model that would not load
        typer.echo(f"{exc.code.value}: {exc.message}", err=True)
        raise typer.Exit(2) from None


if __name__ == "__main__":
    app(prog_name=f"{sys.executable} -m lmstudio_agent.bridge.cli")
