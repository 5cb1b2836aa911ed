"""Which server the library and the CLI use: arguments, environment, the server file `make serve-model` writes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lmstudio_agent import LMStudioAgent
from lmstudio_agent.cli import app
from lmstudio_agent.model.client import DEFAULT_BASE_URL, DEFAULT_MODEL
from lmstudio_agent.model.connection import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODEL,
    ENV_SERVER_FILE,
    ServerInfo,
    export_lines,
    read_server_file,
    remove_server_file,
    resolve,
    write_server_file,
)

SERVED = ServerInfo("http://127.0.0.1:4321/v1", "sk-gw-secret key'quoted", "smollm2-135m-instruct", os.getpid())


@pytest.fixture
def server_file(tmp_path, monkeypatch):
    path = tmp_path / "state" / "server.env"
    monkeypatch.setenv(ENV_SERVER_FILE, str(path))
    for name in (ENV_BASE_URL, ENV_API_KEY, ENV_MODEL):
        monkeypatch.delenv(name, raising=False)
    return path


def test_without_file_or_environment_the_api_reference_defaults_apply(server_file):
    assert resolve() == resolve(None, None, None)
    connection = resolve()
    assert (connection.base_url, connection.api_key, connection.model, connection.source) == (
        DEFAULT_BASE_URL, None, DEFAULT_MODEL, "defaults")


def test_the_file_is_private_and_round_trips_through_a_shell(server_file):
    write_server_file(SERVED)
    assert stat.S_IMODE(server_file.stat().st_mode) == 0o600
    assert read_server_file() == SERVED
    # The same file is a shell snippet: `source` gives the same values, quoting included.
    shown = subprocess.run(["bash", "-c", f'source "{server_file}"; printf "%s\\n" "$LM_STUDIO_API_BASE" '
                            f'"$LM_API_TOKEN" "$LM_STUDIO_MODEL"'], capture_output=True, text=True, check=True)
    assert shown.stdout.splitlines() == [SERVED.base_url, SERVED.api_key, SERVED.model]


def test_a_running_server_file_supplies_url_key_and_model(server_file, monkeypatch):
    write_server_file(SERVED)
    connection = resolve()
    assert (connection.base_url, connection.api_key, connection.model) == (SERVED.base_url, SERVED.api_key, SERVED.model)
    assert str(server_file) in connection.source
    agent = LMStudioAgent()
    assert agent.model_name == SERVED.model and agent.client.base_url == SERVED.base_url
    # Arguments still win, one by one.
    assert resolve(model="other").model == "other" and resolve(api_key="k").api_key == "k"
    # The environment's key belongs to the environment's server, not to the file's.
    monkeypatch.setenv(ENV_API_KEY, "sk-lm-for-lm-studio")
    assert resolve().api_key == SERVED.api_key


def test_another_url_never_gets_the_files_key(server_file, monkeypatch):
    write_server_file(SERVED)
    elsewhere = resolve(base_url="http://lmstudio.example/v1")
    assert (elsewhere.api_key, elsewhere.model, elsewhere.source) == (None, DEFAULT_MODEL, "arguments")
    monkeypatch.setenv(ENV_BASE_URL, "http://other:1234/v1")
    monkeypatch.setenv(ENV_MODEL, "env-model")
    from_env = resolve()
    assert (from_env.base_url, from_env.api_key, from_env.model, from_env.source) == (
        "http://other:1234/v1", None, "env-model", "environment")
    # The file's own URL given explicitly still takes its key and model.
    same = resolve(base_url="http://localhost:4321/v1/")
    assert same.api_key == SERVED.api_key


def test_a_dead_servers_file_is_ignored_and_only_its_owner_removes_it(server_file):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_server_file(ServerInfo(SERVED.base_url, "k", "m", int(dead.stdout)))
    assert read_server_file() is None and resolve().source == "defaults"
    write_server_file(SERVED)
    remove_server_file(SERVED.pid + 1)  # another server's pid: a newer server's file stays
    assert server_file.exists()
    remove_server_file(SERVED.pid)
    assert not server_file.exists()
    remove_server_file(SERVED.pid)  # already gone: no error


def test_server_env_prints_the_export_lines(server_file):
    runner = CliRunner()
    missing = runner.invoke(app, ["server-env"])
    assert missing.exit_code == 1 and "make serve-model" in missing.output
    write_server_file(SERVED)
    done = runner.invoke(app, ["server-env"])
    assert done.exit_code == 0 and done.stdout == export_lines(SERVED)


def test_a_missing_model_names_the_cli_option_and_what_the_server_has(server_file, openai_stub):
    done = CliRunner().invoke(app, ["run", "hello", "--base-url", openai_stub.base_url, "--model", "lfm2-350m"])
    assert done.exit_code == 2
    assert "MODEL_NOT_LOADED" in done.output and "--model" in done.output and "model_name" in done.output
    from tests.support.openai_stub import MODEL_ID

    assert MODEL_ID in done.output


def test_no_server_at_all_says_how_to_start_one(server_file, dead_upstream_url):
    done = CliRunner().invoke(app, ["run", "hello", "--base-url", dead_upstream_url])
    assert done.exit_code == 2 and "make serve-model" in done.output
