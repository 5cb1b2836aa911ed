"""The core must run under Pyodide: pydantic + httpx only, no threads or subprocesses, no adapter imports."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core" / "src" / "lmstudio_agent"
# Behind the cli/bridge/mcp extras; serving.py holds the uvicorn limits the gateway and the hub share (uvicorn
# is imported inside the one function that needs it, never by the library).
OPTIONAL = {"cli.py", "bridge", "mcp", "serving.py"}
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
            " 'lmstudio_gateway', 'lmstudio_hub', 'lmstudio_eval', 'aws_lambda_powertools', 'mcp', 'anyio') if m in sys.modules]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_mcp_sdk_is_imported_only_where_mcp_servers_are_used():
    """``lmstudio_agent.mcp``'s config side (reading an mcp.json) is pydantic only; the SDK comes in with
    ``MCPServers``, and ``LMStudioAgent`` imports it only when given an ``mcp_config``."""
    config = CORE / "mcp" / "config.py"
    for node in ast.walk(ast.parse(config.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            assert node.module.split(".")[0] in sys.stdlib_module_names | {"pydantic"}, node.module
        elif isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] in sys.stdlib_module_names for a in node.names)
    code = ("import sys, lmstudio_agent; from lmstudio_agent.mcp import load_mcp_config, MCPConfig;"
            "agent = lmstudio_agent.LMStudioAgent();"
            "load_mcp_config({'mcpServers': {'a': {'url': 'http://127.0.0.1:9/mcp'}}});"
            "assert 'mcp' not in sys.modules, 'the SDK was imported';"
            "from lmstudio_agent.mcp import MCPServers; assert 'mcp' in sys.modules")
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
    """eval's finetuning/job.py is run by file path by the fine-tuning venv's Python, which has core and
    lmstudio_finetune but not lmstudio_eval: it may import nothing else from the project."""
    job = ROOT / "eval" / "src" / "lmstudio_eval" / "finetuning" / "job.py"
    tree = ast.parse(job.read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0], "relative import"
    assert _imported_top_levels(job) & PROJECT_PACKAGES <= {"lmstudio_finetune", "lmstudio_agent"}


def _contract_calls(path: Path) -> set[str]:
    """The ``contract.<name>(...)`` functions a module calls."""
    return {node.func.attr for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "contract"}


def test_each_adapter_has_one_path_per_request():
    """The Lambda and the Worker hand every request to core's one router (``routes.route``; the Lambda's direct
    invoke is its JSON-only ``POST /execute``): no route of their own into ``handle_request``,
    ``handle_execute`` or ``authorize``, no second router (Powertools' resolver), no settings policy of their own,
    and no rule of their own for which statuses carry no body."""
    for adapter in (ROOT / "lambda" / "app.py", ROOT / "cloudflare" / "src" / "entry.py"):
        calls = _contract_calls(adapter)
        source = adapter.read_text()
        assert "route(" in source, adapter
        assert not calls & {"handle_request", "handle_execute", "authorize", "execute", "parse_execute_request"}, \
            (adapter, calls)
        assert "NULL_BODY_STATUSES = " not in source and "RUNS_CORS_METHODS" not in source, adapter
        assert "APIGatewayRestResolver" not in source and "ValidationError" not in source, adapter
        assert "load_settings" in source, adapter


def test_the_bridge_protocol_needs_no_extra():
    """The core names the default bridge URL from the protocol module, so it must stay pydantic-only; the
    websockets client loads only when used."""
    for name in ("protocol.py", "__init__.py"):
        imported = _imported_top_levels(CORE / "bridge" / name)
        assert imported <= set(sys.stdlib_module_names) | {"pydantic"}, (name, imported)
    code = ("import sys, lmstudio_agent.lmstudio, lmstudio_agent.bridge as b; assert 'websockets' not in sys.modules;"
            "b.serve_agent; assert 'websockets' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_public_constructor_documents_its_parameters():
    """A public class whose ``__init__`` takes parameters says what each is, in an ``Args:`` section."""
    missing = []
    for folder in ("core/src", "hub/src", "eval/src", "gateway-model/src", "finetune/src"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.parse(path.read_text()).body:
                if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                    continue
                init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
                if init is None:
                    continue
                params = [a.arg for a in init.args.args[1:] + init.args.kwonlyargs]
                doc = (ast.get_docstring(node) or "") + (ast.get_docstring(init) or "")
                undocumented = [p for p in params if f"{p}:" not in doc.partition("Args:")[2]]
                if params and undocumented:
                    missing.append(f"{path.relative_to(ROOT)}: {node.name} ({', '.join(undocumented)})")
    assert not missing, "\n".join(missing)
