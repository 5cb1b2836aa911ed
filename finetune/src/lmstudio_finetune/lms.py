"""LM Studio's CLI (``lms``). It has no training command; ``lms import`` brings a GGUF into LM Studio's models."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ImportResult", "import_command", "lms_import"]


@dataclass
class ImportResult:
    command: list[str]
    ran: bool  # False when `lms` is not installed (the command is then for the person to run)
    ok: bool
    output: str = ""


def import_command(gguf: Path, user_repo: str, executable: str = "lms") -> list[str]:
    # --copy keeps our file (lms moves it by default); --user-repo and -y skip the interactive questions.
    return [executable, "import", str(gguf), "--user-repo", user_repo, "--copy", "-y"]


def lms_import(gguf: Path, user_repo: str, *, timeout_s: float = 900) -> ImportResult:
    executable = shutil.which("lms")
    if executable is None:
        return ImportResult(import_command(gguf, user_repo), ran=False, ok=False, output="lms is not on PATH")
    command = import_command(gguf, user_repo, executable)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return ImportResult(command, ran=True, ok=False, output=f"lms import did not finish in {timeout_s:g} s")
    except OSError as exc:
        return ImportResult(command, ran=True, ok=False, output=str(exc))
    return ImportResult(command, ran=True, ok=done.returncode == 0, output=(done.stdout + done.stderr).strip())
