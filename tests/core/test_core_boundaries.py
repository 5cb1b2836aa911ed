"""The core must run under Pyodide: pydantic + httpx only, no threads or subprocesses, no adapter imports."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core" / "src" / "lmstudio_agent"
OPTIONAL = {"cli.py", "bridge", "eval"}  # behind the cli/bridge/eval extras


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
            " 'lmstudio_gateway', 'aws_lambda_powertools') if m in sys.modules]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True)
