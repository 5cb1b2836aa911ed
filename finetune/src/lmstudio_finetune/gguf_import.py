"""A GGUF file -> a trainable safetensors model directory (transformers dequantises it).

transformers loads a GGUF with ``from_pretrained(dir, gguf_file=name)`` (to float32) but then refuses to save it
("quantized with gguf and is not serializable"); dropping the GGUF quantizer first gives an ordinary directory.
Its GGUF tokenizer conversion also takes the wrong special tokens (SmolLM2's eos comes back as ``<|im_start|>``),
so they are set again from the file's own ``tokenizer.ggml.*_token_id`` metadata; and it turns a GPT-2 style
byte-level BPE into a byte-fallback one with a SentencePiece decoder and without the model's pre-tokenizer
(SmolLM2's digit splitting is lost). llama.cpp's converter then takes it for a Llama SentencePiece vocabulary and
writes a GGUF that llama.cpp cannot load, and training would tokenise digits differently from the original.
``tokenizer.json`` is therefore rewritten as the byte-level BPE that ``tokenizer.ggml.pre`` names.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

__all__ = ["dequantize_gguf"]

_MARKER = "lmstudio-finetune-source.json"
_SPECIAL = {"bos_token": "bos", "eos_token": "eos", "unk_token": "unknown", "pad_token": "padding"}
_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
# tokenizer.ggml.pre -> the pre-tokenizer of the original tokenizer.json (llama.cpp's names).
_PRE_TOKENIZERS: dict[str, dict[str, object]] = {
    "smollm": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]},
    "gpt-2": _BYTE_LEVEL,
    "default": _BYTE_LEVEL,
}


def _fingerprint(gguf_path: Path) -> dict[str, object]:
    stat = gguf_path.stat()
    return {"source": str(gguf_path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _tokenizer_metadata(gguf_path: Path) -> tuple[dict[str, str], str | None, str | None]:
    """(special tokens by attribute, tokenizer.ggml.model, tokenizer.ggml.pre) of a GGUF file."""
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path))
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    found = {}
    for attribute, key in _SPECIAL.items():
        field = reader.fields.get(f"tokenizer.ggml.{key}_token_id")
        if field is not None and 0 <= int(field.contents()) < len(tokens):
            found[attribute] = tokens[int(field.contents())]

    def text(key: str) -> str | None:
        field = reader.fields.get(key)
        return str(field.contents()) if field is not None else None

    return found, text("tokenizer.ggml.model"), text("tokenizer.ggml.pre")


def _restore_byte_level_bpe(tokenizer_json: Path, pre: str | None) -> None:
    data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    if data.get("model", {}).get("type") != "BPE":
        return
    data["model"]["byte_fallback"] = False
    data["decoder"] = {**_BYTE_LEVEL, "add_prefix_space": True}
    if pre in _PRE_TOKENIZERS:
        data["pre_tokenizer"] = _PRE_TOKENIZERS[pre]
    tokenizer_json.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def dequantize_gguf(gguf_path: Path, cache_dir: Path) -> Path:
    """The directory holding ``gguf_path`` dequantised (built once per file; a finished one is reused)."""
    gguf_path = Path(gguf_path)
    target = Path(cache_dir) / gguf_path.stem
    fingerprint = _fingerprint(gguf_path)
    marker = target / _MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == fingerprint:
                return target
        except ValueError:
            pass

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the caller shows its own status; transformers' bars would only clutter it

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        special, tokenizer_model, pre = _tokenizer_metadata(gguf_path)
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        for attribute, token in special.items():
            setattr(tokenizer, attribute, token)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(work)
        tokenizer.save_pretrained(work)
        if tokenizer_model == "gpt2":
            _restore_byte_level_bpe(work / "tokenizer.json", pre)
        del model
        (work / _MARKER).write_text(json.dumps(fingerprint), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return target
