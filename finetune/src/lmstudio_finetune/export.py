"""Fine-tuned model -> GGUF files LM Studio loads: merge the adapter, convert with llama.cpp, quantise, check.

Everything is built in a staging directory inside the output directory under names ending in ``.part``; only when
every file converted, quantised and loaded does each one get its final name. A failure (or a kill) at any point
leaves no ``*.gguf`` behind, and the staging directory is removed (a stale one from a killed run is removed on the
next conversion of the same name).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .formats import QUANT_TYPES, is_adapter_dir
from .process import ProcessResult, child_env, run_logged

__all__ = ["ExportError", "ExportResult", "converter_script", "export_gguf", "export_lora_gguf", "gguf_file_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ExportError(Exception):
    """A stage failed; ``stage`` names it and ``tail`` holds the end of its output.

    Args:
        stage: The step that failed (e.g. ``convert``, ``quantize``).
        message: What went wrong.
        tail: The end of the failed tool's output.
    """

    def __init__(self, stage: str, message: str, tail: str = "") -> None:
        super().__init__(message)
        self.stage = stage
        self.tail = tail


@dataclass
class ExportResult:
    path: Path  # <name>.gguf: the converter's unquantised output (f16 by default)
    files: dict[str, Path] = field(default_factory=dict)  # "F16" / "Q8_0" / "Q4_K_M" -> path
    checks: dict[str, str] = field(default_factory=dict)  # type -> text the loaded model generated


def gguf_file_name(name: str, kind: str | None) -> str:
    return f"{name}.gguf" if kind is None else f"{name}-{kind}.gguf"


def converter_script(converter_dir: Path | None, script_name: str = "convert_hf_to_gguf.py") -> Path:
    """llama.cpp's ``convert_hf_to_gguf.py`` (with its ``conversion/`` and ``gguf-py/`` beside it), or another of
    its scripts there (``convert_lora_to_gguf.py``)."""
    candidates = [converter_dir] if converter_dir else []
    if os.environ.get("LLAMA_CPP_CONVERTER_DIR"):
        candidates.append(Path(os.environ["LLAMA_CPP_CONVERTER_DIR"]))
    candidates.append(Path(sys.prefix) / "share" / "llama.cpp")
    for directory in candidates:
        script = Path(directory) / script_name
        if script.is_file():
            return script
    raise ExportError(
        "convert",
        f"llama.cpp's {script_name} was not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); `make finetune-deps` extracts it from the llama-cpp-python source release",
    )


def export_gguf(
    model_path: Path,
    name: str,
    output_dir: Path,
    *,
    log_path: Path,
    quantizations: Sequence[str] = ("Q8_0", "Q4_K_M"),
    outtype: str = "f16",
    converter_dir: Path | None = None,
    check_prompt: str = "Say hello in one short sentence.",
    timeout_s: float | None = 3600,
    on_stage: Callable[[str], None] | None = None,
) -> ExportResult:
    """Build ``<name>.gguf`` and ``<name>-<TYPE>.gguf`` for each quantisation in ``output_dir``; raise ExportError."""
    model_path = Path(model_path)
    if not _NAME.match(name) or name.lower().endswith(".gguf"):
        raise ExportError("input", f"invalid output name {name!r}: letters, digits, '.', '_' and '-', no extension")
    unknown = [kind for kind in quantizations if kind not in QUANT_TYPES]
    if unknown:
        raise ExportError("input", f"unknown quantisation {unknown}; known: {sorted(QUANT_TYPES)}")
    if not (model_path / "config.json").is_file() and not is_adapter_dir(model_path):
        raise ExportError("input", f"{model_path} is neither a model directory nor a LoRA adapter directory")
    script = converter_script(converter_dir)

    output_dir.mkdir(parents=True, exist_ok=True)
    for stale in output_dir.glob(f".convert-{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".convert-{name}-", dir=output_dir))
    env = child_env(offline=True, cpu_only=False)

    def step(stage: str, command: list[str], step_env: dict[str, str] = env) -> ProcessResult:
        if on_stage:
            on_stage(stage)
        result = run_logged(command, log_path=log_path, env=step_env, timeout_s=timeout_s)
        if not result.ok:
            why = "timed out" if result.timed_out else f"exited with status {result.returncode}"
            raise ExportError(stage, f"{stage} {why}", result.tail)
        return result

    try:
        source = model_path
        if is_adapter_dir(model_path):
            source = staging / "merged"
            # A hub base (LiquidAI/LFM2-350M) comes from the cache training filled, or the hub if it is not there.
            base = json.loads((model_path / "adapter_config.json").read_text(encoding="utf-8"))
            local_base = Path(str(base.get("base_model_name_or_path", ""))).exists()
            step("merge", [sys.executable, "-m", "lmstudio_finetune.merge", str(model_path), str(source)],
                 child_env(offline=local_base, cpu_only=False))
        staged = {"F16" if outtype == "f16" else outtype.upper(): staging / f"{name}.{outtype}.gguf.part"}
        base_kind, base_file = next(iter(staged.items()))
        step("convert", [sys.executable, str(script), str(source), "--outfile", str(base_file), "--outtype", outtype])
        if not base_file.is_file():
            raise ExportError("convert", f"the converter wrote no {base_file.name}")
        for kind in quantizations:
            target = staging / f"{name}.{kind}.gguf.part"
            step(f"quantize {kind}", [sys.executable, "-m", "lmstudio_finetune.llama_tools", "quantize",
                                      str(base_file), str(target), kind])
            staged[kind] = target
        checks = {}
        for kind, path in staged.items():
            result = step(f"check {kind}", [sys.executable, "-m", "lmstudio_finetune.llama_tools", "check", str(path),
                                            "--prompt", check_prompt])
            checks[kind] = result.tail.splitlines()[-1] if result.tail else ""
        finals = {kind: output_dir / gguf_file_name(name, None if kind == base_kind else kind) for kind in staged}
        published: list[Path] = []
        try:
            for kind, path in staged.items():
                os.replace(path, finals[kind])
                published.append(finals[kind])
        except OSError as exc:
            for path in published:
                path.unlink(missing_ok=True)
            raise ExportError("publish", f"cannot move the GGUF files into {output_dir}: {exc}") from exc
        return ExportResult(path=finals[base_kind], files=finals, checks=checks)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_lora_gguf(
    adapter_dir: Path,
    output_file: Path,
    *,
    log_path: Path,
    base_dir: Path | None = None,
    outtype: str = "q8_0",
    converter_dir: Path | None = None,
    check_prompt: str = "Say hello in one short sentence.",
    timeout_s: float | None = 1800,
) -> Path:
    """The LoRA adapter in ``adapter_dir`` as one llama.cpp GGUF LoRA file (``convert_lora_to_gguf.py``), not merged:
    llama.cpp applies it to the base model at load time (``Llama(lora_path=...)``). ``base_dir`` is the model the
    adapter was trained on (default: the adapter's ``base_model_name_or_path``). The file is checked by loading it on
    that base's GGUF source when one is recorded; raises ExportError, leaving no ``output_file``, when a step fails."""
    adapter_dir = Path(adapter_dir)
    if not is_adapter_dir(adapter_dir):
        raise ExportError("input", f"{adapter_dir} is not a LoRA adapter directory")
    if base_dir is None:
        config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
        base_dir = Path(str(config.get("base_model_name_or_path", "")))
    if not (Path(base_dir) / "config.json").is_file():
        raise ExportError("input", f"the base model directory {base_dir} has no config.json")
    script = converter_script(converter_dir, "convert_lora_to_gguf.py")
    output_file = Path(output_file)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    part = output_file.with_name(output_file.name + ".part")
    env = child_env(offline=True, cpu_only=False)
    try:
        result = run_logged([sys.executable, str(script), "--base", str(base_dir), "--outfile", str(part),
                             "--outtype", outtype, str(adapter_dir)], log_path=log_path, env=env, timeout_s=timeout_s)
        if not result.ok or not part.is_file():
            raise ExportError("convert", "convert_lora_to_gguf.py failed", result.tail)
        source = Path(base_dir) / "lmstudio-finetune-source.json"
        if source.is_file():
            gguf = json.loads(source.read_text(encoding="utf-8")).get("source")
            if gguf and Path(gguf).is_file():
                result = run_logged([sys.executable, "-m", "lmstudio_finetune.llama_tools", "check", gguf, "--lora", str(part),
                                     "--prompt", check_prompt], log_path=log_path, env=env, timeout_s=timeout_s)
                if not result.ok:
                    raise ExportError("check", "the LoRA GGUF did not load on its base model", result.tail)
        os.replace(part, output_file)
        return output_file
    finally:
        part.unlink(missing_ok=True)
