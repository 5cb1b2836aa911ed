"""The report's PNG: accuracy per mode, and exact accuracy per tool and mode (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from collections.abc import Mapping


def plot_report(report: Mapping[str, Any], path: str | Path) -> Path:
    """Draw the report's figures into ``path`` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, safe in CI and on servers
    import matplotlib.pyplot as plt

    modes = list(report["modes"])
    summaries = [report["modes"][m] for m in modes]
    tools = sorted({tool for s in summaries for tool in s["per_tool"]})
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(9.0, 0.45 * min(len(tools), 40) + 3), 9),
                                      gridspec_kw={"height_ratios": [1, 1.6]})

    width = 0.38
    xs = range(len(modes))
    top.bar([x - width / 2 for x in xs], [s["name_accuracy"] * 100 for s in summaries], width, label="tool name")
    top.bar([x + width / 2 for x in xs], [s["exact_accuracy"] * 100 for s in summaries], width, label="name + arguments")
    for x, s in zip(xs, summaries, strict=True):
        top.annotate(f"{s['exact_accuracy']:.0%}", (x + width / 2, s["exact_accuracy"] * 100), ha="center",
                     va="bottom", fontsize=8)
    top.set_xticks(list(xs), modes, rotation=20 if len(modes) > 4 else 0, ha="right" if len(modes) > 4 else "center",
                   fontsize=8)
    top.set_ylim(0, 105)
    top.set_ylabel("accuracy (%)")
    top.set_title(f"{report['model']} on {Path(str(report['suite'])).name} ({summaries[0]['tasks']} tasks)")
    top.legend(loc="upper left", fontsize=8)

    if len(tools) > 40:  # a corpus split: restraint and two-step success per mode instead of one bar per tool
        for offset, key, label in ((-width / 2, "restraint", "restraint (no call when no tool fits)"),
                                   (width / 2, "two_step_success", "two-step success")):
            bottom.bar([x + offset for x in xs], [(s.get(key) or 0) * 100 for s in summaries], width, label=label)
        bottom.set_xticks(list(xs), modes, rotation=20, ha="right", fontsize=8)
        bottom.set_ylim(0, 105)
        bottom.set_ylabel("%")
        bottom.set_title("restraint and two-step success")
        bottom.legend(fontsize=8)
        return _save(fig, plt, path)
    group = 0.8 / max(len(modes), 1)
    for i, (mode, s) in enumerate(zip(modes, summaries, strict=True)):
        values = [s["per_tool"].get(tool, {}).get("exact_accuracy", 0.0) * 100 for tool in tools]
        bottom.bar([t + (i - (len(modes) - 1) / 2) * group for t in range(len(tools))], values, group, label=mode)
    bottom.set_xticks(range(len(tools)), tools, rotation=60, ha="right", fontsize=8)
    bottom.set_ylim(0, 105)
    bottom.set_ylabel("exact accuracy (%)")
    bottom.set_title("name + arguments, per expected tool")
    bottom.legend(fontsize=8, ncol=len(modes))
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
