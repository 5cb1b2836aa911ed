"""Running a tool as a child process: its output kept in a log file and streamed to a callback, with a time limit.

The child gets its own process group so a time-out or Ctrl-C ends it and everything it launched (``axolotl train``
execs ``accelerate``, which starts the trainer).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessResult", "child_env", "run_logged"]


@dataclass
class ProcessResult:
    returncode: int
    timed_out: bool
    tail: str  # the last lines of output

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def child_env(*, offline: bool, cpu_only: bool, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a training/conversion child: no telemetry, this interpreter's tools first on PATH."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
    env.setdefault("WANDB_MODE", "disabled")
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    env["PYTHONUNBUFFERED"] = "1"
    if offline:
        for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            env[key] = "1"
    if cpu_only:
        env["CUDA_VISIBLE_DEVICES"] = ""
    env.update(extra or {})
    return env


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def run_logged(
    command: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float | None = None,
    on_output: Callable[[str], None] | None = None,
    tail_lines: int = 40,
) -> ProcessResult:
    """Run ``command``; append its combined output to ``log_path``; call ``on_output`` with each chunk."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=tail_lines)
    partial = ""
    timed_out = threading.Event()
    with open(log_path, "ab") as log:
        log.write(("$ " + " ".join(command) + "\n").encode())
        log.flush()
        try:
            process = subprocess.Popen(
                list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
            )
        except OSError as exc:
            message = f"cannot start {command[0]}: {exc}"
            log.write((message + "\n").encode())
            return ProcessResult(127, False, message)

        def expire() -> None:
            timed_out.set()
            _kill_group(process)

        timer = threading.Timer(timeout_s, expire) if timeout_s else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            stdout = process.stdout
            assert isinstance(stdout, io.BufferedIOBase)  # a pipe opened in binary mode with the default buffer
            while chunk := stdout.read1(65536):
                log.write(chunk)
                log.flush()
                text = chunk.decode("utf-8", errors="replace")
                if on_output:
                    on_output(text)
                partial += text.replace("\r\n", "\n")
                *lines, partial = partial.split("\n")
                for line in lines:
                    shown = line.rsplit("\r", 1)[-1].rstrip()  # what a terminal would show after redraws
                    if shown:
                        tail.append(shown)
            process.wait()
        except BaseException:
            _kill_group(process)
            raise
        finally:
            if timer:
                timer.cancel()
        last = partial.rsplit("\r", 1)[-1].strip()
        if last:
            tail.append(last)
        if timed_out.is_set():
            note = f"[lmstudio-finetune] stopped after the {timeout_s:g} s time limit"
            log.write((note + "\n").encode())
            tail.append(note)
    return ProcessResult(process.returncode, timed_out.is_set(), "\n".join(tail))
