"""Tokens/s of the embedded model through the gateway (HTTP) against llama-cpp-python in-process.

Same GGUF, prompt, greedy decoding, max_tokens, n_threads, n_ctx and logits_all on both sides; runs are
interleaved (gateway, direct, gateway, ...) so that load from other processes hits both alike; the median
of each side is compared. Target: gateway/direct >= 0.95. Writes bench/results/gateway_tokens.json.

    .venv/bin/python bench/gateway_tokens.py [--runs 7] [--max-tokens 128] [--n-threads N]
"""

from __future__ import annotations

import json
import os
import sys
import statistics
import time
from datetime import datetime, UTC
from pathlib import Path
from typing import Annotated, Any

import httpx
import llama_cpp
import typer
from rich.console import Console
from rich.table import Table

from lmstudio_gateway.models import default_model_path
from lmstudio_gateway.process import run_in_background
from lmstudio_gateway.server import DEFAULT_N_CTX

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "gateway_tokens.json"
TARGET_RATIO = 0.95
PROMPT = "Write a detailed story about a lighthouse keeper who finds a message in a bottle."
MESSAGES = [{"role": "user", "content": PROMPT}]

console = Console()


def _rate(completion: dict[str, Any], seconds: float) -> dict[str, Any]:
    tokens = completion["usage"]["completion_tokens"]
    return {
        "seconds": round(seconds, 4),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 2),
        "text": completion["choices"][0]["message"]["content"],
    }


def main(
    runs: Annotated[int, typer.Option(min=1, help="Measured runs per side (after one warm-up each).")] = 7,
    max_tokens: Annotated[int, typer.Option(min=1)] = 128,
    n_threads: Annotated[
        int, typer.Option(min=1, help="CPU threads for both sides [default: llama-cpp-python's, half the cores].")
    ] = max((os.cpu_count() or 1) // 2, 1),
    output: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = RESULTS,
) -> None:
    model_path = default_model_path()
    # Every sampling knob explicit: the server's request defaults (repeat_penalty=1.1, ...) differ from
    # Llama.create_chat_completion's, and both sides must decode the very same tokens.
    params = {
        "max_tokens": max_tokens, "temperature": 0.0, "top_k": 40, "top_p": 0.95, "min_p": 0.05,
        "repeat_penalty": 1.1, "seed": 0,
    }
    direct = llama_cpp.Llama(
        model_path=str(model_path), n_ctx=DEFAULT_N_CTX, n_threads=n_threads, logits_all=True, verbose=False
    )
    samples: dict[str, list[dict[str, Any]]] = {"gateway": [], "direct": []}
    # bare: the same weights as the in-process run, so the figure is the serving overhead alone
    with run_in_background(n_threads=n_threads, bare=True) as server, httpx.Client(timeout=600) as client:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        body = {"model": server.model, "messages": MESSAGES, **params}

        def via_gateway() -> dict[str, Any]:
            start = time.perf_counter()
            response = client.post(f"{server.base_url}/chat/completions", json=body, headers=headers)
            elapsed = time.perf_counter() - start
            response.raise_for_status()
            return _rate(response.json(), elapsed)

        def in_process() -> dict[str, Any]:
            start = time.perf_counter()
            completion = direct.create_chat_completion(messages=MESSAGES, **params)
            return _rate(completion, time.perf_counter() - start)

        via_gateway(), in_process()  # warm-up: page in the weights, fill each side's prompt cache
        for index in range(runs):
            console.print(f"run {index + 1}/{runs}", style="dim")
            samples["gateway"].append(via_gateway())
            samples["direct"].append(in_process())

    medians = {side: statistics.median(s["tokens_per_s"] for s in runs_) for side, runs_ in samples.items()}
    ratio = medians["gateway"] / medians["direct"]
    # Each gateway run against the direct run right after it: less sensitive to load drifting over time.
    paired = statistics.median(g["tokens_per_s"] / d["tokens_per_s"] for g, d in zip(samples["gateway"], samples["direct"], strict=True))
    texts = {s["text"] for runs_ in samples.values() for s in runs_}
    result = {
        "benchmark": "gateway_tokens",
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model_path.name,
        "llama_cpp_python": llama_cpp.__version__,
        "machine": describe(),
        "settings": {"prompt": PROMPT, "runs": runs, "n_threads": n_threads, "n_ctx": DEFAULT_N_CTX, **params},
        "same_output_every_run": len(texts) == 1,
        "gateway": {
            "median_tokens_per_s": medians["gateway"],
            "runs": [{k: v for k, v in s.items() if k != "text"} for s in samples["gateway"]],
        },
        "direct": {
            "median_tokens_per_s": medians["direct"],
            "runs": [{k: v for k, v in s.items() if k != "text"} for s in samples["direct"]],
        },
        "ratio_gateway_over_direct": round(ratio, 4),
        "paired_ratio_median": round(paired, 4),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")

    table = Table(title=f"{model_path.name}: {max_tokens} tokens, greedy, {n_threads} threads, {runs} runs")
    table.add_column("path")
    table.add_column("median tokens/s", justify="right")
    table.add_column("min", justify="right")
    table.add_column("max", justify="right")
    for side, label in (("direct", "llama-cpp-python in-process"), ("gateway", "gateway over HTTP")):
        rates = [s["tokens_per_s"] for s in samples[side]]
        table.add_row(label, f"{medians[side]:.1f}", f"{min(rates):.1f}", f"{max(rates):.1f}")
    console.print(table)
    verdict = "[green]meets" if result["meets_target"] else "[red]misses"
    console.print(
        f"ratio gateway/direct = {ratio:.3f} ({verdict}[/] the {TARGET_RATIO} target; paired median {paired:.3f});"
        f" written to {output}"
    )


if __name__ == "__main__":
    typer.run(main)
