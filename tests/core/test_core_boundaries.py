"""The core must run under Pyodide: pydantic + httpx only, no threads or subprocesses, no adapter imports."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core" / "src" / "lmstudio_agent"
OPTIONAL = {"cli.py", "bridge"}  # behind the cli/bridge extras
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


def test_the_training_job_runs_by_path_in_the_fine_tuning_venv():
    """eval's finetune_job.py is run by file path by the fine-tuning venv's Python, which has core and
    lmstudio_finetune but not lmstudio_eval: it may import nothing else from the project."""
    job = ROOT / "eval" / "src" / "lmstudio_eval" / "finetune_job.py"
    tree = ast.parse(job.read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0], "relative import"
    assert _imported_top_levels(job) & PROJECT_PACKAGES <= {"lmstudio_finetune", "lmstudio_agent"}


def _contract_calls(path: Path) -> set[str]:
    """The ``contract.<name>(...)`` functions a module calls."""
    return {node.func.attr for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "contract"}


def test_each_adapter_has_one_path_per_request():
    """The Lambda and the Worker hand every request to ``contract.handle_request``: no route of their own into
    ``handle_execute`` or ``authorize``, no second router (Powertools' resolver), no settings policy of their own."""
    for adapter in (ROOT / "lambda" / "app.py", ROOT / "cloudflare" / "src" / "entry.py"):
        calls = _contract_calls(adapter)
        assert "handle_request" in calls, adapter
        assert not calls & {"handle_execute", "authorize", "execute", "parse_execute_request"}, (adapter, calls)
        source = adapter.read_text()
        assert "APIGatewayRestResolver" not in source and "ValidationError" not in source, adapter
        assert "load_settings" in source, adapter
