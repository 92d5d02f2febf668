"""The ceilings a benchmark run compares each backend with: one measured GEMM rate per arithmetic in use
(:mod:`resnet_hub.tasks.ceilings` measures them), taken before and after the timed rounds."""

from __future__ import annotations

from typing import Iterable

from ..ceilings import Ceiling


def measure_ceilings(threads: int, arithmetics: Iterable[str], peak_gflops: float | None = None,
                     previous: dict[str, Ceiling] | None = None) -> dict[str, Ceiling]:
    """Measured GEMM ceilings for the arithmetics in use ('fp32', 'int8'); ``peak_gflops`` replaces fp32's.

    With ``previous`` (an earlier measurement in the same run), each arithmetic keeps the higher of the two: a
    ceiling measured while other processes held the cores is too low, and measuring before and after the timed
    rounds makes that less likely.
    """
    from ..ceilings import measure_ceiling, user_ceiling

    ceilings: dict[str, Ceiling] = {}
    for arithmetic in dict.fromkeys(a for a in arithmetics if a in ("fp32", "int8")):
        if arithmetic == "fp32" and peak_gflops:
            ceilings["fp32"] = user_ceiling(peak_gflops)
            continue
        measured = measure_ceiling(arithmetic, threads)
        earlier = (previous or {}).get(arithmetic)
        if earlier is not None and (measured is None or earlier.gops > measured.gops):
            measured = earlier
        if measured is not None:
            ceilings[arithmetic] = measured
    return ceilings
