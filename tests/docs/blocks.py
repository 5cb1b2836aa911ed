"""The fenced code blocks of the README and docs/readme/*.md, with the docs-check marker each one carries.

A shell or Python block is preceded (on the line right above its opening fence) by an HTML comment, which
GitHub does not render:

    <!-- docs-check: run -->                       run as written; must exit 0 (timeout=SECONDS to allow more)
    <!-- docs-check: background wait-for="TEXT" --> start it, wait until TEXT appears in its output, keep it
                                                     running while the file's later blocks run, then stop it
    <!-- docs-check: skip REASON [note] -->         not run here; REASON is one of SKIP_REASONS

Shell blocks are ```bash, ```sh, ```shell or ```console; Python blocks ```python or ```py. Blocks with any
other info string (json, text, yaml, none: outputs and listings) are never run and need no marker.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL = frozenset({"bash", "sh", "shell", "console"})
PYTHON = frozenset({"python", "py"})
SKIP_REASONS = {
    "account": "needs a cloud account (AWS, Cloudflare) or its credentials",
    "docker": "needs a Docker engine",
    "gpu": "needs a CUDA GPU (or the fine-tuning stack's hours on CPU)",
    "lmstudio": "needs LM Studio itself",
    "network": "needs the internet beyond the package registries",
    "server": "starts a server in the foreground (the check runs one itself: the embedded model)",
    "long": "takes minutes (a full build, the whole suite, a full evaluation); make test covers what it does",
}
DEFAULT_TIMEOUT = 180.0
MARKER = re.compile(r"^<!--\s*docs-check:\s*(?P<body>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


class MarkerError(ValueError):
    """A block's marker is missing or malformed; the message names the file and line."""


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, from 1
    language: str  # "shell" or "python"
    code: str
    action: str = ""  # run, background or skip
    options: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def timeout(self) -> float:
        return float(self.options.get("timeout", DEFAULT_TIMEOUT))


def doc_files() -> list[Path]:
    """The files the check covers: README.md and docs/readme/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs" / "readme").glob("*.md"))]


def _parse_marker(block: Block, body: str) -> None:
    words = shlex.split(body)
    if not words or words[0] not in ("run", "background", "skip"):
        raise MarkerError(f"{block.where}: the marker must start with run, background or skip, got {body!r}")
    block.action = words[0]
    if block.action == "skip":
        if len(words) < 2 or words[1] not in SKIP_REASONS:
            raise MarkerError(f"{block.where}: skip needs a reason among {', '.join(SKIP_REASONS)}, got {body!r}")
        block.reason = words[1]
        return
    for word in words[1:]:
        name, sep, value = word.partition("=")
        if not sep or name not in ("timeout", "wait-for"):
            raise MarkerError(f"{block.where}: unknown option {word!r} (timeout=SECONDS, wait-for=TEXT)")
        block.options[name] = value
    if block.action == "background" and not block.options.get("wait-for"):
        raise MarkerError(f'{block.where}: a background block needs wait-for="TEXT" (what it prints once ready)')


def blocks(path: Path) -> list[Block]:
    """Every shell and Python block of ``path``, in order, with its marker parsed (MarkerError when it has none)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    problems: list[str] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        info = opening["info"].strip().split()
        end = index + 1
        while end < len(lines) and not (lines[end].strip().startswith(fence) and not lines[end].strip()[len(fence):].strip()):
            end += 1
        body = "\n".join(line[indent:] if line[:indent].isspace() else line.lstrip() for line in lines[index + 1:end])
        language = info[0].lower() if info else ""
        if language in SHELL or language in PYTHON:
            block = Block(path, index + 1, "shell" if language in SHELL else "python", body + "\n")
            previous = index - 1
            while previous >= 0 and not lines[previous].strip():
                previous -= 1
            marker = MARKER.match(lines[previous].strip()) if previous >= 0 else None
            try:
                if marker is None:
                    raise MarkerError(f"{block.where}: a {language} block without a docs-check marker on the line "
                                      "above (<!-- docs-check: run -->, background wait-for=..., or skip REASON)")
                _parse_marker(block, marker["body"])
            except MarkerError as exc:
                problems.append(str(exc))
            found.append(block)
        index = end + 1
    if problems:
        raise MarkerError("\n".join(problems))
    return found
