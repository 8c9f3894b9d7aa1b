"""Constraints on a sweep's rows, `"gmacs <= 4.5, params_m <= 30"`: parsed by a small grammar, never evaluated.

Each constraint is `COLUMN OP NUMBER[SUFFIX]`, separated by commas, `;` or `and`. Columns are the results'
(`playground.sweep.results.COLUMNS`, case-insensitive, so `GMACs` is `gmacs`); OP one of `<= < >= > == !=`;
a number may end in an SI suffix, k, M, G or T (`params <= 30 M` is `params <= 30000000`). A row lacking the
value (invalid, or not timed) does not meet a constraint on it.

    >>> c = parse_constraints("GMACs <= 4.5, params <= 30 M")
    >>> c.text, c.admit({"gmacs": 4.1, "params": 25_557_032}), c.admit({"gmacs": 4.6, "params": 1})
    ('gmacs <= 4.5, params <= 30000000', True, False)
"""
from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError, close_matches

__all__ = ["Constraint", "Constraints", "parse_constraints", "OPS", "SUFFIXES"]

OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, "<": operator.lt, ">=": operator.ge,
                                                  ">": operator.gt, "==": operator.eq, "!=": operator.ne}
SUFFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
MAX_TEXT = 1000
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ONE = re.compile(rf"\s*([A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>)\s*({_NUMBER})\s*([kKMGT]?)\s*")
_SPLIT = re.compile(r"\s*(?:,|;|\band\b)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Constraint:
    column: str
    op: str
    value: float

    def admit(self, metrics: Mapping[str, Any]) -> bool:
        v = metrics.get(self.column)
        return v is not None and OPS[self.op](float(v), self.value)

    def __str__(self) -> str:
        return f"{self.column} {self.op} {self.value:g}" if abs(self.value) < 1e6 else \
            f"{self.column} {self.op} {self.value:.0f}"


@dataclass(frozen=True)
class Constraints:
    items: tuple[Constraint, ...] = ()

    def admit(self, metrics: Mapping[str, Any]) -> bool:
        return all(c.admit(metrics) for c in self.items)

    @property
    def text(self) -> str:
        """The constraints written back in normal form ('' for none)."""
        return ", ".join(map(str, self.items))


def parse_constraints(text: str | None) -> Constraints:
    """Constraints from text; a part that is not `COLUMN OP NUMBER` is a one-line SpecError quoting it."""
    from .results import COLUMNS
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise SpecError(f"where: longer than {MAX_TEXT} characters")
    items = []
    for part in filter(None, _SPLIT.split(text)):
        m = _ONE.fullmatch(part)
        if not m:
            raise SpecError(f"where: {part!r} is not `column op number` (e.g. gmacs <= 4.5, params <= 30 M); "
                            f"ops: {' '.join(OPS)}")
        name, op, number, suffix = m.groups()
        column = name.lower()
        if column not in COLUMNS:
            raise SpecError(f"where: {name!r} is not a column{close_matches(column, COLUMNS)}; columns: "
                            f"{', '.join(COLUMNS)}")
        items.append(Constraint(column, op, float(number) * SUFFIXES[suffix]))
    return Constraints(tuple(items))
