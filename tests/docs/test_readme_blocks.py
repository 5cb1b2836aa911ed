"""The README and docs/readme/*.md stay true: every block marked runnable runs as written and exits 0.

The check does what a newcomer does after `make run`: `source .venv/bin/activate` (the venv's bin first on PATH),
`make serve-model` in another terminal (here: the session's embedded model server, announced through the server
file that `make serve-model` writes), then pastes each block, in order, from a clean copy of the repository in a
temporary directory. Background blocks (a hub, an agent) stay up while the file's later blocks run. The marker
convention is in tests/docs/blocks.py; a shell or Python block without a marker fails the first test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmstudio_agent.model.connection import ENV_API_KEY, ENV_BASE_URL, ENV_MODEL, ENV_SERVER_FILE, ServerInfo, write_server_file
from tests.docs.blocks import ROOT, Block, MarkerError, blocks, doc_files

OLD_MTIME = 946684800  # 2000-01-01: older than any install stamp, so `make` in the copy never reinstalls
OUTPUT_TAIL = 3000


def test_every_shell_and_python_block_is_marked() -> None:
    problems = []
    for path in doc_files():
        try:
            blocks(path)
        except MarkerError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def repo_copy(tmp_path_factory) -> Path:
    """The repository's files (tracked and untracked, not ignored) in a temporary directory, with its venv."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    target = tmp_path_factory.mktemp("repo")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
            os.utime(destination, (OLD_MTIME, OLD_MTIME))
    (target / ".venv").symlink_to(Path(sys.prefix))
    return target


@pytest.fixture(scope="session")
def block_env(embedded_model, tmp_path_factory) -> dict[str, str]:
    """A newcomer's shell: the venv activated, a model server running and announced in the server file."""
    state = tmp_path_factory.mktemp("state")
    server_file = write_server_file(ServerInfo(embedded_model.base_url, embedded_model.api_key, embedded_model.model,
                                               embedded_model.pid), state / "server.env")
    env = {name: value for name, value in os.environ.items()
           if name not in (ENV_BASE_URL, ENV_API_KEY, ENV_MODEL, "BRIDGE_TOKEN", "BRIDGE_API_KEY", "PYTEST_CURRENT_TEST")}
    venv_bin = str(Path(sys.prefix) / "bin")
    env.update({"PATH": venv_bin + os.pathsep + env.get("PATH", "/usr/bin:/bin"), "VIRTUAL_ENV": sys.prefix,
                ENV_SERVER_FILE: str(server_file), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "TERM": "dumb",
                "COLUMNS": "120", "MAKEFLAGS": ""})
    return env


def _command(block: Block, workdir: Path) -> list[str]:
    script = workdir / f".docs-block-{block.line}.{'py' if block.language == 'python' else 'sh'}"
    script.write_text(block.code, encoding="utf-8")
    if block.language == "python":
        return [str(Path(sys.prefix) / "bin" / "python"), str(script)]
    return ["bash", "-e", "-o", "pipefail", str(script)]


def _tail(text: str) -> str:
    return text[-OUTPUT_TAIL:]


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone


def _stop(process: subprocess.Popen) -> None:
    """Stop a block and everything it started (its process group): SIGTERM, then SIGKILL after 15 s."""
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=15)


def _start_background(block: Block, workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    log = workdir / f".docs-block-{block.line}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(_command(block, workdir), cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                   stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    wanted = block.options["wait-for"]
    deadline = time.monotonic() + block.timeout
    while wanted not in log.read_text(errors="replace"):
        if process.poll() is not None:
            pytest.fail(f"{block.where}: the background block exited ({process.returncode}) before printing "
                        f"{wanted!r}:\n{_tail(log.read_text(errors='replace'))}")
        if time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"{block.where}: {wanted!r} not printed within {block.timeout:g} s:\n"
                        f"{_tail(log.read_text(errors='replace'))}")
        time.sleep(0.2)
    return process, log


def _safe_blocks(path: Path) -> list[Block]:
    try:
        return blocks(path)
    except MarkerError:
        return []  # reported by test_every_shell_and_python_block_is_marked


def _run(block: Block, workdir: Path, env: dict[str, str]) -> None:
    """Run one block to its end (its whole process group is killed if it outlives its timeout)."""
    process = subprocess.Popen(_command(block, workdir), cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=block.timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        output, _ = process.communicate()
        pytest.fail(f"{block.where}: still running after {block.timeout:g} s:\n{_tail(output or '')}")
    finally:
        _stop(process)  # nothing it started may outlive it
    assert process.returncode == 0, f"{block.where} exited {process.returncode}:\n{_tail(output)}"


RUNNABLE = [path for path in doc_files() if any(block.action != "skip" for block in _safe_blocks(path))]


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.parametrize("path", RUNNABLE, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE])
def test_runnable_blocks_run_as_written(path: Path, repo_copy: Path, block_env: dict[str, str]) -> None:
    background: list[tuple[subprocess.Popen, Path]] = []
    try:
        for block in _safe_blocks(path):
            if block.action == "skip":
                continue
            if block.action == "background":
                background.append(_start_background(block, repo_copy, block_env))
                continue
            _run(block, repo_copy, block_env)
    finally:
        for process, _ in reversed(background):
            _stop(process)
