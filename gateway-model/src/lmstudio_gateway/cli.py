"""``lmstudio-gateway``: serve a GGUF (the embedded SmolLM2 by default) behind a key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from lmstudio_gateway.models import DEFAULT_MODEL_ALIAS, ModelNotFoundError, default_model_path
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
    exit_with_parent: Annotated[bool, typer.Option(hidden=True, help="Stop when the parent process dies.")] = False,
    lora: Annotated[Optional[Path], typer.Option(help="GGUF LoRA adapter to apply [default: the shipped tool adapter "
                                                      "for the embedded model, none for --model]")] = None,
    bare: Annotated[bool, typer.Option("--bare", help="Serve the model without any adapter.")] = False,
) -> None:
    """Serve the model on HOST:PORT; every route but GET /health needs 'Authorization: Bearer <key>'."""
    key = api_key or os.environ.get(API_KEY_ENV)
    if not key:
        key = generate_api_key()
        # Shown this once only, on the terminal; it is never logged.
        typer.echo(f"API key (send as 'Authorization: Bearer <key>'): {key}")
    config = GatewayConfig(
        api_key=key, model_path=model, model_alias=model_alias, host=host, port=port,
        n_ctx=n_ctx, n_threads=n_threads, verbose=verbose, exit_with_parent=exit_with_parent, lora_path=lora, bare=bare,
    )
    try:
        serve(config)
    except ModelNotFoundError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except (ValueError, RuntimeError) as exc:  # llama_cpp reports a model it cannot load as ValueError
        console.print(f"[bold red]error:[/] could not load the model: {escape(str(exc))}")
        raise typer.Exit(1) from None


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
