"""Read a GGUF file's scalar metadata (architecture, quantization, context length) from its header.

Reading the header directly avoids loading the model a second time just to describe it in
``/api/v0/models``; only scalar values are kept, arrays (the tokenizer's vocabulary) are skipped.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import llama_cpp

# GGUF value types (gguf.h): fixed-size scalars by struct format; 8 = string, 9 = array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
# Bounds that keep a corrupt header from asking for absurd reads.
_MAX_STRING = 16 << 20
_MAX_ITEMS = 1 << 32

# llama_ftype numbers to names, from the installed bindings rather than a hand-kept table.
_FTYPE_NAMES = {
    getattr(llama_cpp, name): name.removeprefix("LLAMA_FTYPE_MOSTLY_").removeprefix("LLAMA_FTYPE_ALL_")
    for name in dir(llama_cpp)
    if name.startswith("LLAMA_FTYPE_") and name != "LLAMA_FTYPE_GUESSED"
}
_QUANT_IN_NAME = re.compile(r"(?i)(?:^|[-_.])((?:I?Q\d+_[A-Z0-9_]+?)|BF16|F16|F32)(?=\.gguf$|[-.])")


class GGUFError(ValueError):
    """The file is not a GGUF this reader understands."""


@dataclass(frozen=True)
class GGUFInfo:
    """What LM Studio's model listing says about a model file."""

    architecture: str
    quantization: str
    context_length: int | None
    organization: str | None


def _read(handle: IO[bytes], fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise GGUFError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _read_string(handle: IO[bytes]) -> str:
    length = _read(handle, "<Q")
    if length > _MAX_STRING:
        raise GGUFError("corrupt GGUF header (string too long)")
    data = handle.read(length)
    if len(data) != length:
        raise GGUFError("truncated GGUF header")
    return data.decode("utf-8", errors="replace")


def _read_value(handle: IO[bytes], value_type: int) -> Any:
    if value_type in _SCALARS:
        return _read(handle, _SCALARS[value_type])
    if value_type == _STRING:
        return _read_string(handle)
    if value_type == _ARRAY:
        item_type, count = _read(handle, "<I"), _read(handle, "<Q")
        if count > _MAX_ITEMS:
            raise GGUFError("corrupt GGUF header (array too long)")
        if item_type in _SCALARS:
            handle.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
        else:
            for _ in range(count):
                _read_value(handle, item_type)
        return None
    raise GGUFError(f"unknown GGUF value type {value_type}")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The scalar key/value metadata of a GGUF (v2 or v3) file; array values are left out."""
    with Path(path).open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise GGUFError(f"not a GGUF file: {path}")
        version = _read(handle, "<I")
        if version not in (2, 3):
            raise GGUFError(f"unsupported GGUF version {version}: {path}")
        _read(handle, "<Q")  # tensor count
        metadata: dict[str, Any] = {}
        count = _read(handle, "<Q")
        if count > _MAX_ITEMS:
            raise GGUFError("corrupt GGUF header (too many keys)")
        for _ in range(count):
            key = _read_string(handle)
            value = _read_value(handle, _read(handle, "<I"))
            if value is not None:
                metadata[key] = value
        return metadata


def describe(path: str | Path) -> GGUFInfo:
    """Architecture, quantization, trained context length and publisher of a GGUF file."""
    meta = read_metadata(path)
    arch = str(meta.get("general.architecture", "unknown"))
    ftype = meta.get("general.file_type")
    quant = _FTYPE_NAMES.get(ftype) if isinstance(ftype, int) else None
    if quant is None:
        match = _QUANT_IN_NAME.search(Path(path).name)
        quant = match.group(1).upper() if match else "unknown"
    context = meta.get(f"{arch}.context_length")
    org = meta.get("general.organization")
    return GGUFInfo(arch, quant, int(context) if isinstance(context, int) else None, str(org) if org else None)
