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

from .client import DEFAULT_BASE_URL, DEFAULT_MODEL
from .errors import AgentError
from .lmstudio import LMStudioAgent
from .messages import AgentMessage, answered
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
    base_url: str = typer.Option(None, "--base-url", envvar="LM_STUDIO_API_BASE",
                                 help=f"OpenAI-compatible base URL [default: {DEFAULT_BASE_URL}]"),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="LM_API_TOKEN", show_default=False,
                                          help="Bearer token for the model server."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", envvar="LM_STUDIO_MODEL"),
    mode: ToolMode = typer.Option(ToolMode.AUTO, "--mode", help="How tool calls are obtained."),
    tool: list[str] = typer.Option([], "--tool", "-t", help="A built-in tool to offer (repeat); default: all."),
    max_rounds: int = typer.Option(6, "--max-rounds", min=1, max=50),
    timeout: float = typer.Option(300.0, "--timeout", help="Deadline for the whole run, in seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print events as JSON lines."),
) -> None:
    """Run INSTRUCTION with the built-in tools and stream the agent's events.

    Exit status: 0 with an answer, 1 when the run ended without one (NO_ANSWER), 2 on an error."""
    agent = LMStudioAgent(model_name=model, base_url=base_url or DEFAULT_BASE_URL, api_key=api_key,
                          tool_mode=mode, max_rounds=max_rounds, run_timeout=timeout)

    def show(message: AgentMessage) -> None:
        if as_json:
            print(json.dumps(message.to_dict(), ensure_ascii=False), flush=True)
        else:
            console.print(render_message(message))

    async def main() -> list[AgentMessage]:
        try:
            with console.status(f"Connecting to {agent.client.base_url} ...", spinner="dots"):
                await agent.aload_model()
            if not as_json:
                console.print(Panel.fit(f"model [bold]{model}[/] · mode [bold]{agent.tool_mode.value}[/]",
                                        title="lmstudio-agent"))
            return await agent.aact(instruction, tools=tool or None, on_message=show)
        finally:
            await agent.client.aclose()

    try:
        transcript = asyncio.run(main())
    except AgentError as exc:
        err_console.print(f"[bold red]{exc.code.value}[/]: {exc.message}")
        raise typer.Exit(2) from None
    if not answered(transcript):  # the run ended without an answer (NO_ANSWER): not a success
        raise typer.Exit(1)


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


def _mount_optional() -> None:
    """Sub-commands whose modules need optional extras: mounted when importable."""
    try:
        from .bridge.cli import app as bridge_app
    except ModuleNotFoundError:  # the extra is not installed
        pass
    else:
        app.add_typer(bridge_app, name="bridge", help="The AI Bridge: WebSocket hub and agents.")
    try:
        from .eval.cli import register as register_eval
    except ModuleNotFoundError:  # the extra is not installed
        pass
    else:
        register_eval(app)


_mount_optional()


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()


if __name__ == "__main__":
    main()
