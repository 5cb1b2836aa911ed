"""``lmstudio-agent bridge serve``: run the hub (agents connect out to it; clients call its HTTP API).

Registered into the main CLI's ``bridge`` group through the ``lmstudio_agent.cli`` entry point.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Optional

import typer

from lmstudio_agent.bridge.cli import configure_logging
from lmstudio_agent.bridge.protocol import DEFAULT_BRIDGE_PORT
from lmstudio_agent.endpoint.cache import DEFAULT_TTL_SECONDS, MemoryCacheStore
from lmstudio_agent.endpoint.contract import ExecuteOptions
from lmstudio_agent.deadline import DEFAULT_DEADLINE_SECONDS

from .http import DEFAULT_HTTP_PORT, HubHttpApp, HubHttpServer
from .hub import BridgeHub
from .identities import IdentityError, IdentitySource

MIN_SECRET_CHARS = 16


def serve(
    host: str = typer.Option("127.0.0.1", "--host", envvar="BRIDGE_HOST",
                             help="Interface to listen on (0.0.0.0 to accept agents from other hosts)."),
    port: int = typer.Option(DEFAULT_BRIDGE_PORT, "--port", envvar="BRIDGE_PORT", help="WebSocket port for agents."),
    http_port: int = typer.Option(DEFAULT_HTTP_PORT, "--http-port", envvar="BRIDGE_HTTP_PORT",
                                  help="Port of the HTTP API (GET /health, POST /execute, /runs, the playground at /)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="BRIDGE_TOKEN", show_default=False,
                                        help="Shared secret agents present (simple mode: any agent_id, any tools)."),
    agents_file: Optional[Path] = typer.Option(None, "--agents-file", envvar="BRIDGE_AGENTS_FILE",
                                               help="Per-agent tokens, one 'agent_id: token tools' a line; re-read "
                                                    "when it changes and on SIGHUP (a removed agent is disconnected)."),
    api_key: str = typer.Option(..., "--api-key", envvar="BRIDGE_API_KEY", show_default=False,
                                help="Client key for POST /execute."),
    default_model: str = typer.Option("", "--default-model", envvar="BRIDGE_DEFAULT_MODEL",
                                      help="Model for requests that name none (empty: any agent)."),
    deadline: float = typer.Option(DEFAULT_DEADLINE_SECONDS, "--deadline", envvar="EXECUTE_DEADLINE_SECONDS",
                                   help="Deadline of one /execute request, queueing and retries included."),
    task_timeout: float = typer.Option(60.0, "--task-timeout", help="Limit of one attempt on one agent (s)."),
    max_attempts: int = typer.Option(3, "--max-attempts", min=1, help="Agents a task is tried on at most."),
    max_queue: int = typer.Option(256, "--max-queue", min=0, help="Tasks waiting for a free agent before HUB_BUSY."),
    cache_ttl: int = typer.Option(DEFAULT_TTL_SECONDS, "--cache-ttl", envvar="CACHE_TTL_SECONDS", min=0,
                                  help="Seconds answers stay cached (0: no cache)."),
    ping_interval: float = typer.Option(10.0, "--ping-interval", help="Keepalive ping period (s)."),
    ping_timeout: float = typer.Option(10.0, "--ping-timeout", help="An agent silent this long after a ping is dropped."),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Run the hub: agents connect to ws://HOST:PORT, clients call http://HOST:HTTP_PORT/execute."""
    configure_logging(log_level)
    secrets = [("--api-key/BRIDGE_API_KEY", api_key)] + ([("--token/BRIDGE_TOKEN", token)] if token else [])
    for name, secret in secrets:
        if len(secret) < MIN_SECRET_CHARS:
            typer.echo(f"error: {name} must be at least {MIN_SECRET_CHARS} characters", err=True)
            raise typer.Exit(2)
    source = IdentitySource(shared_token=token or None, agents_file=agents_file,
                            agents_env=os.environ.get("BRIDGE_AGENTS") or None)
    try:
        identities = source.load()
    except IdentityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if identities.empty:
        typer.echo("error: give agents a way in: --agents-file/BRIDGE_AGENTS_FILE, BRIDGE_AGENTS or --token/BRIDGE_TOKEN",
                   err=True)
        raise typer.Exit(2)
    if identities.authenticate(api_key) is not None:
        typer.echo("error: an agent token and the clients' API key must differ", err=True)
        raise typer.Exit(2)

    async def main() -> None:
        hub = BridgeHub(identities=source, default_model=default_model, max_attempts=max_attempts,
                        task_timeout=task_timeout, default_deadline=deadline, max_queue=max_queue,
                        ping_interval=ping_interval, ping_timeout=ping_timeout)
        options = ExecuteOptions(deadline_seconds=deadline, cache_ttl_seconds=cache_ttl)
        http = HubHttpServer(HubHttpApp(hub, api_key=api_key, cache=MemoryCacheStore() if cache_ttl else None,
                                        options=options))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, hub.reload_identities)  # revoke an agent without a restart
        await hub.start(host, port)
        try:
            await http.start(host, http_port)
            try:
                print(f"AI Bridge hub: agents ws://{host}:{hub.port}  HTTP http://{host}:{http.port}  "
                      f"playground http://{host}:{http.port}/", flush=True)
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


def register(app: typer.Typer) -> None:
    """Add ``bridge serve`` to the main CLI (entry point ``lmstudio_agent.cli``)."""
    from lmstudio_agent.bridge.cli import app as bridge_app

    bridge_app.command("serve")(serve)
