"""``lmstudio-agent bridge``: connect an agent to a hub (``agent``).

Mounted into the main CLI as ``bridge``. The hub itself (``bridge serve``) comes from the ``lmstudio-hub``
distribution, which adds its command to this group when it is installed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any, Optional

import typer

from ..model.connection import API_KEY_HELP, BASE_URL_HELP, MODEL_HELP
from ..errors import AgentError
from ..model.modes import ToolMode
from .protocol import DEFAULT_BRIDGE_URL

app = typer.Typer(help="The AI Bridge: a WebSocket hub that agents connect out to.", no_args_is_help=True,
                  add_completion=False)


@app.callback()
def bridge() -> None:
    """The AI Bridge: connect an agent to a hub (``agent``); ``serve`` runs the hub (lmstudio-hub)."""


def configure_logging(level: str) -> None:
    """Log lines with time, level and logger; websockets and httpx only from WARNING."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # websockets and httpx log every connection or request at INFO; the bridge logs what matters itself.
    for noisy in ("websockets", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


@app.command()
def agent(
    bridge_url: str = typer.Option(DEFAULT_BRIDGE_URL, "--bridge-url", envvar="BRIDGE_URL", help="The hub's WebSocket URL."),
    token: str = typer.Option(..., "--token", envvar="BRIDGE_TOKEN", show_default=False, help="The hub's agent token."),
    base_url: Optional[str] = typer.Option(None, "--base-url", show_default=False, help=BASE_URL_HELP),
    api_key: Optional[str] = typer.Option(None, "--api-key", show_default=False, help=API_KEY_HELP),
    model: Optional[str] = typer.Option(None, "--model", show_default=False, help=MODEL_HELP),
    agent_id: str = typer.Option("lm-studio-agent", "--agent-id", envvar="BRIDGE_AGENT_ID"),
    mode: ToolMode = typer.Option(ToolMode.AUTO, "--mode", case_sensitive=False,
                                  help="How tool calls are obtained (auto: detected from the model server)."),
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

    configure_logging(log_level)
    options: dict[str, Any] = {}
    if model:
        options["model_name"] = model
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
