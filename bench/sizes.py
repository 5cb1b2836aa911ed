"""What each deployment ships, in bytes; figures go to bench/results/sizes.json.

1. The core wheel (``pip wheel ./core``): target under 300 KB.
2. The Worker upload: the files ``wrangler deploy --dry-run --outdir`` bundled (``make worker-build``), raw and
   gzipped as wrangler reports them: target under 500 KiB. Pydantic and httpx are not in it: pywrangler
   vendors them from the Pyodide index at deploy time, and the runtime provides pydantic-core.
3. The Lambda zip: the function ``sam build`` built (``make lambda-build``, boto3 excluded), deflated: under
   the target bench/lambda_bench.py holds it to (10 MiB).

Each bundle is also checked to carry the core package only: no eval harness, no suite data, no hub server.
A missed target or a foreign file is reported (MISSED in bench/summary.py), not an error: a benchmark reports.

Usage: python bench/sizes.py [--lambda-artifact .aws-sam/build/AgentFunction] [--worker-dist cloudflare/dist]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from lambda_bench import ARTIFACT_TARGET_BYTES  # noqa: E402  (one target for the Lambda zip)
from machine import describe  # noqa: E402

CORE_WHEEL_TARGET_BYTES = 300_000
WORKER_UPLOAD_TARGET_BYTES = 500 * 1024
PIP_TIMEOUT_SECONDS = 300
# Names that belong to the distributions above core; none may reach a deployment bundle.
NOT_CORE = ("lmstudio_eval", "lmstudio_hub", "lmstudio_gateway", "lmstudio_finetune")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _foreign(paths: list[str]) -> list[str]:
    """The paths that are not core's: another project package, or suite data (JSONL)."""
    return [p for p in paths if any(part in NOT_CORE for part in Path(p).parts) or p.endswith(".jsonl")]


def core_wheel(workdir: Path) -> dict:
    """Build the core wheel as pip would for an install, and measure it."""
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "-q", "--no-deps",
                    str(ROOT / "core"), "-w", str(workdir)], check=True, timeout=PIP_TIMEOUT_SECONDS)
    (wheel,) = workdir.glob("lmstudio_agent-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    size = wheel.stat().st_size
    return {"file": wheel.name, "bytes": size, "kb": round(size / 1000, 1), "files": len(names),
            "target_bytes": CORE_WHEEL_TARGET_BYTES, "foreign_files": _foreign(names),
            "pass": size < CORE_WHEEL_TARGET_BYTES and not _foreign(names)}


def worker_upload(dist: Path) -> dict:
    """The dry-run bundle's files, raw and each gzipped (wrangler's "Total Upload: X KiB / gzip: Y KiB")."""
    files = _files(dist)
    if not (dist / "entry.py").is_file():
        raise SystemExit(f"no Worker bundle at {dist}: run `make worker-build` first")
    raw = sum(p.stat().st_size for p in files)
    gzipped = sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in files)
    rel = [str(p.relative_to(dist)) for p in files]
    return {"bytes": raw, "kib": round(raw / 1024, 1), "gzip_kib": round(gzipped / 1024, 1), "files": len(files),
            "target_bytes": WORKER_UPLOAD_TARGET_BYTES, "foreign_files": _foreign(rel),
            "pass": raw < WORKER_UPLOAD_TARGET_BYTES and not _foreign(rel)}


def lambda_zip(artifact: Path, workdir: Path) -> dict:
    """The built function deflated into one zip, as SAM packages it."""
    if not (artifact / "app.py").is_file():
        raise SystemExit(f"no built function at {artifact}: run `make lambda-build` first")
    archive = workdir / "function.zip"
    files = _files(artifact)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in files:
            zf.write(path, path.relative_to(artifact))
    size = archive.stat().st_size
    core = artifact / "lmstudio_agent"
    core_bytes = sum(p.stat().st_size for p in _files(core)) if core.is_dir() else 0
    rel = [str(p.relative_to(artifact)) for p in files]
    largest = sorted(((sum(p.stat().st_size for p in _files(d)), d.name) for d in artifact.iterdir() if d.is_dir()),
                     reverse=True)[:5]
    return {"bytes": size, "mib": round(size / 1024 / 1024, 2), "files": len(files),
            "target_bytes": ARTIFACT_TARGET_BYTES,
            "largest_packages_unzipped_mib": {name: round(n / 1024 / 1024, 2) for n, name in largest},
            "core_package_unzipped_kb": round(core_bytes / 1000, 1), "foreign_files": _foreign(rel),
            "pass": size < ARTIFACT_TARGET_BYTES and not _foreign(rel)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambda-artifact", type=Path, default=ROOT / ".aws-sam" / "build" / "AgentFunction")
    parser.add_argument("--worker-dist", type=Path, default=ROOT / "cloudflare" / "dist")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sizes.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        results = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": describe(),
            "core_wheel": core_wheel(workdir),
            "worker_upload": worker_upload(args.worker_dist),
            "lambda_zip": lambda_zip(args.lambda_artifact, workdir),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    failed = [name for name, figures in results.items() if isinstance(figures, dict) and "pass" in figures
              and not figures["pass"]]
    if failed:
        print(f"size targets missed or foreign files bundled: {', '.join(failed)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
