"""How fast the ``resnet-hub`` command answers, as a ratio to ``python -c "import torch"`` on the same machine.

Targets (issue 12): ``--help`` and every ``COMMAND --help`` at most 0.25x, ``list`` / ``info`` at most 0.5x.
Each repetition runs every command once in a shuffled order (so a busy neighbour slows all of them alike), and
the ratio is of medians. Ratios, not seconds, are what carries from one machine to another.

    python benchmarks/cli_startup.py             # 5 repetitions
    python benchmarks/cli_startup.py --reps 9    # steadier on a loaded machine
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ("list", "info", "finetune", "evaluate", "predict", "benchmark", "convert", "publish", "export", "verify")


def _cli() -> list[str]:
    """The console script of this interpreter's environment (what users run), else ``python -m resnet_hub``."""
    script = Path(sys.executable).parent / "resnet-hub"
    if script.exists():
        return [str(script)]
    found = shutil.which("resnet-hub")
    return [found] if found else [sys.executable, "-m", "resnet_hub"]


def cases() -> list[tuple[str, list[str], float | None]]:
    """(label, argv, limit as a ratio to the torch import; None for the baseline itself)."""
    cli = _cli()
    rows: list[tuple[str, list[str], float | None]] = [
        ('python -c "import torch"', [sys.executable, "-c", "import torch"], None),
        ("resnet-hub --help", [*cli, "--help"], 0.25),
        ("resnet-hub --version", [*cli, "--version"], 0.25),
    ]
    rows += [(f"resnet-hub {c} --help", [*cli, c, "--help"], 0.25) for c in COMMANDS]
    rows += [
        ("resnet-hub list", [*cli, "list"], 0.5),
        ("resnet-hub info myresnet50", [*cli, "info", "myresnet50"], 0.5),
    ]
    return rows


def _run(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="Repetitions of every command (interleaved).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the shuffled order.")
    args = parser.parse_args()

    rows = cases()
    times: dict[str, list[float]] = {label: [] for label, _, _ in rows}
    rng = random.Random(args.seed)
    for _ in range(args.reps):
        order = list(rows)
        rng.shuffle(order)
        for label, argv, _ in order:
            times[label].append(_run(argv))

    baseline = statistics.median(times[rows[0][0]])
    print(f"{args.reps} interleaved repetitions, medians; baseline {rows[0][0]}: {baseline:.3f} s")
    print()
    print("| command | median (s) | ratio to import torch | limit | |")
    print("|---|---:|---:|---:|---|")
    failures = 0
    for label, _, limit in rows:
        median = statistics.median(times[label])
        ratio = median / baseline
        verdict = "" if limit is None else ("ok" if ratio <= limit else "OVER")
        failures += verdict == "OVER"
        limit_text = "" if limit is None else f"{limit:.2f}x"
        print(f"| `{label}` | {median:.3f} | {ratio:.3f}x | {limit_text} | {verdict} |")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
