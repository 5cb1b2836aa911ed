"""The core must run under Pyodide: pydantic + httpx only, no threads or subprocesses, no adapter imports."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core" / "src" / "lmstudio_agent"
# Behind the cli/bridge extras; serving.py is for the servers that embed uvicorn (gateway, hub), never Pyodide.
OPTIONAL = {"cli.py", "bridge", "serving.py"}
ROOT = CORE.parents[2]


def library_modules():
    for path in CORE.rglob("*.py"):
        rel = path.relative_to(CORE)
        if rel.parts[0] not in OPTIONAL:
            yield path


def test_library_imports_only_stdlib_pydantic_httpx():
    allowed_third_party = {"pydantic", "httpx"}
    forbidden_stdlib = {"threading", "subprocess", "multiprocessing", "concurrent"}
    for path in library_modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module.split(".")[0]]
            else:
                continue
            for name in names:
                assert name not in forbidden_stdlib, f"{path.name} imports {name}"
                assert name in sys.stdlib_module_names or name in allowed_third_party, f"{path.name} imports {name}"


def test_importing_the_library_pulls_in_no_adapter_or_cli_dependency():
    code = ("import sys, lmstudio_agent, lmstudio_agent.service, lmstudio_agent.contract;"
            "bad = [m for m in ('typer', 'rich', 'websockets', 'boto3', 'llama_cpp', 'torch', 'lmstudio_finetune',"
            " 'lmstudio_gateway', 'lmstudio_hub', 'lmstudio_eval', 'aws_lambda_powertools') if m in sys.modules]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# Distributions, bottom to top: each may import only those listed for it (and third-party packages).
LAYERS = {
    "core/src/lmstudio_agent": set(),
    "gateway-model/src/lmstudio_gateway": {"lmstudio_agent"},
    "finetune/src/lmstudio_finetune": {"lmstudio_agent"},
    "hub/src/lmstudio_hub": {"lmstudio_agent"},
    "eval/src/lmstudio_eval": {"lmstudio_agent", "lmstudio_gateway", "lmstudio_finetune"},
    "lambda": {"lmstudio_agent"},
    "cloudflare/src": {"lmstudio_agent"},
}
PROJECT_PACKAGES = {"lmstudio_agent", "lmstudio_gateway", "lmstudio_finetune", "lmstudio_hub", "lmstudio_eval"}


def _imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_distributions_import_only_the_layers_below_them():
    for folder, allowed in LAYERS.items():
        own = Path(folder).name
        files = list((ROOT / folder).rglob("*.py"))
        assert files, folder
        for path in files:
            foreign = (_imported_top_levels(path) & PROJECT_PACKAGES) - allowed - {own}
            assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


def test_the_core_ships_no_hub_server_and_no_eval_data():
    assert not (CORE / "bridge" / "hub.py").exists() and not (CORE / "bridge" / "http.py").exists()
    assert not list(CORE.rglob("*.jsonl")), "suite data belongs to lmstudio_eval"
