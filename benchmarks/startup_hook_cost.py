"""What the timm start-up hook (``resnet_hub_timm_hook.pth``) costs every Python process of the environment.

Goal (issue 22): at most 1 ms, never more than 5 ms. Two figures, both with the interpreter of a chosen environment
(default: this one; ``--python`` picks another, e.g. a fresh venv with the wheel installed):

1. ``python -c pass`` with the hook against the same with ``RESNET_HUB_NO_TIMM_HOOK=1`` (the off-switch, which
   the .pth line reads before importing anything): whole-process wall clock, interleaved pairs, median of the
   per-pair differences. On a loaded machine a process start varies by more than the hook costs, so this
   figure is noisy; it is the one a user feels.
2. The hook's own work, timed inside a fresh process with the hook off: importing ``_resnet_hub_timm_hook`` and
   running ``install_at_startup()`` exactly as the .pth line does (median over processes). This isolates the cost
   from start-up noise.

    python benchmarks/startup_hook_cost.py                      # 40 pairs
    python benchmarks/startup_hook_cost.py --python /tmp/venv/bin/python --pairs 100
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import time

GOAL_MS = 1.0
LIMIT_MS = 5.0
ENV_OFF = "RESNET_HUB_NO_TIMM_HOOK"
# Timed in a child with the hook off, so the module is imported here for the first time.
HOOK_WORK = (
    f"import os, time; del os.environ[{ENV_OFF!r}]; t = time.perf_counter(); "
    "import _resnet_hub_timm_hook as h; h.install_at_startup(); "
    "d = time.perf_counter() - t; assert h.installed(), 'hook did not install'; "
    "import importlib.util, os.path; print(d, os.path.exists(importlib.util.cache_from_source(h.__file__)))"
)


def _env(hook: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_OFF}
    if not hook:
        env[ENV_OFF] = "1"
    return env


def _wall(python: str, hook: bool) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", "pass"], env=_env(hook), check=True)
    return time.perf_counter() - start


def _hook_active(python: str) -> bool:
    code = "import sys; print(any(type(f).__name__ == '_TimmFinder' for f in sys.meta_path))"
    out = subprocess.run([python, "-c", code], env=_env(True), capture_output=True, text=True, check=True).stdout
    return out.strip() == "True"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable, help="Interpreter of the environment to measure.")
    parser.add_argument("--pairs", type=int, default=40, help="Interleaved with/without pairs of `python -c pass`.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the order inside each pair.")
    args = parser.parse_args()

    if not _hook_active(args.python):
        raise SystemExit(f"the start-up hook is not active for {args.python}: is resnet-hub installed there "
                         f"(wheel or editable) and {ENV_OFF} unset?")
    rng = random.Random(args.seed)
    with_hook: list[float] = []
    without: list[float] = []
    for _ in range(3):  # warm the file cache
        _wall(args.python, True), _wall(args.python, False)
    for _ in range(args.pairs):
        order = [True, False]
        rng.shuffle(order)
        for hook in order:
            (with_hook if hook else without).append(_wall(args.python, hook))
    own: list[float] = []
    for _ in range(max(10, args.pairs // 2)):
        seconds, has_pyc = subprocess.run([args.python, "-c", HOOK_WORK], env=_env(False), capture_output=True,
                                          text=True, check=True).stdout.split()
        own.append(float(seconds))

    ms = 1000.0
    base = statistics.median(without) * ms
    hooked = statistics.median(with_hook) * ms
    diff = statistics.median([(a - b) * ms for a, b in zip(with_hook, without)])
    work = statistics.median(own) * ms
    print(f"interpreter: {args.python} (Python {platform.python_version()} here); CPU: {_cpu()}, "
          f"{os.cpu_count()} logical cores")
    print(f"{args.pairs} interleaved pairs of `python -c pass`; medians. The hook's module "
          + ("has its .pyc (installers compile it)" if has_pyc == "True" else
             "has NO .pyc, so it is compiled in every process (PYTHONDONTWRITEBYTECODE, or an installer that "
             "does not compile, e.g. `uv pip install` without --compile-bytecode)"))
    print()
    print("| measure | ms | ratio | goal / limit |")
    print("|---|---:|---:|---|")
    print(f"| `python -c pass`, hook off ({ENV_OFF}=1) | {base:.2f} | 1.000 | |")
    print(f"| `python -c pass`, hook on | {hooked:.2f} | {hooked / base:.3f} | |")
    print(f"| difference per process (median of pairs) | {diff:+.3f} | {diff / base:+.2%} | "
          f"<= {GOAL_MS:g} / {LIMIT_MS:g} ms |")
    print(f"| the hook's own work (import + install, in-process) | {work:.3f} | {work / base:.2%} of a start | "
          f"<= {GOAL_MS:g} / {LIMIT_MS:g} ms |")
    verdict = "meets the goal" if work <= GOAL_MS else "within the limit" if work <= LIMIT_MS else "OVER THE LIMIT"
    print()
    print(f"hook's own work: {work:.3f} ms: {verdict}")
    return 0 if work <= LIMIT_MS else 1


if __name__ == "__main__":
    sys.exit(main())
