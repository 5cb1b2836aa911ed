"""convert_to_gguf on a tiny real model: llama.cpp's converter, quantisation and a load check through
llama-cpp-python; every failure leaves no GGUF (or part of one) behind."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from lmstudio_agent.errors import ErrorCode
from lmstudio_finetune import LMStudioFineTuner

pytestmark = pytest.mark.finetune


@pytest.fixture
def tuner(tmp_path, console) -> LMStudioFineTuner:
    return LMStudioFineTuner(output_dir=str(tmp_path / "out"), console=console, quantizations=("Q8_0",))


def leftovers(directory: Path) -> list[str]:
    """Anything a conversion could leave: GGUF files, parts of them, staging directories."""
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if ".gguf" in p.name or p.name.startswith(".convert-"))


def test_full_model_directory_converts_quantises_and_loads(tuner, tiny_llama_dir):
    path = tuner.convert_to_gguf(tiny_llama_dir, "tiny", lm_studio_import=False)
    assert path == tuner.output_dir / "tiny.gguf"
    files = tuner.last_export.files
    assert files == {"F16": tuner.output_dir / "tiny.gguf", "Q8_0": tuner.output_dir / "tiny-Q8_0.gguf"}
    for file in files.values():
        assert file.read_bytes()[:4] == b"GGUF"
    assert files["Q8_0"].stat().st_size < files["F16"].stat().st_size
    # Each file was loaded by llama-cpp-python and generated something before it got its name.
    assert set(tuner.last_export.checks) == {"F16", "Q8_0"}
    assert all(json.loads(check)["tokens"] > 0 for check in tuner.last_export.checks.values())
    assert leftovers(tuner.output_dir) == ["tiny-Q8_0.gguf", "tiny.gguf"]
    assert tuner.last_error is None


def test_missing_model_directory(tuner, tmp_path):
    assert tuner.convert_to_gguf(tmp_path / "nothing", "x") is None
    assert tuner.last_error.code is ErrorCode.GGUF_CONVERSION_FAILED
    assert "neither a model directory nor a LoRA adapter" in tuner.last_error.message


@pytest.mark.parametrize("name", ["", "../escape", "has space", "model.gguf"])
def test_bad_output_names(tuner, tiny_llama_dir, name):
    assert tuner.convert_to_gguf(tiny_llama_dir, name) is None
    assert "invalid output name" in tuner.last_error.message
    assert leftovers(tuner.output_dir) == []


def test_converter_failing_halfway_leaves_nothing(tuner, tiny_llama_copy, console):
    weights = tiny_llama_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # header intact, tensors cut off
    assert tuner.convert_to_gguf(tiny_llama_copy, "broken") is None
    error = tuner.last_error
    assert error.code is ErrorCode.GGUF_CONVERSION_FAILED
    assert error.details["stage"] == "convert"
    assert error.details["log_tail"]
    assert Path(error.details["log_path"]).is_file()
    assert leftovers(tuner.output_dir) == []
    assert "GGUF_CONVERSION_FAILED" in console.file.getvalue()


def test_failure_after_conversion_and_quantisation_leaves_nothing(tuner, tiny_llama_copy):
    """A failure met for real: a byte-fallback tokenizer.json (what transformers' GGUF import writes for SmolLM2)
    makes the converter write a SentencePiece vocabulary; conversion and quantisation succeed, then llama.cpp
    aborts loading the file. The files already built must not survive."""
    tokenizer_json = tiny_llama_copy / "tokenizer.json"
    tokenizer = json.loads(tokenizer_json.read_text())
    tokenizer["model"]["byte_fallback"] = True
    tokenizer["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}]}
    tokenizer_json.write_text(json.dumps(tokenizer))
    assert tuner.convert_to_gguf(tiny_llama_copy, "partial") is None
    assert tuner.last_error.details["stage"] == "check F16"
    log = Path(tuner.last_error.details["log_path"]).read_text(errors="replace")
    assert "tokenizer.ggml.model str              = llama" in log  # the converter did finish
    assert "llama_model_quantize_impl: quant size" in log  # and so did Q8_0
    assert leftovers(tuner.output_dir) == []


def test_stale_staging_from_a_killed_run_is_removed(tuner, tiny_llama_dir):
    stale = tuner.output_dir / ".convert-tiny-killed"
    stale.mkdir(parents=True)
    (stale / "tiny.f16.gguf.part").write_bytes(b"GGUF partial")
    assert tuner.convert_to_gguf(tiny_llama_dir, "tiny", lm_studio_import=False) is not None
    assert leftovers(tuner.output_dir) == ["tiny-Q8_0.gguf", "tiny.gguf"]


def test_import_command_is_printed_when_lms_is_absent(tuner, tiny_llama_dir, console, monkeypatch):
    monkeypatch.setenv("PATH", str(Path(os.sys.executable).parent))  # no lms there
    assert tuner.convert_to_gguf(tiny_llama_dir, "tiny") is not None
    (outcome,) = tuner.last_import
    assert outcome.ran is False
    expected = f"lms import {tuner.output_dir / 'tiny-Q8_0.gguf'} --user-repo local/tiny --copy -y"
    assert expected in console.file.getvalue()


def test_lms_import_when_lm_studio_is_installed(tuner, tiny_llama_dir, tmp_path, monkeypatch):
    """LM Studio cannot run here: a stand-in `lms` on PATH records its arguments, which are those of the real
    `lms import` (https://lmstudio.ai/docs/cli/local-models/import): path, --user-repo, --copy, -y."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "lms-args.json"
    script = bin_dir / "lms"
    script.write_text(f"#!{os.sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    tuner.use_lm_studio_cli = True
    assert tuner.convert_to_gguf(tiny_llama_dir, "tiny") is not None
    assert json.loads(record.read_text()) == ["import", str(tuner.output_dir / "tiny-Q8_0.gguf"), "--user-repo",
                                              "local/tiny", "--copy", "-y"]
    assert tuner.last_import[0].ok
    assert (tuner.output_dir / "tiny-Q8_0.gguf").is_file()  # copied, not moved
