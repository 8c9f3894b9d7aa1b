"""Numbers as people read them: one formatter for the CLI, the page and the plots.

Wording: a MAC is one multiply-accumulate; fvcore counts one fused multiply-add as one "flop", which is what most
vision papers call FLOPs, so GMACs here equal the "GFLOPs" of papers. A FLOP *rate* (TFLOP/s) counts 2 x MACs.
M and G are powers of ten (1 M = 10^6); memory is in MiB / GiB (powers of two), and says so.

    >>> millions(28_088_024), giga(4_112_190_976), params(13), macs(12_544)
    ('28.09 M', '4.112 G', '13', '0.013 MMACs')
    >>> signed(-2_530_992, millions), percent(2_530_992, 25_557_032)
    ('-2.53 M', '+9.9%')
"""
from __future__ import annotations

from collections.abc import Callable

__all__ = ["MACS_NOTE", "FLOPS_NOTE", "millions", "giga", "params", "macs", "signed", "percent", "ms", "ms_interval",
           "mib"]

MACS_NOTE = "GMACs = the 'FLOPs' of papers (one multiply-accumulate counted once)"
FLOPS_NOTE = "TFLOP/s counts 2 x MACs per second"


def millions(n: float, unit: str = " M") -> str:
    return f"{n / 1e6:,.2f}{unit}"


def giga(n: float, unit: str = " G") -> str:
    return f"{n / 1e9:,.3f}{unit}"


def params(n: float) -> str:
    """Millions, or the exact count below 100 K (a stitched ECA adds a handful of parameters)."""
    return millions(n) if abs(n) >= 1e5 else f"{int(n):,}"


def macs(n: float) -> str:
    """GMACs; MMACs below 10 M; the exact count below 1 K."""
    if abs(n) >= 1e7:
        return giga(n, " GMACs")
    return f"{n / 1e6:,.3f} MMACs" if abs(n) >= 1e3 else f"{int(n):,} MACs"


def signed(n: float, fmt: Callable[[float], str]) -> str:
    return ("+" if n >= 0 else "-") + fmt(abs(n))


def percent(delta: float, base: float) -> str:
    """The change as a percentage of the base, with as many decimals as it takes to show it ('' for base 0)."""
    if not base:
        return ""
    pct = 100 * delta / base
    if abs(pct) >= 0.1 or pct == 0:
        return f"{pct:+.1f}%"
    return f"{pct:+.3f}%" if abs(pct) >= 0.001 else ("+" if pct > 0 else "-") + "<0.001%"


def ms(t: float) -> str:
    return f"{t:,.2f} ms"


def ms_interval(interval: tuple[float, float] | list[float]) -> str:
    """A (low, high) interval of times in ms, e.g. `Latency.median_ci_ms`: '78.90-81.25 ms'."""
    lo, hi = interval
    return f"{lo:,.2f}-{hi:,.2f} ms"


def mib(n_bytes: float) -> str:
    """Bytes in MiB (2^20), or GiB from 1 GiB."""
    return f"{n_bytes / 2 ** 30:,.2f} GiB" if abs(n_bytes) >= 2 ** 30 else f"{n_bytes / 2 ** 20:,.1f} MiB"
