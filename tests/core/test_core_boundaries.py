"""The core must run under Pyodide: pydantic + httpx only, no threads or subprocesses, no adapter imports; and
its subpackages import in one direction (the picture above :func:`_core_imports`)."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core" / "src" / "lmstudio_agent"
# Behind the cli/bridge/mcp extras; endpoint/uvicorn_limits.py holds the uvicorn limits the gateway and the hub
# share (uvicorn is imported inside the one function that needs it, never by the library).
OPTIONAL = {"cli.py", "bridge", "mcp", "endpoint/uvicorn_limits.py"}
ROOT = CORE.parents[2]


def library_modules():
    for path in CORE.rglob("*.py"):
        rel = path.relative_to(CORE)
        if rel.parts[0] not in OPTIONAL and rel.as_posix() not in OPTIONAL:
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
    code = ("import sys, lmstudio_agent, lmstudio_agent.endpoint.backend, lmstudio_agent.endpoint.contract;"
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


# --- The subpackages (issue 21): which imports which -------------------------------------------------------------
#
#   lmstudio (LMStudioAgent), cli, bridge/, mcp/, builtins/     the public face and the adapters' helpers
#        |                     endpoint/                        the HTTP framework: contract, router, streaming, ...
#        v                        |
#      agent/   <-----------------+                             the loop and what it holds
#        |  ^
#        v  | (Tool, RoundContext, document references only)
#      model/                                                   client, tool-call modes and parsing, schema
#        |
#        v
#   errors, deadline, jsonsafe                                  used by every layer

def _core_imports(path: Path) -> set[str]:
    """The ``lmstudio_agent`` modules a core file imports (relative imports resolved; imports inside functions and
    under ``TYPE_CHECKING`` included: a lazy import is still a dependency)."""
    rel = path.relative_to(CORE.parent).with_suffix("")
    package = list(rel.parts[:-1])  # a module's package; for an __init__.py, its own
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from . import x`` may name a module: count it as one (a name that is not one changes nothing)
            found.update([module] if node.module else [f"{module}.{a.name}" for a in node.names])
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "lmstudio_agent" or m.startswith("lmstudio_agent.")}


def _files(subpackage: str) -> list[Path]:
    files = sorted((CORE / subpackage).rglob("*.py"))
    assert files, subpackage
    return files


def _under(module: str, *prefixes: str) -> bool:
    return any(module == f"lmstudio_agent.{p}" or module.startswith(f"lmstudio_agent.{p}.") for p in prefixes)


ABOVE_THE_LIBRARY = ("endpoint", "bridge", "mcp", "builtins", "cli", "lmstudio")


def test_importing_the_library_loads_neither_the_endpoint_framework_nor_the_small_model_rules():
    """``import lmstudio_agent`` (and every name it exports) leaves out ``endpoint/`` and ``model/smallmodel/``:
    the constrained mode imports the rules with its first round, and an adapter imports the endpoint it uses."""
    code = (
        "import sys, lmstudio_agent\n"
        "lazy = ('lmstudio_agent.endpoint', 'lmstudio_agent.model.smallmodel')\n"
        "loaded = lambda: [m for m in sys.modules if m.startswith(lazy)]\n"
        "assert not loaded(), loaded()\n"
        "from lmstudio_agent import *\n"
        "names = {n: getattr(lmstudio_agent, n) for n in lmstudio_agent.__all__}\n"
        "assert not loaded(), loaded()\n"
        "policy = SmallModelPolicy.off(); assert not policy.route\n"
        "agent = Agent(client=ChatClient('http://127.0.0.1:9/v1'), mode=ToolMode.NATIVE)\n"
        "LMStudioAgent(base_url='http://127.0.0.1:9/v1', model_name='m')\n"
        "assert not loaded(), loaded()\n"
        "from lmstudio_agent.model.modes import strategy_for\n"
        "def weather(city: str) -> str:\n    return city\n"
        "tool = tool_from_function(weather, description='The weather in a city.')\n"
        "strategy_for(ToolMode.CONSTRAINED).request([tool], [{'role': 'user', 'content': 'Weather in Bern?'}])\n"
        "assert 'lmstudio_agent.model.smallmodel.grammar' in sys.modules\n"
        "assert not [m for m in sys.modules if m.startswith('lmstudio_agent.endpoint')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_agent_does_not_import_the_endpoint_or_the_adapters():
    """``agent/`` builds on ``model/`` and the shared bottom (errors, deadline); it knows nothing of HTTP, the
    bridge, MCP, the demo tools or ``LMStudioAgent``."""
    for path in _files("agent"):
        above = {m for m in _core_imports(path) if _under(m, *ABOVE_THE_LIBRARY)}
        assert not above, f"{path.relative_to(CORE)} imports {sorted(above)}"


def test_the_model_side_reads_only_the_loops_data_types():
    """``model/`` never imports the endpoint, the adapters or the loop. The one allowed direction from it into
    ``agent/``: the tool-call modes and the small-model rules read the data the loop hands a strategy
    (``agent.tools``' Tool, ``agent.rounds``' RoundContext, ``agent.documents``' references). The client side
    (client, connection, tool-call parsing, schema, llm, grammar bounds, the policy) imports nothing from
    ``agent/`` at all: it is usable without the loop."""
    allowed = {"lmstudio_agent.agent.loop", "lmstudio_agent.agent.tools", "lmstudio_agent.agent.rounds",
               "lmstudio_agent.agent.documents"}
    client_side = {"client.py", "_chat_request.py", "completions.py", "connection.py", "toolcalls.py",
                   "_call_syntax.py", "_lfm2_text.py", "schema.py", "llm.py", "grammar_bounds.py", "policy.py",
                   "__init__.py"}
    for path in _files("model"):
        imported = _core_imports(path)
        above = {m for m in imported if _under(m, *ABOVE_THE_LIBRARY)}
        assert not above, f"{path.relative_to(CORE)} imports {sorted(above)}"
        from_agent = {m for m in imported if _under(m, "agent")}
        assert from_agent <= allowed, f"{path.relative_to(CORE)} imports {sorted(from_agent - allowed)}"
        if path.parent == CORE / "model" and path.name in client_side:
            assert not from_agent, f"{path.relative_to(CORE)} imports {sorted(from_agent)}"


def test_the_grammar_bounds_stay_neutral():
    """gateway-model reads its schema bounds from ``model.grammar_bounds``: that module imports nothing from the
    project, and ``model/__init__.py`` imports nothing, so it does not pull in the small-model rules."""
    for name in ("grammar_bounds.py", "__init__.py"):
        assert not _core_imports(CORE / "model" / name), name
    code = ("import sys; from lmstudio_agent.model import grammar_bounds; assert grammar_bounds.MAX_SCHEMA_BYTES;"
            "assert not [m for m in sys.modules if m.startswith('lmstudio_agent.model.smallmodel')]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_shared_bottom_imports_nothing_above_it():
    """``errors``, ``deadline`` and ``jsonsafe`` sit under every layer: they import only ``errors``."""
    for name in ("errors.py", "deadline.py", "jsonsafe.py"):
        assert _core_imports(CORE / name) <= {"lmstudio_agent.errors"}, name


def test_the_endpoint_framework_is_not_imported_by_the_adapters_helpers_it_serves():
    """``endpoint/`` uses the agent, the model side, MCP and the demo tools (its backend builds the agent), never
    the bridge, the CLI or ``LMStudioAgent``; of the rest of core only the hub-side relay and the CLI import it."""
    for path in _files("endpoint"):
        wrong = {m for m in _core_imports(path) if _under(m, "bridge", "cli", "lmstudio")}
        assert not wrong, f"{path.relative_to(CORE)} imports {sorted(wrong)}"
    users = sorted(str(p.relative_to(CORE)) for p in CORE.rglob("*.py")
                   if "endpoint" not in p.relative_to(CORE).parts
                   and any(_under(m, "endpoint") for m in _core_imports(p)))
    assert users == ["bridge/relay.py", "cli.py"], users
