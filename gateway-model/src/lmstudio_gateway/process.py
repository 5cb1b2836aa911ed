"""Run the gateway as a child process for the length of a ``with`` block (tests, ``make run``, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from lmstudio_gateway.models import DEFAULT_MODEL_ALIAS
from lmstudio_gateway.server import API_KEY_ENV, DEFAULT_N_CTX, generate_api_key

TERMINATE_GRACE_SECONDS = 5.0
LOG_TAIL_CHARS = 4000
PORT_ATTEMPTS = 3


class GatewayStartError(RuntimeError):
    """The server did not come up; the message carries the tail of its log.

    Args:
        message: Why the server did not start.
        pid: The server process's id.
        log_tail: The end of the server's log.
    """

    def __init__(self, message: str, *, pid: int, log_tail: str) -> None:
        super().__init__(f"{message}; log tail:\n{log_tail}")
        self.pid = pid
        self.log_tail = log_tail


@dataclass(frozen=True)
class RunningServer:
    """A started gateway: where to reach it and with which key."""

    base_url: str
    api_key: str = field(repr=False)
    model: str
    pid: int
    log_path: Path | None = None

    @property
    def root_url(self) -> str:
        """The server root (``base_url`` without ``/v1``), for ``/health`` and ``/api/v0``."""
        return self.base_url.removesuffix("/v1")


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    """The last ``chars`` characters of a log file ('' when unreadable)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-chars:]


def _wait_healthy(proc: subprocess.Popen[bytes], root_url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while True:
            code = proc.poll()
            if code is not None:
                raise GatewayStartError(
                    f"the model server exited with status {code} during start-up",
                    pid=proc.pid,
                    log_tail=log_tail(log_path),
                )
            try:
                if client.get(f"{root_url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            if time.monotonic() >= deadline:
                raise GatewayStartError(
                    f"the model server did not answer /health within {timeout:g} s",
                    pid=proc.pid,
                    log_tail=log_tail(log_path),
                )
            time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes], grace: float = TERMINATE_GRACE_SECONDS) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; waits until the process is gone."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


@contextlib.contextmanager
def run_in_background(
    model_path: str | os.PathLike[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    startup_timeout: float = 120.0,
    *,
    model_alias: str = DEFAULT_MODEL_ALIAS,
    n_ctx: int = DEFAULT_N_CTX,
    n_threads: int | None = None,
    log_path: str | os.PathLike[str] | None = None,
    lora_path: str | os.PathLike[str] | None = None,
    bare: bool = False,
    keep_log: bool = False,
    max_request_seconds: float | None = None,
) -> Iterator[RunningServer]:
    """Start ``python -m lmstudio_gateway serve`` and yield it once ``/health`` answers.

    ``port=0`` picks a free port; ``api_key=None`` generates one. The embedded model is served with the shipped
    tool adapter, or bare with ``bare=True``; ``lora_path`` applies another GGUF LoRA adapter. The key travels in the child's
    environment, never on its command line (visible in ``ps``). The server's output goes to a log file
    whose tail is in the error if start-up fails. The process is always stopped on exit. Without
    ``log_path`` the log is a temporary ``lmstudio-gateway-*.log`` file, removed once the server has
    stopped unless ``keep_log``; a ``log_path`` you give is kept. The server does not write the server
    file (``lmstudio_agent.model.connection``): a background server never replaces the one ``make serve-model`` runs.
    """
    key = api_key or generate_api_key()
    temporary_log = log_path is None
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="lmstudio-gateway-", suffix=".log")
        os.close(handle)
        log_path = name
    log_file = Path(log_path)
    try:
        yield from _run(model_path, host, port, key, startup_timeout, model_alias, n_ctx, n_threads, log_file,
                        lora_path, bare, max_request_seconds)
    finally:
        if temporary_log and not keep_log:
            log_file.unlink(missing_ok=True)


def _run(model_path: str | os.PathLike[str] | None, host: str, port: int, key: str, startup_timeout: float,
         model_alias: str, n_ctx: int, n_threads: int | None, log_file: Path,
         lora_path: str | os.PathLike[str] | None = None, bare: bool = False,
         max_request_seconds: float | None = None) -> Iterator[RunningServer]:
    env = {**os.environ, API_KEY_ENV: key, "PYTHONUNBUFFERED": "1"}
    options = ["--model-alias", model_alias, "--n-ctx", str(n_ctx), "--exit-with-parent", "--no-server-file"]
    if model_path is not None:
        options += ["--model", os.fspath(model_path)]
    if n_threads:
        options += ["--n-threads", str(n_threads)]
    if lora_path is not None:
        options += ["--lora", os.fspath(lora_path)]
    options += ["--bare"] if bare else ["--tools-adapter"]
    if max_request_seconds is not None:
        options += ["--max-request-seconds", f"{max_request_seconds:g}"]
    # A free port can be taken between picking it and binding it: with port=0, pick again.
    for attempt in range(1 if port else PORT_ATTEMPTS):
        chosen_port = port or free_port(host)
        command = [sys.executable, "-m", "lmstudio_gateway", "serve", "--host", host, "--port", str(chosen_port)]
        with log_file.open("ab") as sink:
            proc = subprocess.Popen(
                [*command, *options], stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=env
            )
        root_url = f"http://{host}:{chosen_port}"
        try:
            _wait_healthy(proc, root_url, log_file, startup_timeout)
        except GatewayStartError as exc:
            stop(proc)
            if "address already in use" in str(exc).lower() and attempt + 1 < (1 if port else PORT_ATTEMPTS):
                continue
            raise
        except BaseException:
            stop(proc)
            raise
        break
    try:
        yield RunningServer(f"{root_url}/v1", key, model_alias, proc.pid, log_file)
    finally:
        stop(proc)
