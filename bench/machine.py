"""The machine a benchmark ran on, recorded beside its figures: the figures mean little without it."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else platform.processor(), else ''."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def describe(label: str = "") -> dict:
    """CPU, core count, platform, Python and the load at the time; ``label`` names the machine in words."""
    info = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    label = label or os.environ.get("BENCH_MACHINE", "")
    if label:
        info["label"] = label
    return info


def summary(machine: object) -> str:
    """One line for a recorded ``machine`` entry (older files hold a bare string)."""
    if not isinstance(machine, dict):
        return str(machine or "unknown machine")
    parts = [machine.get("label") or "", machine.get("cpu") or "",
             f"{machine.get('cpus') or machine.get('cpu_count')} CPUs" if (machine.get("cpus") or machine.get("cpu_count")) else "",
             machine.get("platform", "").split("-with-")[0], f"Python {machine['python']}" if machine.get("python") else ""]
    load = machine.get("load_avg_1m", machine.get("load_average_1m_at_end"))
    if load is not None:
        parts.append(f"load {load:.1f}")
    return ", ".join(part for part in parts if part)
