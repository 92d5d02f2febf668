"""The machine a benchmark ran on: physical cores, the CPU's ISA, load, library versions."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch

from ...cpu import isa_summary


def cpuinfo() -> list[dict[str, str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    processors = []
    for block in text.strip().split("\n\n"):
        entry = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            entry[key.strip()] = value.strip()
        processors.append(entry)
    return processors


def physical_cores(processors: list[dict[str, str]]) -> int:
    """Physical cores this process may run on (SMT siblings share FMA units, so they do not add peak)."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        allowed = set(range(os.cpu_count() or 1))
    cores = {
        (p.get("physical id", "0"), p.get("core id", p.get("processor")))
        for p in processors
        if p.get("processor", "").isdigit() and int(p["processor"]) in allowed
    }
    return len(cores) or len(allowed)


def default_threads() -> int:
    """Physical cores available to this process: more intra-op threads than that only adds contention."""
    return physical_cores(cpuinfo())


def load_average() -> str:
    """1/5/15-minute load averages: how busy the machine was, to judge the absolute numbers."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else ""


def environment() -> dict[str, str]:
    """Versions and CPU facts (model name, ISA) that every figure of the run depends on."""
    import timm

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "cpu": next((p.get("model name", "") for p in cpuinfo()), platform.processor()),
        "isa": isa_summary(),
        "load_average": load_average(),
    }
    with contextlib.suppress(ImportError):
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    with contextlib.suppress(ImportError):
        from importlib import metadata

        env["openvino"] = metadata.version("openvino")
    return env
