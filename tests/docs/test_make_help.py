"""`make help` is generated from the `## ` comments on the targets, so it lists every user-facing target."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAKEFILES = [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs" / "readme").glob("*.md"))]


def make_help() -> str:
    done = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def listed() -> set[str]:
    return set(re.findall(r"^  make (\S+)", make_help(), flags=re.M))


def phony_targets() -> set[str]:
    names: set[str] = set()
    for path in MAKEFILES:
        for line in path.read_text().splitlines():
            if line.startswith(".PHONY:"):
                names.update(line.split(":", 1)[1].split())
    return names


def test_every_phony_target_has_a_description_in_make_help() -> None:
    missing = phony_targets() - listed()
    assert not missing, f"targets without a `## description` on their line: {sorted(missing)}"


def test_every_make_target_the_docs_mention_is_listed() -> None:
    shown = listed()
    mentioned = {name for path in DOCS for name in re.findall(r"\bmake ([a-z][a-z0-9-]+)", path.read_text())}
    # Words after "make" in prose that are not targets.
    mentioned -= {"sure", "it", "the", "a", "them", "its", "one", "every", "that", "this"}
    assert not mentioned - shown, f"the docs mention targets `make help` does not list: {sorted(mentioned - shown)}"
