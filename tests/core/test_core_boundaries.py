"""The core must run under Pyodide: pydantic + httpx only, no threads or subprocesses, no adapter imports."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core" / "src" / "lmstudio_agent"
OPTIONAL = {"cli.py", "bridge", "eval", "mcp"}  # behind the cli/bridge/eval/mcp extras


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
            " 'lmstudio_gateway', 'aws_lambda_powertools', 'mcp', 'anyio') if m in sys.modules]; print(bad); assert not bad")
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
