"""``lmstudio-agent``: run an instruction against any OpenAI-compatible base URL, with readable streamed events.

Needs the ``cli`` extra (typer, rich); the library itself does not.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from .connection import API_KEY_HELP, BASE_URL_HELP, CONNECT_HINT, MODEL_HELP, export_lines, read_server_file, server_file_path
from .errors import AgentError, ErrorCode
from .lmstudio import LMStudioAgent
from .messages import AgentMessage
from .modes import ToolMode

app = typer.Typer(help="Tool-using agents on small local models (LM Studio or any OpenAI-compatible server).",
                  no_args_is_help=True, add_completion=False)
console = Console()
err_console = Console(stderr=True)

STYLES = {"thought": "italic cyan", "action": "bold yellow", "result": "green", "error": "bold red"}


def render_message(message: AgentMessage) -> Text:
    """One event as a line of text: ``[action] tool(args)``, ``[result] ...``."""
    label = Text(f"[{message.type}] ", style=STYLES[message.type])
    if message.type == "action":
        return label + Text(f"{message.tool}({json.dumps(message.args or {}, ensure_ascii=False)})")
    body = message.content or ""
    prefix = f"{message.tool}: " if message.tool else ""
    code = f" ({message.code})" if message.code else ""
    return label + Text(f"{prefix}{body}{code}")


@app.command()
def run(
    instruction: str = typer.Argument(..., help="What the agent should do."),
    base_url: Optional[str] = typer.Option(None, "--base-url", show_default=False, help=BASE_URL_HELP),
    api_key: Optional[str] = typer.Option(None, "--api-key", show_default=False, help=API_KEY_HELP),
    model: Optional[str] = typer.Option(None, "--model", show_default=False, help=MODEL_HELP),
    mode: ToolMode = typer.Option(ToolMode.AUTO, "--mode", help="How tool calls are obtained."),
    tool: list[str] = typer.Option([], "--tool", "-t", help="A built-in tool to offer (repeat); default: all."),
    max_rounds: int = typer.Option(6, "--max-rounds", min=1, max=50),
    timeout: float = typer.Option(300.0, "--timeout", help="Deadline for the whole run, in seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print events as JSON lines."),
) -> None:
    """Run INSTRUCTION with the built-in tools and stream the agent's events."""
    agent = LMStudioAgent(model_name=model, base_url=base_url, api_key=api_key,
                          tool_mode=mode, max_rounds=max_rounds, run_timeout=timeout)

    def show(message: AgentMessage) -> None:
        if as_json:
            print(json.dumps(message.to_dict(), ensure_ascii=False), flush=True)
        else:
            console.print(render_message(message))

    async def main() -> None:
        try:
            with console.status(f"Connecting to {agent.client.base_url} ...", spinner="dots"):
                await agent.aload_model()
            if not as_json:
                console.print(Panel.fit(f"model [bold]{agent.model_name}[/] · mode [bold]{agent.tool_mode.value}[/]",
                                        title="lmstudio-agent"))
            await agent.aact(instruction, tools=tool or None, on_message=show)
        finally:
            await agent.client.aclose()

    try:
        asyncio.run(main())
    except AgentError as exc:
        err_console.print(f"[bold red]{exc.code.value}[/]: {exc.message}")
        if exc.code is ErrorCode.CONNECTION_FAILED:
            err_console.print(CONNECT_HINT)
        raise typer.Exit(2) from None


@app.command()
def openapi(output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to this file.")) -> None:
    """Print (or write) the OpenAPI document of the HTTP contract."""
    from .openapi import openapi_json

    text = openapi_json()
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)


@app.command("server-env")
def server_env() -> None:
    """Print the export lines for the model server `make serve-model` is running (eval "$(lmstudio-agent server-env)")."""
    info = read_server_file()
    if info is None:
        err_console.print(f"No model server is running (no live server file at {server_file_path()}): "
                          "start one with `make serve-model`.")
        raise typer.Exit(1)
    sys.stdout.write(export_lines(info))


PLUGIN_GROUP = "lmstudio_agent.cli"


def _mount_optional() -> None:
    """Sub-commands that need optional extras or other distributions, mounted when installed.

    ``bridge agent`` is the core's (the ``bridge`` extra); other distributions contribute commands through the
    ``lmstudio_agent.cli`` entry-point group, each a ``register(app)`` callable: ``lmstudio-hub`` adds
    ``bridge serve``, ``lmstudio-eval`` adds ``eval`` and ``finetune-tools``.
    """
    from importlib.metadata import entry_points

    try:
        from .bridge.cli import app as bridge_app
    except ModuleNotFoundError:  # the extra is not installed
        pass
    else:
        app.add_typer(bridge_app, name="bridge", help="The AI Bridge: WebSocket hub and agents.")
    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            register = entry.load()
        except ModuleNotFoundError:  # a contributing distribution whose own extras are missing
            continue
        register(app)


_mount_optional()


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()


if __name__ == "__main__":
    main()
