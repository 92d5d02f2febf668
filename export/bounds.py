"""Figures shown against their bounds, never rounded into an apparent pass.

A refusal that reads "top-5 overlap 80 % (>= 80 %)" or "loses 1.00 points, more than the 1 allowed" contradicts
itself: the value failed by less than the printed precision. :func:`against` prints a failing value with as many
more digits as it takes to differ from its bound in the failing direction.
"""

from __future__ import annotations

import math
import re

_SPEC = re.compile(r"^(?P<head>[^.]*)\.(?P<digits>\d+)(?P<kind>[efg%])$")


def _more(fmt: str, extra: int) -> str:
    match = _SPEC.match(fmt)
    if match is None:  # e.g. 'g': start from 6 significant digits
        return f".{6 + extra}g"
    return f"{match['head']}.{int(match['digits']) + extra}{match['kind']}"


def figure(value: float, bound: float, fmt: str, *, at_least: bool) -> str:
    """``value`` formatted with ``fmt``; when it fails the bound (below an ``at_least`` bound, above an at-most one)
    with more digits until the printed value differs from the printed bound."""
    fails = value < bound if at_least else value > bound
    text = format(value, fmt)
    if not fails or not math.isfinite(value) or not math.isfinite(bound):
        return text
    for extra in range(0, 12):
        spec = fmt if extra == 0 else _more(fmt, extra)
        if format(value, spec) != format(bound, spec):
            return format(value, spec)
    return repr(value)


def against(value: float, bound: float, fmt: str, *, at_least: bool, bound_fmt: str | None = None) -> str:
    """``"<value> (>= <bound>)"`` (or ``<=``), the value never shown as equal to a bound it fails."""
    shown = figure(value, bound, fmt, at_least=at_least)
    return f"{shown} ({'>=' if at_least else '<='} {format(bound, bound_fmt or fmt)})"
