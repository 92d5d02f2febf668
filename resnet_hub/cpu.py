"""The CPU facts that speed figures and runtime arithmetic depend on: which vector and matrix extensions exist.

A throughput is never quoted without them: int8 kernels run 2-4x faster with VNNI (``vpdpbusd``) than with
AVX2's ``vpmaddubsw``, AMX multiplies whole tiles, and OpenVINO's CPU plugin silently computes in bf16 on CPUs with
``avx512_bf16`` / AMX. Linux's /proc/cpuinfo is read; elsewhere the facts are unknown (all False).
"""

from __future__ import annotations

from pathlib import Path

# (fact, cpuinfo flags that establish it), in the order a reader scans them.
_FACTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AVX2", ("avx2",)),
    ("FMA", ("fma",)),
    ("AVX-512", ("avx512f",)),
    ("VNNI", ("avx512_vnni", "avx_vnni")),
    ("AVX512_BF16", ("avx512_bf16",)),
    ("AVX512_FP16", ("avx512_fp16",)),
    ("AMX", ("amx_tile", "amx_int8", "amx_bf16")),
    ("NEON dot product", ("asimddp",)),
)


def cpu_flags() -> set[str]:
    """Instruction-set flags of the first CPU listed in /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def isa_facts(flags: set[str] | None = None) -> dict[str, bool]:
    """{'AVX2': True, 'AVX-512': True, 'VNNI': True, 'AVX512_BF16': True, 'AMX': False, ...}."""
    flags = cpu_flags() if flags is None else flags
    return {name: bool(flags & set(needles)) for name, needles in _FACTS}


def isa_summary(flags: set[str] | None = None) -> str:
    """One line: what this CPU has and, for the extensions that change the figures, what it lacks."""
    facts = isa_facts(flags)
    present = [name for name, has in facts.items() if has]
    missing = [name for name in ("VNNI", "AVX512_BF16", "AMX") if not facts[name]]
    if not present:
        return "unknown (no /proc/cpuinfo flags)"
    return " ".join(present) + (f"; no {', '.join(missing)}" if missing else "")
