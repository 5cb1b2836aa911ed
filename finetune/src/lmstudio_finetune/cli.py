"""``lmstudio-finetune``: the whole pipeline from a JSONL file (validate -> Axolotl LoRA -> GGUF -> LM Studio)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer
import yaml
from lmstudio_agent.errors import AgentError, ErrorCode
from rich.console import Console
from rich.markup import escape

from .dataset import DatasetError, read_jsonl_numbered
from .models import DEFAULT_BASE_MODEL

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Fine-tune a small model with Axolotl, convert it to GGUF and load it into LM Studio.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _overrides(pairs: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--set")
        overrides[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return overrides


def _exit_for(error: AgentError) -> int:
    return EXIT_BAD_INPUT if error.code == ErrorCode.INVALID_REQUEST else EXIT_FAILED


class Rows(list):
    """The rows of a JSONL file, with the file line each came from (so errors name the line an editor shows)."""

    def __init__(self, data: Path) -> None:
        numbered = read_jsonl_numbered(data)
        super().__init__(row for _, row in numbered)
        self.path = data
        self.lines = [number for number, _ in numbered]

    def describe(self, exc: AgentError) -> str:
        """The error's message, a bad row named by its line in the file."""
        if isinstance(exc, DatasetError) and exc.row is not None and exc.message.startswith(f"row {exc.row}: "):
            return f"line {self.lines[exc.row - 1]} of {self.path} (row {exc.row}): {exc.problem}"
        return exc.message


def _load_rows(data: Path) -> Rows:
    try:
        return Rows(data)
    except DatasetError as exc:
        err.print(f"[red]{exc.code.value}[/]: {escape(str(exc.message))} ({escape(str(data))})")
        raise typer.Exit(EXIT_BAD_INPUT) from None


@app.command()
def run(
    data: Path = typer.Option(..., "--data", help="JSONL training rows: instruction/response or chat transcripts."),
    base_model: str = typer.Option(DEFAULT_BASE_MODEL, help="GGUF repo (mapped), HF id, local dir, .gguf or smollm2."),
    output_dir: Path = typer.Option(Path("./fine-tuned-models"), help="Where the adapter, logs and GGUF files go."),
    name: str = typer.Option("fine-tuned-lfm2", help="Name of the GGUF files (no extension)."),
    epochs: int = typer.Option(3, help="Training epochs."),
    learning_rate: float = typer.Option(2e-5, help="Learning rate."),
    batch_size: int = typer.Option(4, help="Per-device (micro) batch size."),
    grad_accum: int = typer.Option(4, help="Gradient accumulation steps."),
    max_steps: int | None = typer.Option(None, help="Stop after this many optimizer steps."),
    lora_r: int = typer.Option(16, help="LoRA rank."),
    sequence_len: int = typer.Option(2048, help="Maximum tokens per example."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    quant: list[str] = typer.Option(["Q8_0", "Q4_K_M"], help="Quantisations to make (repeat the option)."),
    lms_import: bool = typer.Option(True, "--lms-import/--no-lms-import",
                                    help="Import the GGUF with `lms import` when LM Studio's CLI is installed."),
    set_: list[str] = typer.Option([], "--set", help="Override an Axolotl config key: KEY=VALUE (YAML value)."),
    train_timeout: float | None = typer.Option(None, help="Stop training after this many seconds."),
) -> None:
    """Validate DATA, train a LoRA adapter with Axolotl, merge it, convert and quantise to GGUF, check it loads."""
    from .tuner import LMStudioFineTuner

    if device not in ("auto", "cpu", "cuda"):
        raise typer.BadParameter("auto, cpu or cuda", param_hint="--device")
    overrides = _overrides(set_)
    rows = _load_rows(data)
    try:
        tuner = LMStudioFineTuner(base_model, str(output_dir), device=device, console=err,  # type: ignore[arg-type]
                                  quantizations=quant, train_timeout_s=train_timeout)
        dataset = tuner.prepare_dataset(rows)
        err.print(f"{len(rows)} rows validated -> {escape(str(dataset))}")
        config = tuner.create_axolotl_config(dataset, epochs, learning_rate, batch_size, grad_accum,
                                             max_steps=max_steps, lora_r=lora_r, sequence_len=sequence_len,
                                             overrides=overrides)
        err.print(f"Axolotl config -> {escape(str(config))}")
    except AgentError as exc:
        err.print(f"[red]{exc.code.value}[/]: {escape(rows.describe(exc))}")
        raise typer.Exit(_exit_for(exc)) from None
    if not tuner.run_fine_tuning(config, use_lm_studio_cli=lms_import):
        raise typer.Exit(EXIT_FAILED)
    # Without `lms` the command is printed once, at the end, rather than by the tuner too.
    gguf = tuner.convert_to_gguf(tuner.adapter_dir, name, lm_studio_import=lms_import and _has_lms())
    if gguf is None:
        raise typer.Exit(EXIT_FAILED)
    _print_result(tuner, name)


@app.command()
def prepare(
    data: Path = typer.Option(..., "--data", help="JSONL training rows."),
    output_dir: Path = typer.Option(Path("./fine-tuned-models"), help="Where training_data.jsonl goes."),
) -> None:
    """Only validate DATA and write the JSONL Axolotl reads (no torch needed)."""
    from .tuner import LMStudioFineTuner

    rows = _load_rows(data)
    try:
        path = LMStudioFineTuner(output_dir=str(output_dir), console=err).prepare_dataset(rows)
    except AgentError as exc:
        err.print(f"[red]{exc.code.value}[/]: {escape(rows.describe(exc))}")
        raise typer.Exit(_exit_for(exc)) from None
    out.print(str(path))


@app.command()
def convert(
    model_dir: Path = typer.Option(..., "--model-dir", help="A LoRA adapter directory or a full model directory."),
    name: str = typer.Option(..., help="Name of the GGUF files (no extension)."),
    output_dir: Path = typer.Option(Path("./fine-tuned-models"), help="Where the GGUF files go."),
    quant: list[str] = typer.Option(["Q8_0", "Q4_K_M"], help="Quantisations to make (repeat the option)."),
    lms_import: bool = typer.Option(True, "--lms-import/--no-lms-import", help="Import with `lms import`."),
) -> None:
    """Merge (if an adapter), convert to GGUF, quantise and check an already trained model."""
    from .tuner import LMStudioFineTuner

    tuner = LMStudioFineTuner(output_dir=str(output_dir), console=err, quantizations=quant)
    if tuner.convert_to_gguf(model_dir, name, lm_studio_import=lms_import and _has_lms()) is None:
        raise typer.Exit(EXIT_FAILED)
    _print_result(tuner, name)


def _has_lms() -> bool:
    return shutil.which("lms") is not None


def _print_result(tuner: Any, name: str) -> None:
    from .lms import import_command

    export = tuner.last_export
    target = tuner.lm_studio_file()
    out.print(f"[bold green]GGUF ready[/]: {escape(str(export.path))}")
    for kind, path in export.files.items():
        out.print(f"  {kind:7} {escape(str(path))}")
    imported = any(result.ok for result in tuner.last_import)
    if imported:
        out.print(f"Imported into LM Studio under local/{escape(name)}: "
                  "pick it in My Models, or `lms ls` and `lms load`")
    else:
        out.print("Load it into LM Studio (on the machine that runs LM Studio):")
        out.print("  " + escape(" ".join(import_command(target, f"local/{name}"))))
        out.print(f"or copy it to ~/.lmstudio/models/local/{escape(name)}/; "
                  "then `lms ls` lists it and `lms load` loads it")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
