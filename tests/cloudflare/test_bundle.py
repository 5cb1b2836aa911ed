"""The Worker's deploy artefact: the real ``wrangler deploy --dry-run`` (pinned wrangler, Node 22) and its bundle.

Needs cloudflare/node_modules (``npm ci``, the $(STAMPS)/worker stamp of mk/worker.mk). The Worker's wrangler
config, workers-py project and npm pins are checked as files, since the real deploy reads them.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "cloudflare"
CORE_PACKAGE = REPO / "core" / "src" / "lmstudio_agent"


def _load_bundle():
    spec = importlib.util.spec_from_file_location("worker_bundle", WORKER / "bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bundle = _load_bundle()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real dry-run build for the module."""
    outdir = tmp_path_factory.mktemp("worker") / "dist"
    bundle.build(outdir)
    return outdir


def test_dry_run_bundle_carries_the_entry_and_the_core_package(built: Path) -> None:
    assert (built / "entry.py").read_bytes() == (WORKER / "src" / "entry.py").read_bytes()
    assert (built / "kv_cache.py").is_file() and (built / "do_runs.py").is_file()
    core_files = bundle.package_files(CORE_PACKAGE)
    assert Path("endpoint/contract.py") in core_files and Path("endpoint/backend.py") in core_files
    for rel in core_files:
        assert (built / "python_modules" / "lmstudio_agent" / rel).read_bytes() == (CORE_PACKAGE / rel).read_bytes()
    assert not list(built.rglob("__pycache__"))


def test_bundle_check_catches_a_missing_or_stale_core_file(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "dist"
    shutil.copytree(built, copy)
    (copy / "python_modules" / "lmstudio_agent" / "endpoint" / "contract.py").unlink()
    (copy / "python_modules" / "lmstudio_agent" / "endpoint" / "cache.py").write_text("# edited\n")
    (copy / "entry.py").unlink()
    with pytest.raises(bundle.BuildError) as failure:
        bundle.check_bundle(copy)
    message = str(failure.value)
    assert "entry.py is missing" in message
    assert "lmstudio_agent/endpoint/contract.py is missing" in message
    assert "lmstudio_agent/endpoint/cache.py differs" in message


def test_a_syntax_error_fails_the_build(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def f(:\n")
    with pytest.raises(bundle.BuildError, match="syntax error"):
        bundle.compile_sources([tmp_path])


@pytest.mark.parametrize(
    "change, reported",
    [
        pytest.param("bogus_setting = 1\n", "Unexpected fields", id="unknown-field"),
        pytest.param("", "src/missing_entry.py", id="missing-entry-module"),
    ],
)
def test_a_wrangler_error_or_config_warning_fails_the_build(tmp_path: Path, change: str, reported: str) -> None:
    config = (WORKER / "wrangler.toml").read_text()
    if not change:
        config = config.replace('main = "src/entry.py"', 'main = "src/missing_entry.py"')
    bad = WORKER / f".wrangler-test-{tmp_path.name}.toml"  # beside the real one, so paths resolve alike
    bad.write_text(change + config)
    try:
        with pytest.raises(bundle.BuildError, match=reported):
            bundle.wrangler_dry_run(tmp_path / "dist", config=bad)
    finally:
        bad.unlink()


def test_wrangler_config_is_a_python_worker_with_kv_and_no_secrets_in_vars() -> None:
    config = tomllib.loads((WORKER / "wrangler.toml").read_text())
    assert config["main"] == "src/entry.py"
    assert "python_workers" in config["compatibility_flags"]
    assert [ns["binding"] for ns in config["kv_namespaces"]] == ["CACHE"]
    assert {"LM_STUDIO_URL", "LM_STUDIO_MODEL"} <= set(config["vars"])
    assert not {"CLIENT_API_KEY", "LM_STUDIO_TOKEN"} & set(config["vars"])  # those are `wrangler secret put`


def test_workers_py_project_vendors_the_core_from_this_repo() -> None:
    project = tomllib.loads((WORKER / "pyproject.toml").read_text())
    assert "lmstudio-agent" in project["project"]["dependencies"]
    source = project["tool"]["uv"]["sources"]["lmstudio-agent"]
    core = (WORKER / source["path"]).resolve()
    assert tomllib.loads((core / "pyproject.toml").read_text())["project"]["name"] == "lmstudio-agent"
    assert any(d.startswith("workers-py") for d in project["dependency-groups"]["dev"])


def test_wrangler_and_node_are_pinned_exactly_with_a_lockfile() -> None:
    package = json.loads((WORKER / "package.json").read_text())
    lock = json.loads((WORKER / "package-lock.json").read_text())
    for name in ("wrangler", "node"):
        version = package["devDependencies"][name]
        assert version[0].isdigit(), f"{name} must be pinned exactly, not {version!r}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert int(package["devDependencies"]["node"].split(".")[0]) >= 22  # current wrangler needs Node >= 22
