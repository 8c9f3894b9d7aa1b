"""The Pareto front: the rows no other row beats on every objective at once.

A point dominates another when it is at least as good in every objective and strictly better in one (Deb,
"Multi-Objective Optimization using Evolutionary Algorithms", 2001, def. 2.5). Rows equal in every objective do not
dominate each other, so both stay on the front. Pure functions over numbers; each objective is minimised, a
"higher is better" column (throughput) is negated first.

    >>> pareto_front([(1, 9), (2, 4), (3, 4), (4, 1), (5, 5)])
    [0, 1, 3]
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["pareto_front", "front_of"]


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices (ascending) of the non-dominated points, every coordinate minimised.

    Sorted lexicographically, a point can only be dominated by one before it, and a point dominated by anything is
    dominated by a point of the front; so each point is checked against the front found so far: O(n log n + n f)
    for a front of f points.
    """
    order = sorted(range(len(points)), key=lambda i: tuple(points[i]))
    front: list[int] = []
    for i in order:
        p = points[i]
        if not any(_dominates(points[j], p) for j in front):
            front.append(i)
    return sorted(front)


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def front_of(rows: Sequence[Any], objectives: Sequence[str]) -> list[int]:
    """The `index` of each row on the front over `objectives` (COLUMNS names, each in its own sense); rows lacking
    one of the objectives (invalid, or not timed) are left out. `rows` have `.index` and `.metrics` (SweepRow)."""
    from .results import COLUMNS
    sign = [-1.0 if COLUMNS[o].better == "higher" else 1.0 for o in objectives]
    usable = [r for r in rows if _has(r.metrics, objectives)]
    points = [[s * float(r.metrics[o]) for s, o in zip(sign, objectives)] for r in usable]
    return [usable[i].index for i in pareto_front(points)]


def _has(metrics: Mapping[str, Any], objectives: Sequence[str]) -> bool:
    return all(metrics.get(o) is not None for o in objectives)
