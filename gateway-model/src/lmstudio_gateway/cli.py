"""``lmstudio-gateway``: serve a GGUF (the embedded SmolLM2 by default) behind a key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from lmstudio_agent.model.connection import ENV_API_KEY, ServerInfo, export_lines, remove_server_file, write_server_file

from lmstudio_gateway.models import DEFAULT_MODEL_ALIAS, ModelNotFoundError, default_model_path
from lmstudio_gateway.guard import DEFAULT_MAX_REQUEST_SECONDS
from lmstudio_gateway.server import API_KEY_ENV, DEFAULT_N_CTX, GatewayConfig, generate_api_key, serve

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Serve a GGUF (the embedded SmolLM2 by default) behind a key.")
# soft_wrap: a path in an error message must stay on one line (logs and tests grep for it).
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _root() -> None:
    """The embedded model host: llama-cpp-python's OpenAI-compatible server, keyed, LM Studio dialect."""


@app.command("serve")
def serve_command(
    model: Annotated[Optional[Path], typer.Option(help="GGUF file to serve [default: the embedded SmolLM2-135M]")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (LM Studio's default is 1234).")] = 1234,
    api_key: Annotated[
        Optional[str],
        typer.Option(help=f"Bearer key clients must send [default: ${API_KEY_ENV}, else a generated one]", show_default=False),
    ] = None,
    n_ctx: Annotated[int, typer.Option(help="Context size in tokens.")] = DEFAULT_N_CTX,
    n_threads: Annotated[Optional[int], typer.Option(help="CPU threads [default: llama-cpp-python's]")] = None,
    model_alias: Annotated[str, typer.Option(help="The model id clients see.")] = DEFAULT_MODEL_ALIAS,
    verbose: Annotated[bool, typer.Option(help="llama.cpp's own load and timing logs.")] = False,
    server_file: Annotated[
        bool,
        typer.Option(help="While serving, write URL, key and model to the server file that lmstudio-agent and "
                          "LMStudioAgent() read (removed on exit), and print the export lines."),
    ] = True,
    max_request_seconds: Annotated[
        float,
        typer.Option(min=1.0, envvar="GATEWAY_MAX_REQUEST_SECONDS",
                     help="Wall-clock limit of one request: generation stops there (504 if nothing was sent yet)."),
    ] = DEFAULT_MAX_REQUEST_SECONDS,
    exit_with_parent: Annotated[bool, typer.Option(hidden=True, help="Stop when the parent process dies.")] = False,
    lora: Annotated[Optional[Path], typer.Option(help="GGUF LoRA adapter to apply [default: the shipped tool adapter "
                                                      "for the embedded model, none for another model]")] = None,
    bare: Annotated[bool, typer.Option("--bare/--tools-adapter",
                                       help="Serve the embedded model bare, or with the shipped tool adapter "
                                            "[default: the adapter].")] = False,
) -> None:
    """Serve the model on HOST:PORT; every route but GET /health needs 'Authorization: Bearer <key>'."""
    key = api_key or os.environ.get(API_KEY_ENV)
    generated = not key
    if not key:
        key = generate_api_key()
        if not server_file:
            # Shown this once only, on the terminal; it is never logged.
            typer.echo(f"API key (send as 'Authorization: Bearer <key>'): {key}")
    config = GatewayConfig(
        api_key=key, model_path=model, model_alias=model_alias, host=host, port=port,
        n_ctx=n_ctx, n_threads=n_threads, verbose=verbose, exit_with_parent=exit_with_parent,
        max_request_seconds=max_request_seconds, lora_path=lora, bare=bare,
    )
    info = ServerInfo(f"http://{_client_host(host)}:{port}/v1", key, model_alias, os.getpid())
    on_started = on_stopped = None
    if server_file:
        def on_started() -> None:
            path = write_server_file(info)
            typer.echo(_banner(info, path, generated), nl=False)

        def on_stopped() -> None:
            remove_server_file(info.pid)  # type: ignore[arg-type]
    try:
        serve(config, on_started=on_started, on_stopped=on_stopped)
    except ModelNotFoundError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except (ValueError, RuntimeError) as exc:  # llama_cpp reports a model it cannot load as ValueError
        console.print(f"[bold red]error:[/] could not load the model: {escape(str(exc))}")
        raise typer.Exit(1) from None


def _client_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, f"[{host}]" if ":" in host else host)


def _banner(info: ServerInfo, path: Path, generated: bool) -> str:
    """What a person needs to use the server: where it is, its key (once, when generated), the export lines."""
    lines = export_lines(info).splitlines()
    if not generated:  # the key is the one the user gave: not echoed
        lines = [line if not line.startswith(f"export {ENV_API_KEY}=") else
                 f"export {ENV_API_KEY}=...   # the key you gave (--api-key or ${API_KEY_ENV})" for line in lines]
    key_note = "a new key, shown only here" if generated else f"the key from --api-key or ${API_KEY_ENV}"
    return (
        f"\nServing {info.model} at {info.base_url} ({key_note}; send it as 'Authorization: Bearer <key>').\n"
        f"While it runs, lmstudio-agent (run, bridge agent, eval) and LMStudioAgent() use it with no options:\n"
        f"they read {path}.\nFor other tools, in another shell: eval \"$(lmstudio-agent server-env)\", or\n"
        + "".join(f"  {line}\n" for line in lines) + "\n"
    )


@app.command("model-path")
def model_path_command() -> None:
    """Print the path of the embedded GGUF."""
    try:
        typer.echo(default_model_path())
    except ModelNotFoundError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


def main() -> None:
    app()
