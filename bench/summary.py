"""Print every benchmark figure beside its target, marking misses, with the machine each came from.

    python bench/summary.py DIR [NAME ...]     # NAME: core, gateway_tokens, bridge, lambda, sizes, serverless_bridge (default: all found)

`make bench` runs it on the figures it just measured (DIR is .venv/bench-results, or bench/results with RECORD=1).
Exit status 0 even when a target is missed: a benchmark reports, the tests assert.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

sys.path.insert(0, str(Path(__file__).parent))
from machine import summary as machine_summary  # noqa: E402


@dataclass
class Figure:
    what: str
    measured: str
    target: str
    met: bool | None  # None: no target, shown for context


def _core(d: dict) -> list[Figure]:
    t = d.get("targets", {})
    out = [Figure("cold import lmstudio_agent", f"{d['import_lmstudio_agent_ms']:.0f} ms", f"<= {t.get('import_ms', 200)} ms",
                  d["import_lmstudio_agent_ms"] <= t.get("import_ms", 200))]
    if "import_ratio" in d:
        out.append(Figure("  vs LiteLLM", f"{d['import_ratio']:.3f} ({d['import_litellm_ms']:.0f} ms)",
                          f"<= {t.get('import_ratio_max', 0.05)}", d["import_ratio"] <= t.get("import_ratio_max", 0.05)))
    loop = d["loop_overhead_per_round"]
    out.append(Figure("agent-loop overhead per round, p50", f"{loop['p50_ms']:.3f} ms", f"<= {t.get('loop_p50_ms', 1.0)} ms",
                      loop["p50_ms"] <= t.get("loop_p50_ms", 1.0)))
    out.append(Figure("  p99", f"{loop['p99_ms']:.3f} ms", "", None))
    return out


def _gateway(d: dict) -> list[Figure]:
    return [
        Figure("tokens/s through the gateway", f"{d['gateway']['median_tokens_per_s']:.1f}", "", None),
        Figure("tokens/s llama-cpp-python in-process", f"{d['direct']['median_tokens_per_s']:.1f}", "", None),
        Figure("  gateway / in-process", f"{d['ratio_gateway_over_direct']:.3f}", f">= {d['target_ratio']}",
               d["ratio_gateway_over_direct"] >= d["target_ratio"]),
    ]


def _bridge(d: dict) -> list[Figure]:
    h = d["headline"]
    return [
        Figure(f"bridge round trips, {h['in_flight']} in flight", f"{h['tasks_per_s']:,.0f} tasks/s", ">= 2,000 tasks/s",
               h["tasks_per_s"] >= 2000),
        Figure("  p99", f"{h['p99_ms']:.1f} ms", "< 10 ms", h["p99_ms"] < 10),
    ]


def _lambda(d: dict) -> list[Figure]:
    c = d["cold_import"]["bytecode_compiled"]
    a = d["artifact"]
    return [
        Figure("Lambda cold import vs LiteLLM handler",
               f"{c['ratio']:.3f} ({c['handler']['median_ms']:.0f} vs {c['litellm_handler']['median_ms']:.0f} ms)",
               f"<= {d['cold_import']['target_ratio']}", bool(c["pass"])),
        Figure("  artifact zip", f"{a['zip_mb']:.1f} MB", f"<= {a['target_mb']:.0f} MB", bool(a["pass"])),
    ]


def _sizes(d: dict) -> list[Figure]:
    wheel, worker, zipped = d["core_wheel"], d["worker_upload"], d["lambda_zip"]
    return [
        Figure("core wheel", f"{wheel['bytes'] / 1000:.0f} KB", f"< {wheel['target_bytes'] / 1000:.0f} KB",
               bool(wheel["pass"])),
        Figure("Worker upload (dry-run bundle)", f"{worker['bytes'] / 1024:.0f} KiB",
               f"< {worker['target_bytes'] / 1024:.0f} KiB", bool(worker["pass"])),
        Figure("Lambda zip", f"{zipped['bytes'] / 1024 / 1024:.1f} MiB",
               f"< {zipped['target_bytes'] / 1024 / 1024:.0f} MiB", bool(zipped["pass"])),
    ]


def _serverless_bridge(d: dict) -> list[Figure]:
    names = {"process_hub": "bridge /execute, process hub", "cloudflare_durable_objects": "  Worker + Durable Objects",
             "aws_api_gateway_websocket": "  Lambda + API Gateway WS"}
    return [Figure(names.get(name, name), f"p50 {f['p50_ms']:.2f} / p99 {f['p99_ms']:.1f} ms", "", None)
            for name, f in d["hubs"].items()]


EXTRACTORS: dict[str, Callable[[dict], list[Figure]]] = {
    "core": _core, "gateway_tokens": _gateway, "bridge": _bridge, "lambda": _lambda, "sizes": _sizes,
    "serverless_bridge": _serverless_bridge,
}


def render(directory: Path, names: list[str]) -> tuple[str, int, int]:
    """The table as text, the number of figures with a target, and the number missed."""
    lines: list[str] = []
    checked = missed = 0
    for name in names:
        path = directory / f"{name}.json"
        if not path.is_file():
            lines.append(f"{name}: no figures at {path}")
            continue
        data = json.loads(path.read_text())
        when = data.get("recorded_at") or data.get("when") or ""
        lines.append(f"{name}  ({machine_summary(data.get('machine'))}{'; ' + when if when else ''})")
        for fig in EXTRACTORS[name](data):
            mark = "" if fig.met is None else ("ok" if fig.met else "MISSED")
            checked += fig.met is not None
            missed += fig.met is False
            lines.append(f"  {fig.what:<40} {fig.measured:>26}   {fig.target:<18} {mark}")
    return "\n".join(lines), checked, missed


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    directory = Path(argv[0])
    names = argv[1:] or [name for name in EXTRACTORS if (directory / f"{name}.json").is_file()]
    unknown = [name for name in names if name not in EXTRACTORS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(EXTRACTORS)})", file=sys.stderr)
        return 2
    text, checked, missed = render(directory, names)
    print(text)
    verdict = f"{missed} of {checked} targets MISSED on this machine" if missed else f"all {checked} targets met"
    print(f"{verdict}; figures in {directory}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
