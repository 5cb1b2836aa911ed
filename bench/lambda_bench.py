"""Benchmarks of the Lambda endpoint; figures go to bench/results/lambda.json.

1. Cold import of the handler module, against a handler built on LiteLLM as the notebook does, in the same run:
   fresh subprocesses on the same interpreter, several runs, the median. Each handler imports from its own
   tree, as from /var/task (ours: what lambda/Makefile builds; LiteLLM's: its venv's packages). The target
   (a tenth) is judged with bytecode compiled, as a build on the runtime's Python ships it; the source-only
   figures (no .pyc for either side) are recorded too.
2. The built artifact (`sam build`, boto3 excluded) zipped: its size.
3. Handler overhead per request: the handler in-process (moto for Secrets Manager) against a loopback
   OpenAI-protocol upstream, minus the same upstream call made directly with httpx.

Usage: python bench/lambda_bench.py --litellm-python .venv/tools/litellm/bin/python \
           --artifact .aws-sam/build/AgentFunction --out bench/results/lambda.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from machine import describe  # noqa: E402

IMPORT_TARGET_RATIO = 0.10
ARTIFACT_TARGET_BYTES = 10 * 1024 * 1024

# The notebook's way: LiteLLM's completion() against LM Studio, wrapped in the reference's handler shape.
LITELLM_HANDLER = '''
import json
import os
from litellm import completion


def lambda_handler(event, context):
    body = json.loads(event.get("body") or "{}")
    instruction = body.get("instruction")
    if not instruction:
        return {"statusCode": 400, "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"error": "Missing instruction"})}
    response = completion(model="openai/" + os.environ.get("LM_STUDIO_MODEL", "lfm2-350m"),
                          api_base=os.environ.get("LM_STUDIO_API_BASE", "http://localhost:1234/v1"),
                          api_key=os.environ.get("LM_STUDIO_API_KEY", "42"),
                          messages=[{"role": "user", "content": instruction}])
    result = [{"type": "result", "content": response.choices[0].message.content}]
    return {"statusCode": 200, "headers": {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"},
            "body": json.dumps({"result": result})}
'''

# Runs in a fresh interpreter (-S: no site-packages but the tree given, whose .pth files are honoured):
# time only the import of the handler module.
IMPORT_PROBE = '''
import importlib.util, site, sys, time
tree, path = sys.argv[1], sys.argv[2]
site.addsitedir(tree)
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler_under_test", path)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
assert callable(module.lambda_handler)
print((time.perf_counter() - t0) * 1000.0)
'''

FUNCTION_ENV = {
    "POWERTOOLS_SERVICE_NAME": "lmstudio-agent", "POWERTOOLS_METRICS_NAMESPACE": "LMStudioAgent",
    "AWS_DEFAULT_REGION": "us-east-1", "LITELLM_LOG": "ERROR",
    # LiteLLM fetches its model cost map from GitHub at import unless told to use the bundled copy; the bundled
    # copy is the faster, offline path, so LiteLLM is measured at its best.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}


def _import_ms(tree: Path, handler: Path) -> float:
    """One fresh interpreter's import time of ``handler`` (-B: the tree stays as it is)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONPYCACHEPREFIX")}
    env.update(FUNCTION_ENV)
    done = subprocess.run([sys.executable, "-S", "-B", "-c", IMPORT_PROBE, str(tree), str(handler)], env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"import of {handler} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def _interleaved_import_ms(sides: dict[str, tuple[Path, Path]], runs: int) -> dict[str, dict]:
    """Median import times, the sides taking turns run by run so both meet the same machine load."""
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for run in range(runs + 1):  # the first round warms the OS file cache; it is dropped
        for name, (tree, handler) in sides.items():
            elapsed = _import_ms(tree, handler)
            if run:
                samples[name].append(elapsed)
    return {name: {"median_ms": round(statistics.median(v), 1), "min_ms": round(min(v), 1),
                   "max_ms": round(max(v), 1), "runs": len(v)} for name, v in samples.items()}


def _strip_bytecode(tree: Path) -> None:
    for cache in list(tree.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def _compile(tree: Path) -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                    str(tree)], check=False, capture_output=True, timeout=1200)


def _function_tree(workdir: Path) -> Path:
    """Our function as lambda/Makefile builds it, for this interpreter (the artifact targets 3.13): the same
    requirements, core and handler files, and .pyc compiled as a build on the runtime's Python ships them."""
    tree = workdir / "ours"
    version = "{}.{}".format(*sys.version_info[:2])
    subprocess.run(["make", "--no-print-directory", "-f", "lambda/Makefile", "build-AgentFunction",
                    f"ARTIFACTS_DIR={tree}", f"LAMBDA_PYTHON={sys.executable}", f"LAMBDA_PYTHON_VERSION={version}"],
                   cwd=ROOT, check=True, timeout=900, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return tree


def _litellm_tree(litellm_python: str, workdir: Path) -> tuple[Path, Path, str]:
    """LiteLLM's installed packages (its venv's site-packages, copied) and the notebook-style handler."""
    found = subprocess.run([litellm_python, "-c", "import litellm, sys, importlib.metadata as m, sysconfig; "
                            "print(sysconfig.get_paths()['purelib']); print(m.version('litellm')); "
                            "print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True, check=True, timeout=300).stdout.split()
    site_packages, version, python_version = found
    if python_version != "{}.{}".format(*sys.version_info[:2]):
        raise SystemExit(f"LiteLLM's venv runs Python {python_version}; the bench needs the same as its own")
    tree = workdir / "litellm"
    shutil.copytree(site_packages, tree, symlinks=True)
    _compile(tree)
    handler = workdir / "litellm_handler.py"
    handler.write_text(LITELLM_HANDLER)
    return tree, handler, version


def bench_cold_import(litellm_python: str, runs: int, workdir: Path) -> dict:
    """Both handlers on the same interpreter, each from its own tree, under two conditions: with their
    bytecode compiled (what a build on the runtime's Python ships), and from source only (no .pyc at all for
    the handler's packages; the standard library keeps its own in both cases)."""
    ours_tree = _function_tree(workdir)
    theirs_tree, theirs_handler, version = _litellm_tree(litellm_python, workdir)
    results: dict = {"litellm_version": version, "target_ratio": IMPORT_TARGET_RATIO}
    for condition in ("bytecode_compiled", "source_only"):
        if condition == "source_only":
            _strip_bytecode(ours_tree)
            _strip_bytecode(theirs_tree)
        timed = _interleaved_import_ms({"ours": (ours_tree, ours_tree / "app.py"),
                                        "litellm": (theirs_tree, theirs_handler)}, runs)
        ours, theirs = timed["ours"], timed["litellm"]
        ratio = ours["median_ms"] / theirs["median_ms"]
        results[condition] = {"handler": ours, "litellm_handler": theirs, "ratio": round(ratio, 4),
                              "pass": ratio <= IMPORT_TARGET_RATIO}
    results["pass"] = results["bytecode_compiled"]["pass"]
    return results


def bench_artifact(artifact: Path, workdir: Path) -> dict:
    if not (artifact / "app.py").exists():
        raise SystemExit(f"no built artifact at {artifact}: run `make lambda-build` first")
    archive = workdir / "function.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(artifact.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(artifact))
    unzipped = sum(p.stat().st_size for p in artifact.rglob("*") if p.is_file())
    size = archive.stat().st_size
    top = sorted(((sum(f.stat().st_size for f in d.rglob("*") if f.is_file()), d.name)
                  for d in artifact.iterdir() if d.is_dir()), reverse=True)[:5]
    return {"zip_bytes": size, "zip_mb": round(size / 1024 / 1024, 2), "unzipped_mb": round(unzipped / 1024 / 1024, 2),
            "boto3_included": (artifact / "boto3").exists() or (artifact / "botocore").exists(),
            "largest_packages_mb": {name: round(b / 1024 / 1024, 2) for b, name in top},
            "target_mb": ARTIFACT_TARGET_BYTES / 1024 / 1024, "pass": size <= ARTIFACT_TARGET_BYTES}


def _percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered), 3),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3), "n": len(ordered)}


def bench_overhead(requests: int) -> dict:
    import httpx

    from tests.endpoints.drivers import EndpointConfig
    from tests.endpoints.drivers.lambda_driver import LambdaDriver, proxy_event
    from tests.support.openai_stub import MODEL_ID, ScriptedOpenAIServer, text

    key = "bench-client-key"
    body = json.dumps({"instruction": "What is 2 + 3?", "tools": ["analyze_sentiment"]})
    # The handler's log lines and metrics are written (their cost counts) but not onto the terminal.
    with ScriptedOpenAIServer(token="sk-lm-bench") as stub, open(os.devnull, "w") as sink, \
            contextlib.redirect_stdout(sink):
        stub.default = text("2 + 3 = 5.")
        driver = LambdaDriver(EndpointConfig(stub.base_url, "sk-lm-bench", key, MODEL_ID, 25.0, tool_mode="native"))
        try:
            def timed(headers: dict[str, str]) -> list[float]:
                samples = []
                for i in range(requests + 20):
                    event = proxy_event("POST", "/execute", headers=headers, body=body)
                    t0 = time.perf_counter()
                    result = driver.invoke(event)
                    elapsed = (time.perf_counter() - t0) * 1000.0
                    assert result["statusCode"] == 200, result["body"]
                    if i >= 20:
                        samples.append(elapsed)
                return samples

            uncached = timed({"Authorization": f"Bearer {key}", "Cache-Control": "no-cache"})
            before = len(stub.chat_requests)
            cached = timed({"Authorization": f"Bearer {key}"})  # the first fills the cache; the rest are hits
            upstream_calls_cached_run = len(stub.chat_requests) - before
            chat = stub.chat_requests[-1]
            direct = []
            with httpx.Client(timeout=10.0) as client:
                for i in range(requests + 20):
                    t0 = time.perf_counter()
                    response = client.post(f"{stub.base_url}/chat/completions", json=chat,
                                           headers={"Authorization": "Bearer sk-lm-bench"})
                    elapsed = (time.perf_counter() - t0) * 1000.0
                    response.raise_for_status()
                    if i >= 20:
                        direct.append(elapsed)
        finally:
            driver.close()
    handler = _percentiles(uncached)
    upstream = _percentiles(direct)
    return {
        "description": "POST /execute through lambda_handler (generated API Gateway event, "
                       "auth with the cached secret, core, one upstream round trip), minus the same chat "
                       "completion sent directly with httpx. Cache-Control: no-cache, so DynamoDB is not touched.",
        "handler_uncached": handler,
        "direct_upstream_call": upstream,
        "overhead_median_ms": round(handler["median_ms"] - upstream["median_ms"], 3),
        "cache_hit_in_moto": {**_percentiles(cached), "note": "DynamoDB is moto in-process here, not the service"},
        "upstream_calls_during_cached_run": upstream_calls_cached_run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--litellm-python", required=True, help="python of the venv that has litellm")
    parser.add_argument("--artifact", type=Path, default=ROOT / ".aws-sam" / "build" / "AgentFunction")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lambda.json")
    parser.add_argument("--import-runs", type=int, default=9)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lambda-bench-") as tmp:
        workdir = Path(tmp)
        results = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": describe(),
            "cold_import": bench_cold_import(args.litellm_python, args.import_runs, workdir),
            "artifact": bench_artifact(args.artifact, workdir),
            "overhead": bench_overhead(args.requests),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    # Misses are reported by bench/summary.py beside each target (a benchmark reports; it does not fail).


if __name__ == "__main__":
    main()
