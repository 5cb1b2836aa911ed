"""Starting and stopping the gateway as a child process, and the CLI's key handling (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from lmstudio_agent.model.connection import ServerInfo, read_server_file, server_file_path
from lmstudio_gateway.process import GatewayStartError, free_port, run_in_background, stop
from lmstudio_gateway.server import API_KEY_ENV

pytestmark = pytest.mark.model


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (an orphan's exit status waits for an init that may never reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_server_process_is_gone_after_the_block(tmp_path: Path) -> None:
    with run_in_background(api_key="sk-test-key", log_path=tmp_path / "gateway.log") as server:
        assert server.api_key == "sk-test-key"
        assert not _gone(server.pid)
        health = httpx.get(f"{server.root_url}/health", timeout=10)
        assert health.status_code == 200
    assert _gone(server.pid)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.root_url}/health", timeout=5)


def test_the_temporary_log_is_removed_unless_kept(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # read TMPDIR again
    try:
        with run_in_background() as server:
            assert server.log_path.parent == tmp_path and server.log_path.exists()
        assert not server.log_path.exists()
        with run_in_background(keep_log=True) as kept:
            pass
        assert kept.log_path.exists() and "Uvicorn running" in kept.log_path.read_text()
        assert not server_file_path().exists()  # a background server never writes the server file
    finally:
        tempfile.tempdir = None


def test_server_process_is_stopped_when_the_block_raises() -> None:
    with pytest.raises(ZeroDivisionError):
        with run_in_background() as server:
            pid = server.pid
            raise ZeroDivisionError("the block fails")
    assert _gone(pid)


def test_bad_model_path_fails_fast_with_the_log_tail(tmp_path: Path) -> None:
    missing = tmp_path / "missing.gguf"
    with pytest.raises(GatewayStartError) as caught:
        # A generous timeout: the error must come from the child's exit, not from waiting it out.
        with run_in_background(model_path=missing, startup_timeout=120):
            pytest.fail("the server must not start on a missing model")
    message = str(caught.value)
    assert "exited with status" in message
    assert f"Model file not found: {missing}" in message
    assert "Traceback" not in caught.value.log_tail
    assert _gone(caught.value.pid)


def test_a_file_that_is_not_a_model_fails_with_a_clear_message(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF\x03\x00\x00\x00 truncated, not a model")
    with pytest.raises(GatewayStartError) as caught:
        with run_in_background(model_path=fake, startup_timeout=120):
            pytest.fail("the server must not start on a broken model")
    assert "could not load the model" in caught.value.log_tail
    assert str(fake) in caught.value.log_tail


def test_start_up_timeout_raises_and_kills_the_child(tmp_path: Path) -> None:
    with pytest.raises(GatewayStartError) as caught:
        with run_in_background(startup_timeout=0.01):
            pytest.fail("no server answers /health within 10 ms of being spawned")
    assert "did not answer /health within" in str(caught.value)
    assert _gone(caught.value.pid)


def test_cli_prints_a_generated_key_once_and_requires_it(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out.log"
    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lmstudio_gateway", "serve", "--port", str(port)],
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )
    try:
        root = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, out.read_text()
            try:
                if httpx.get(f"{root}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        # The banner: the export lines, the generated key in them (once), and the server file with the same values.
        # It is printed once the server has started, which can come a moment after /health first answers.
        while "export LM_API_TOKEN=" not in (text := out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        [line] = [line for line in text.splitlines() if line.strip().startswith("export LM_API_TOKEN=")]
        key = line.split("=", 1)[1]
        assert key.startswith("sk-gw-")
        assert f"export LM_STUDIO_API_BASE=http://127.0.0.1:{port}/v1" in text
        assert "export LM_STUDIO_MODEL=smollm2-135m-instruct" in text
        assert read_server_file() == ServerInfo(f"http://127.0.0.1:{port}/v1", key, "smollm2-135m-instruct", proc.pid)
        assert httpx.get(f"{root}/v1/models", timeout=10).status_code == 401
        assert httpx.get(f"{root}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code == 200
    finally:
        stop(proc)
    assert proc.returncode is not None
    assert not server_file_path().exists()  # removed on SIGTERM
    assert out.read_text().count(key) == 1


def test_cli_reports_a_missing_model_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lmstudio_gateway", "serve", "--model", str(tmp_path / "nope.gguf")],
        capture_output=True, text=True, timeout=120, env={**os.environ, API_KEY_ENV: "sk-test"},
    )
    assert result.returncode == 2
    assert "Model file not found" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


ORPHANING_PARENT = """
import os, sys
from lmstudio_gateway.process import run_in_background
server = run_in_background().__enter__()
print(server.pid, flush=True)
os._exit(0)  # dies without leaving the with-block, as a killed test run would
"""


def test_server_stops_when_its_parent_dies_without_cleaning_up() -> None:
    result = subprocess.run([sys.executable, "-c", ORPHANING_PARENT], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout.split()[-1])
    deadline = time.monotonic() + 30
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gone(pid), "the orphaned gateway kept running"
