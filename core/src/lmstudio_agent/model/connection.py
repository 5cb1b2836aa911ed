"""Which model server to use: arguments, then the environment, then the server file, then the defaults.

``lmstudio-gateway serve`` (``make serve-model``) writes its URL, key and model to the *server file* and removes
it when it stops, so the CLI (``run``, ``bridge agent``, ``eval``) and ``LMStudioAgent()`` reach it with no
options. The file is a shell snippet (``source`` it, or ``lmstudio-agent server-env``) readable only by its owner:

    # lmstudio-gateway pid 12345
    export LM_STUDIO_API_BASE=http://127.0.0.1:1234/v1
    export LM_API_TOKEN=sk-gw-...
    export LM_STUDIO_MODEL=smollm2-135m-instruct

Its place: ``$LMSTUDIO_AGENT_SERVER_FILE``, else ``$XDG_STATE_HOME/lmstudio-agent/server.env``
(``~/.local/state/lmstudio-agent/server.env``). A file whose server process is gone is ignored.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .client import DEFAULT_BASE_URL, DEFAULT_MODEL

ENV_BASE_URL = "LM_STUDIO_API_BASE"
ENV_API_KEY = "LM_API_TOKEN"
ENV_MODEL = "LM_STUDIO_MODEL"
ENV_SERVER_FILE = "LMSTUDIO_AGENT_SERVER_FILE"
# The help of the --base-url, --api-key and --model options of every command that talks to a model server.
BASE_URL_HELP = ("OpenAI-compatible base URL [default: $LM_STUDIO_API_BASE, else the server `make serve-model` "
                 "is running, else http://localhost:1234/v1]")
API_KEY_HELP = "Bearer token for the model server [default: $LM_API_TOKEN, else the running server's key]"
MODEL_HELP = ("Model id on that server [default: $LM_STUDIO_MODEL, else the running server's model, "
              "else lmstudio-community/LFM2-350M-Instruct-GGUF]")
CONNECT_HINT = ("Start a model server (`make serve-model` for the embedded model, or LM Studio's server), "
                "or pass --base-url (and --api-key).")
_PID_PREFIX = "# lmstudio-gateway pid "


@dataclass(frozen=True)
class ServerInfo:
    """A running model server as the server file describes it."""

    base_url: str
    api_key: str | None = field(repr=False)
    model: str
    pid: int | None = None


@dataclass(frozen=True)
class Connection:
    """The resolved server: ``source`` says where ``base_url`` came from (arguments, environment, server file, defaults)."""

    base_url: str
    api_key: str | None = field(repr=False)
    model: str
    source: str


def server_file_path() -> Path:
    """Where the server file lives (``$LMSTUDIO_AGENT_SERVER_FILE`` overrides)."""
    override = os.environ.get(ENV_SERVER_FILE)
    if override:
        return Path(override).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "lmstudio-agent" / "server.env"


def export_lines(info: ServerInfo) -> str:
    """The ``export`` lines that point other tools (and shells) at ``info``.

    Args:
        info: The running server.
    """
    lines = [f"export {ENV_BASE_URL}={shlex.quote(info.base_url)}"]
    if info.api_key:
        lines.append(f"export {ENV_API_KEY}={shlex.quote(info.api_key)}")
    lines.append(f"export {ENV_MODEL}={shlex.quote(info.model)}")
    return "\n".join(lines) + "\n"


def write_server_file(info: ServerInfo, path: Path | None = None) -> Path:
    """Write ``info`` atomically, readable only by its owner (it holds the key); returns the path.

    Args:
        info: The running server.
        path: Where to write it (default: :func:`server_file_path`).
    """
    target = path or server_file_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    header = f"{_PID_PREFIX}{info.pid}\n" if info.pid is not None else ""
    fd, tmp = tempfile.mkstemp(prefix=".server.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(header + export_lines(info))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, AttributeError):  # another user's process, or no os.kill (Pyodide)
        return True
    return True


def parse_server_file(text: str) -> ServerInfo | None:
    """The server a server file describes, or None when it names no URL.

    Args:
        text: The file's contents.
    """
    values: dict[str, str] = {}
    pid: int | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(_PID_PREFIX):
            try:
                pid = int(line[len(_PID_PREFIX):])
            except ValueError:
                pid = None
            continue
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if words and words[0] == "export":
            words = words[1:]
        for word in words:
            name, sep, value = word.partition("=")
            if sep:
                values[name] = value
    if not values.get(ENV_BASE_URL):
        return None
    return ServerInfo(values[ENV_BASE_URL], values.get(ENV_API_KEY) or None,
                      values.get(ENV_MODEL) or DEFAULT_MODEL, pid)


def read_server_file(path: Path | None = None) -> ServerInfo | None:
    """The running server the file describes; None when there is no file or its server process has exited.

    Args:
        path: The file to read (default: :func:`server_file_path`).
    """
    try:
        text = (path or server_file_path()).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    info = parse_server_file(text)
    if info is None or (info.pid is not None and not _alive(info.pid)):
        return None
    return info


def remove_server_file(pid: int, path: Path | None = None) -> None:
    """Remove the server file if it still describes the server ``pid`` (a newer server may have replaced it).

    Args:
        pid: The process id of the server that is stopping.
        path: The file (default: :func:`server_file_path`).
    """
    target = path or server_file_path()
    try:
        info = parse_server_file(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return
    if info is not None and info.pid == pid:
        target.unlink(missing_ok=True)


def _same_server(a: str, b: str) -> bool:
    return a.rstrip("/").replace("://localhost", "://127.0.0.1") == b.rstrip("/").replace("://localhost", "://127.0.0.1")


def resolve(base_url: str | None = None, api_key: str | None = None, model: str | None = None) -> Connection:
    """The server to use: arguments first, then the environment, then the server file, then the defaults.

    A URL, its key and its model go together: the server file is used only when no URL is given (or the given
    URL is the file's server), and then its key and model come before the environment's, which belong to the
    environment's server.

    Args:
        base_url: The server URL given by the caller.
        api_key: The API key given by the caller.
        model: The model id given by the caller.
    """
    env_url = os.environ.get(ENV_BASE_URL) or None
    env_key = os.environ.get(ENV_API_KEY) or None
    env_model = os.environ.get(ENV_MODEL) or None
    url = base_url or env_url
    info = read_server_file()
    if info is not None and url is None:
        return Connection(info.base_url, api_key if api_key is not None else info.api_key, model or info.model,
                          f"server file {server_file_path()}")
    source = "arguments" if base_url else "environment" if env_url else "defaults"
    if info is not None and url is not None and _same_server(url, info.base_url):
        return Connection(url, api_key if api_key is not None else env_key or info.api_key,
                          model or env_model or info.model, source)
    return Connection(url or DEFAULT_BASE_URL, api_key if api_key is not None else env_key,
                      model or env_model or DEFAULT_MODEL, source)
