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
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from .model.connection import API_KEY_HELP, BASE_URL_HELP, CONNECT_HINT, MODEL_HELP, export_lines, read_server_file, server_file_path
from .errors import AgentError, ErrorCode
from .agent.events import RunEvent
from .lmstudio import LMStudioAgent
from .agent.messages import AgentMessage, answered
from .model.modes import ToolMode

app = typer.Typer(help="Tool-using agents on small local models (LM Studio or any OpenAI-compatible server).",
                  no_args_is_help=True, add_completion=False)
console = Console()
err_console = Console(stderr=True)

STYLES = {"thought": "italic cyan", "action": "bold yellow", "result": "green", "error": "bold red"}


def render_message(message: AgentMessage) -> Text:
    """One event as a line of text: ``[action] tool(args)``, ``[result] ...``.

    Args:
        message: A transcript message.
    """
    label = Text(f"[{message.type}] ", style=STYLES[message.type])
    if message.type == "action":
        return label + Text(f"{message.tool}({json.dumps(message.args or {}, ensure_ascii=False)})")
    body = message.content or ""
    prefix = f"{message.tool}: " if message.tool else ""
    code = f" ({message.code})" if message.code else ""
    return label + Text(f"{prefix}{body}{code}")


class StreamView:
    """Prints a run's events as they come: the model's text as it is written, then each message as a line
    (a thought or answer that was just streamed is not printed twice: its label closes the streamed text).

    Args:
        out: The console to print on.
    """

    def __init__(self, out: Console) -> None:
        """Start with nothing streamed."""
        self.out = out
        self.streamed = ""

    def show(self, event: RunEvent) -> None:
        """Print one event: a text delta as it comes, a message as a line.

        Args:
            event: The run's next event.
        """
        if event.type == "step-start":
            self.end()
        elif event.type == "text-delta" and event.delta:
            if not self.streamed:
                self.out.print(Text("» ", style="dim"), end="")
            self.streamed += event.delta
            self.out.print(Text(event.delta), end="", soft_wrap=True)
            self.out.file.flush()
        elif event.message is not None:
            message = event.message
            said = self.streamed.strip()
            self.end()
            if said and message.type in ("thought", "result") and not message.tool and (message.content or "") == said:
                self.out.print(Text(f"[{message.type}] ", style=STYLES[message.type]) + Text("(streamed above)", style="dim"))
            else:
                self.out.print(render_message(message))

    def end(self) -> None:
        """End the line of streamed text, if one is open."""
        if self.streamed:
            self.out.print()
            self.streamed = ""


@app.command()
def run(
    instruction: str = typer.Argument(..., help="What the agent should do."),
    base_url: Optional[str] = typer.Option(None, "--base-url", show_default=False, help=BASE_URL_HELP),
    api_key: Optional[str] = typer.Option(None, "--api-key", show_default=False, help=API_KEY_HELP),
    model: Optional[str] = typer.Option(None, "--model", show_default=False, help=MODEL_HELP),
    mode: ToolMode = typer.Option(ToolMode.AUTO, "--mode", help="How tool calls are obtained."),
    tool: list[str] = typer.Option([], "--tool", "-t", help="A tool to offer, built-in or from an MCP server "
                                                            "(repeat); default: all."),
    max_rounds: int = typer.Option(6, "--max-rounds", min=1, max=50),
    timeout: float = typer.Option(300.0, "--timeout", help="Deadline for the whole run, in seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print events as JSON lines."),
    mcp_config: Optional[str] = typer.Option(
        None, "--mcp-config", help="An mcp.json (LM Studio's format): its servers' tools join the built-in ones "
                                   "(needs the mcp extra)."),
) -> None:
    """Run INSTRUCTION with the built-in tools (and any MCP servers' tools); the model's text and the agent's
    steps show as they happen.

    Exit status: 0 with an answer, 1 when the run ended without one (NO_ANSWER), 2 on an error.
    \f

    Args:
        instruction: What the agent should do.
        base_url: The server's URL (default: the environment's, then the server file's, then LM Studio's).
        api_key: The server's API key.
        model: The model's id (default: the server's).
        mode: How tool calls are obtained (``auto``: picked per model).
        tool: The tools to offer, built-in or from an MCP server (default: all).
        max_rounds: The most model calls the run makes.
        timeout: The deadline for the whole run, in seconds.
        as_json: Print events as JSON lines instead of text.
        mcp_config: An ``mcp.json`` whose servers' tools join the built-in ones.
    """
    try:
        agent = LMStudioAgent(model_name=model, base_url=base_url, api_key=api_key,
                              tool_mode=mode, max_rounds=max_rounds, run_timeout=timeout, mcp_config=mcp_config)
    except AgentError as exc:  # an unusable mcp.json
        err_console.print(f"[bold red]{exc.code.value}[/]: {escape(exc.message)}")
        raise typer.Exit(2) from None
    except ModuleNotFoundError as exc:  # --mcp-config without the mcp extra
        err_console.print(f"[bold red]error[/]: {escape(str(exc))}")
        raise typer.Exit(2) from None

    async def main() -> list[AgentMessage]:
        try:
            with console.status(f"Connecting to {agent.client.base_url} ...", spinner="dots"):
                await agent.aload_model()
            if not as_json:
                servers = agent.mcp_servers
                mcp = f" · MCP tools [bold]{len(servers.tools)}[/]" if servers is not None else ""
                mode = agent.tool_mode.value if agent.tool_mode is not None else "auto"
                console.print(Panel.fit(f"model [bold]{agent.model_name}[/] · mode [bold]{mode}[/]{mcp}",
                                        title="lmstudio-agent"))
            transcript: list[AgentMessage] = []
            view = StreamView(console)
            async for event in agent.astream(instruction, tools=tool or None):
                if event.type == "message" and event.message is not None:
                    transcript.append(event.message)
                    if as_json:
                        print(json.dumps(event.message.to_dict(), ensure_ascii=False), flush=True)
                if not as_json:
                    view.show(event)
            view.end()
            return transcript
        finally:
            await agent.aclose()  # MCP servers stopped, connections closed

    try:
        transcript = asyncio.run(main())
    except AgentError as exc:
        err_console.print(f"[bold red]{exc.code.value}[/]: {escape(exc.message)}")
        if exc.code is ErrorCode.CONNECTION_FAILED:
            err_console.print(CONNECT_HINT)
        raise typer.Exit(2) from None
    if not answered(transcript):  # the run ended without an answer (NO_ANSWER): not a success
        raise typer.Exit(1)


@app.command()
def openapi(output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to this file.")) -> None:
    """Print (or write) the OpenAPI document of the HTTP contract.
    \f

    Args:
        output: Write the document to this file instead of printing it.
    """
    from .endpoint.openapi import openapi_json

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
    """The ``lmstudio-agent`` entry point (UTF-8 output, then the typer app)."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()


if __name__ == "__main__":
    main()
