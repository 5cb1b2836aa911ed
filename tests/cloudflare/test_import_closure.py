"""The Worker imports only what its bundle carries on Workers: the standard library, the core package and
the dependencies ``pywrangler`` vendors for it (pydantic, httpx and theirs); and the core knows nothing of
Workers. Checked in a fresh interpreter that refuses every other import, then handles a real request.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "core" / "src" / "lmstudio_agent"

# pydantic and httpx (cloudflare/pyproject.toml) and what they import; all are in Pyodide's package index.
VENDORED = {
    "pydantic", "pydantic_core", "annotated_types", "typing_extensions", "typing_inspection",
    "httpx", "httpcore", "anyio", "sniffio", "h11", "idna", "certifi",
}
WORKER_MODULES = {"lmstudio_agent", "entry", "kv_cache", "do_runs", "do_bridge", "js_streams", "workers", "tests"}

PROBE = textwrap.dedent(
    """
    import asyncio, importlib.abc, json, sys
    allowed = set(sys.stdlib_module_names) | set(json.loads(sys.argv[1]))
    refused = []

    class Guard(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top not in allowed and not top.startswith("_"):
                refused.append(name)
                raise ImportError(f"{name} is not in the Worker's bundle")
            return None

    sys.meta_path.insert(0, Guard())
    from tests.cloudflare.runtime import ExecutionContext, KVNamespace, Request, WorkerEnv, load_entry
    entry = load_entry()
    env = WorkerEnv(vars={"LM_STUDIO_URL": "http://127.0.0.1:9/v1"}, secrets={"CLIENT_API_KEY": "k"},
                    bindings={"CACHE": KVNamespace()})

    async def main():
        request = Request("https://w.example/execute", method="POST", headers={"Authorization": "Bearer k"},
                          body=json.dumps({"instruction": "hi", "tools": ["extract_data"]}))
        response = await entry.Default(ExecutionContext(), env).fetch(request)
        return response.status, await response.json()

    status, body = asyncio.run(main())
    print(json.dumps({"status": status, "code": body.get("code"), "refused": refused}))
    """
)


def test_the_worker_imports_only_its_bundle() -> None:
    import json

    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(sorted(VENDORED | WORKER_MODULES))],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    # The request went through the agent to the (closed) upstream port, so nothing it needed was refused;
    # what was refused are optional imports the libraries try and do without (brotli, trio, ...).
    assert (outcome["status"], outcome["code"]) == (500, "CONNECTION_FAILED"), outcome
    assert not {name.partition(".")[0] for name in outcome["refused"]} & {"typer", "rich", "websockets", "boto3"}


def test_the_core_knows_nothing_of_workers() -> None:
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.partition(".")[0] not in {"workers", "js", "pyodide"}, f"{path}: imports {name}"
