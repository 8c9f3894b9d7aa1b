"""Statistics of timed blocks: median, IQR, a distribution-free confidence interval of the median, and whether two
latencies differ by more than that noise. Pure Python, no torch (the page and `compare` use it too).
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .report import Latency

__all__ = ["LEVEL", "median_interval", "block_stats", "BlockStats", "LatencyDifference", "difference"]

LEVEL = 0.95  # confidence level of the interval of the median


def _coverage(n: int, k: int) -> float:
    """P(x(k) <= median < x(n-k+1)) for n draws of any continuous distribution: 1 - 2 P(Binomial(n, 1/2) < k)."""
    return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2 ** n


def median_interval(times: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """The order-statistic confidence interval of the median of `times`: (x(k), x(n-k+1)) of the sorted values, k
    the largest rank whose coverage 1 - 2 P(Binomial(n, 1/2) < k) is at least `level`.

    Distribution-free: it assumes only independent draws from one continuous distribution, no normality (block times
    are skewed: a block can be slowed, hardly sped up). The method: Conover, *Practical Nonparametric Statistics*
    (3rd ed., 1999), section 3.2, the confidence interval for a quantile, here the median (p = 1/2).
    At 95% it needs at least 6 values; from 9 on it leaves out the fastest and the slowest.

    >>> median_interval([15, 11, 18, 10, 14, 19, 12, 16, 13, 17])   # n = 10: k = 2, coverage 97.9%
    (11, 18)
    >>> median_interval(range(1, 13))   # n = 12: k = 3, coverage 96.1%
    (3, 10)
    """
    xs, n = sorted(times), len(times)
    if _coverage(n, 1) < level:
        raise ValueError(f"{n} values cannot give a {level:.0%} interval of the median (it needs at least "
                         f"{next(m for m in range(1, 64) if _coverage(m, 1) >= level)})")
    k = max(k for k in range(1, n // 2 + 1) if _coverage(n, k) >= level)
    return xs[k - 1], xs[n - k]


@dataclass(frozen=True)
class BlockStats:
    """Median, inter-quartile range (numpy's linear quantiles, as torch.utils.benchmark reports) and the
    `LEVEL` interval of the median of some block times."""
    median: float
    iqr: float
    median_ci: tuple[float, float]


def block_stats(times: Sequence[float]) -> BlockStats:
    """`BlockStats` of `times` (at least 6 values).

    >>> block_stats([4, 1, 3, 2, 6, 5, 8, 7, 10, 9])
    BlockStats(median=5.5, iqr=4.5, median_ci=(2, 9))
    """
    q1, q2, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return BlockStats(median=q2, iqr=q3 - q1, median_ci=median_interval(times))


@dataclass(frozen=True)
class LatencyDifference:
    """`b` against `a`: `delta_ms` = b's median - a's, `ratio` = b's median / a's. `clear` when the two medians'
    95% intervals do not overlap; otherwise the difference is within the noise of the measurements."""
    delta_ms: float
    ratio: float
    clear: bool

    @property
    def label(self) -> str:
        """'slower' or 'faster' (b against a) when clear, else 'within noise'."""
        if not self.clear:
            return "within noise"
        return "slower" if self.delta_ms > 0 else "faster"


def difference(a: Latency, b: Latency) -> LatencyDifference:
    """How `b`'s latency differs from `a`'s, and whether that is more than noise (the intervals of the two medians,
    `Latency.median_ci_ms`, do not overlap). Both should be measured alike (device, batch, dtype).

    >>> from playground.report import Latency
    >>> def lat(median, lo, hi):
    ...     return Latency(device="cpu", batch=1, dtype="fp32", channels_last=False, compiled=False, threads=2,
    ...                    median_ms=median, iqr_ms=hi - lo, median_ci_ms=(lo, hi), throughput=1e3 / median,
    ...                    tflops=None)
    >>> difference(lat(80.0, 78.0, 83.0), lat(84.0, 82.5, 86.0)).label   # +5%, the intervals overlap
    'within noise'
    >>> d = difference(lat(80.0, 78.0, 83.0), lat(92.0, 90.0, 95.0))
    >>> round(d.delta_ms, 1), round(d.ratio, 3), d.clear, d.label
    (12.0, 1.15, True, 'slower')
    """
    (a_lo, a_hi), (b_lo, b_hi) = a.median_ci_ms, b.median_ci_ms
    return LatencyDifference(delta_ms=b.median_ms - a.median_ms, ratio=b.median_ms / a.median_ms,
                             clear=b_lo > a_hi or a_lo > b_hi)
