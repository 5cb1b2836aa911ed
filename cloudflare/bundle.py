"""Build and check the Worker bundle offline: ``python cloudflare/bundle.py build [--outdir DIR]``.

``pywrangler deploy`` vendors the Worker's Python packages into ``python_modules/`` (the core package from
``../core`` through ``[tool.uv.sources]``, pydantic and httpx from the Pyodide index) and wrangler uploads
that folder beside ``src/``. ``pywrangler sync`` needs the internet, so this build places the core package
there itself, byte for byte, runs ``wrangler deploy --dry-run --outdir DIR`` and checks that the bundle
carries the entry module and every file of the core package: what is checked here is what runs there.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

WORKER_DIR = Path(__file__).resolve().parent
REPO_ROOT = WORKER_DIR.parent
SRC_DIR = WORKER_DIR / "src"
CORE_PACKAGE = REPO_ROOT / "core" / "src" / "lmstudio_agent"
PYTHON_MODULES = WORKER_DIR / "python_modules"
DEFAULT_OUTDIR = WORKER_DIR / "dist"
WRANGLER_TIMEOUT_SECONDS = 300
ENTRY_MODULES = ("entry.py", "kv_cache.py", "do_runs.py", "do_bridge.py", "js_streams.py")

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# An error, or a warning about the configuration (an unknown or misplaced field): both fail the build.
_FAILURE = re.compile(r"\[ERROR\]|\[WARNING\] Processing .* configuration")


class BuildError(RuntimeError):
    """The bundle could not be built, or it does not carry what must run on Workers."""


def package_files(root: Path) -> list[Path]:
    """The files of a package tree as paths relative to ``root`` (no bytecode caches)."""
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def place_core(python_modules: Path = PYTHON_MODULES) -> Path:
    """Copy the core package into the vendored-modules folder, replacing any older copy."""
    if not CORE_PACKAGE.is_dir():
        raise BuildError(f"core package not found at {CORE_PACKAGE}")
    target = python_modules / CORE_PACKAGE.name
    if target.exists():
        shutil.rmtree(target)
    python_modules.mkdir(parents=True, exist_ok=True)
    shutil.copytree(CORE_PACKAGE, target, ignore=_IGNORED)
    return target


def compile_sources(roots: list[Path]) -> None:
    """Fail on a syntax error in any module that goes into the bundle (wrangler does not parse Python)."""
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            try:
                compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
            except SyntaxError as exc:
                raise BuildError(f"syntax error in {path}: {exc}") from None


def wrangler_dry_run(outdir: Path, config: Path | None = None) -> str:
    """``wrangler deploy --dry-run --outdir`` with the pinned wrangler and Node; its output, or BuildError.

    ``config``: another wrangler config file than cloudflare/wrangler.toml (the tests use it).
    """
    outdir = outdir.resolve()
    bin_dir = WORKER_DIR / "node_modules" / ".bin"
    if not (bin_dir / "wrangler").exists():
        raise BuildError(f"wrangler is not installed in {bin_dir}: run `npm ci` in {WORKER_DIR} (make worker-build does)")
    if outdir.exists():
        shutil.rmtree(outdir)
    env = dict(os.environ)
    # node_modules/.bin first, as npx does: wrangler then runs on the pinned Node 22 (the `node` package).
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("WRANGLER_SEND_METRICS", "false")
    env["FORCE_COLOR"] = "0"
    command = ["wrangler", "deploy", "--dry-run", "--outdir", str(outdir)]
    if config is not None:
        command += ["--config", str(config.resolve())]
    proc = subprocess.run(
        command,
        cwd=WORKER_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=WRANGLER_TIMEOUT_SECONDS,
    )
    output = _ANSI.sub("", proc.stdout + proc.stderr)
    if proc.returncode != 0 or _FAILURE.search(output):
        raise BuildError(f"wrangler deploy --dry-run failed (exit {proc.returncode}):\n{output}")
    return output


def check_bundle(outdir: Path) -> list[str]:
    """Check the dry-run bundle: the entry modules and an exact copy of the core package. Returns its files."""
    problems = []
    for name in ENTRY_MODULES:
        built = outdir / name
        if not built.is_file():
            problems.append(f"{name} is missing from the bundle")
        elif built.read_bytes() != (SRC_DIR / name).read_bytes():
            problems.append(f"{name} in the bundle differs from src/{name}")
    bundled_core = outdir / "python_modules" / CORE_PACKAGE.name
    expected = package_files(CORE_PACKAGE)
    if not bundled_core.is_dir():
        problems.append(f"python_modules/{CORE_PACKAGE.name} is missing from the bundle")
    else:
        found = set(package_files(bundled_core))
        for rel in expected:
            if rel not in found:
                problems.append(f"python_modules/{CORE_PACKAGE.name}/{rel} is missing from the bundle")
            elif (bundled_core / rel).read_bytes() != (CORE_PACKAGE / rel).read_bytes():
                problems.append(f"python_modules/{CORE_PACKAGE.name}/{rel} differs from core/src")
        for rel in sorted(found - set(expected)):
            problems.append(f"python_modules/{CORE_PACKAGE.name}/{rel} is not in core/src (stale copy?)")
    if problems:
        raise BuildError("the Worker bundle is incomplete:\n  " + "\n  ".join(problems))
    return [str(p) for p in package_files(outdir)]


def build(outdir: Path = DEFAULT_OUTDIR) -> list[str]:
    """Place the core package, check the sources compile, dry-run wrangler and check its bundle."""
    place_core()
    compile_sources([SRC_DIR, PYTHON_MODULES / CORE_PACKAGE.name])
    output = wrangler_dry_run(outdir)
    sys.stdout.write(output)
    return check_bundle(outdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "place", "check"])
    parser.add_argument("--outdir", type=Path, default=DEFAULT_OUTDIR)
    args = parser.parse_args(argv)
    args.outdir = args.outdir.resolve()  # wrangler runs in cloudflare/, the caller may not
    try:
        if args.command == "place":
            print(f"placed {place_core()}")
        elif args.command == "check":
            files = check_bundle(args.outdir)
            print(f"bundle OK: {len(files)} files in {args.outdir}")
        else:
            files = build(args.outdir)
            print(f"bundle OK: {len(files)} files in {args.outdir} (entry modules and {CORE_PACKAGE.name})")
    except BuildError as exc:
        print(f"worker build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
