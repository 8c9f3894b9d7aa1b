"""A sweep's results: one typed row per variant, its numbers read from the variant's Report by a table of columns.

`COLUMNS` is the one place a number enters the rows: name, unit, which way is better, the lane it comes from
(`static` counts or a `latency` run) and how to read it from a `Report`. A new column is one line there; rows,
CSV, JSON, constraints, the Pareto front, the CLI's table and the page's menus follow (and the on-disk cache's
keys include the column names, so rows cached without it are computed again).

    >>> [c.name for c in COLUMNS.values() if c.lane == "static"][:4]
    ['params', 'params_m', 'params_delta', 'macs']

No torch here: the web server builds tables and charts from rows that workers computed.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import SpecError, close_matches
from ..report import PlainData, Report

__all__ = ["Column", "COLUMNS", "SweepRow", "SweepStats", "SweepResult", "check_objectives",
           "static_entry", "latency_entry"]


@dataclass(frozen=True)
class Column:
    """A number of each row: `read(report)` (None when the report has none), its unit, and whether lower or higher
    is better (the Pareto front's sense)."""
    name: str
    unit: str
    better: str  # "lower" | "higher"
    lane: str  # "static": from the counts; "latency": from a latency run
    read: Callable[[Report], float | int | None]
    help: str = ""


def _lat(attr: str) -> Callable[[Report], float | None]:
    return lambda r: getattr(r.latency, attr) if r.latency else None


_COLUMNS = (
    Column("params", "count", "lower", "static", lambda r: r.params.total, "parameters"),
    Column("params_m", "M", "lower", "static", lambda r: r.params.total / 1e6, "parameters in millions"),
    Column("params_delta", "count", "lower", "static", lambda r: r.params.delta, "parameters against the base"),
    Column("macs", "count", "lower", "static", lambda r: r.macs.total, "MACs per image"),
    Column("gmacs", "G", "lower", "static", lambda r: r.macs.total / 1e9, "GMACs per image (papers' GFLOPs)"),
    Column("macs_delta", "count", "lower", "static", lambda r: r.macs.delta, "MACs against the base"),
    Column("activations_m", "M", "lower", "static", lambda r: r.activations.total / 1e6,
           "activations per image in millions (fvcore's count, timm's infer_macts)"),
    Column("latency_ms", "ms", "lower", "latency", _lat("median_ms"), "median latency per forward pass"),
    Column("latency_iqr_ms", "ms", "lower", "latency", _lat("iqr_ms"), "spread: inter-quartile range of blocks"),
    Column("latency_ci_low_ms", "ms", "lower", "latency", lambda r: r.latency.median_ci_ms[0] if r.latency else None,
           "95% interval of the median, low end"),
    Column("latency_ci_high_ms", "ms", "lower", "latency",
           lambda r: r.latency.median_ci_ms[1] if r.latency else None, "95% interval of the median, high end"),
    Column("throughput", "img/s", "higher", "latency", _lat("throughput"), "images per second"),
)
COLUMNS: dict[str, Column] = {c.name: c for c in _COLUMNS}


def check_objectives(names: Sequence[Any], where: str = "objectives") -> tuple[str, ...]:
    """Two or more distinct column names (case-insensitive), as a tuple of COLUMNS keys."""
    out = []
    for name in names:
        key = str(name).strip().lower()
        if key not in COLUMNS:
            raise SpecError(f"{where}: {name!r} is not a column{close_matches(key, COLUMNS)}; columns: "
                            f"{', '.join(COLUMNS)}")
        if key in out:
            raise SpecError(f"{where}: {key} is listed twice")
        out.append(key)
    if len(out) < 2:
        raise SpecError(f"{where}: a Pareto front needs two or more objectives, e.g. gmacs, params_m")
    return tuple(out)


# ---- what one run of a variant gives, as cached on disk

def static_entry(report: Report) -> dict[str, Any]:
    """The static part of a row from a Report: the static columns, the final feature map, the warnings."""
    final = report.shape_at("final")
    return {"metrics": {c.name: c.read(report) for c in _COLUMNS if c.lane == "static"},
            "final_shape": list(final.shape) if final else None, "warnings": list(report.warnings)}


def latency_entry(report: Report) -> dict[str, Any]:
    return {"metrics": {c.name: c.read(report) for c in _COLUMNS if c.lane == "latency"}}


# ---- rows and the result

@dataclass
class SweepRow:
    """One variant: its axis `values` and `label`, its normalised `spec` (the plain data that was validated when it
    does not validate), the cache `key`, and either its numbers (`metrics`, by COLUMNS name; latency ones None
    unless the sweep timed it) or `error`: why it is invalid (a SpecError line: a value the spec refuses, a stride
    a Swin cannot tile) or did not finish (a worker stopped)."""
    index: int
    label: str
    values: dict[str, Any]
    spec: dict[str, Any]
    key: str
    error: str | None = None
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    final_shape: list[int] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class SweepStats:
    """How a run went: variants, computed now, read from the on-disk cache, invalid; seconds of wall time."""
    variants: int
    computed: int
    cached: int
    invalid: int
    seconds: float
    runner: str = "inline"


@dataclass
class SweepResult(PlainData):
    """Every variant's row, the rows meeting `where` (`kept`, indices) and the Pareto front over `objectives`
    among them (`front`, indices). `latency` holds the latency options when the sweep was timed."""
    title: str | None
    description: str | None
    axes: list[str]
    count: int
    rows: list[SweepRow]
    columns: list[str]
    objectives: list[str]
    where: str
    kept: list[int]
    front: list[int]
    latency: dict[str, Any] | None
    stats: SweepStats

    def row(self, index: int) -> SweepRow:
        return self.rows[index]

    def refilter(self, where: str | None = None, objectives: Sequence[str] | None = None) -> SweepResult:
        """The same rows under other constraints or objectives (nothing runs)."""
        from .constraints import parse_constraints
        from .pareto import front_of
        objectives = check_objectives(objectives or self.objectives)
        constraints = parse_constraints(where or "")
        kept = [r.index for r in self.rows if r.ok and constraints.admit(r.metrics)]
        return replace(self, where=constraints.text, objectives=list(objectives), kept=kept,
                       front=front_of([self.rows[i] for i in kept], objectives))

    def records(self, rows: Sequence[SweepRow] | None = None) -> list[dict[str, Any]]:
        """Flat records (one per row) for CSV and tables: index, label, kept, front, error, each axis's value, the
        columns, final shape, warnings, key, spec (JSON)."""
        kept, front = set(self.kept), set(self.front)
        out = []
        for r in self.rows if rows is None else rows:
            rec: dict[str, Any] = {"index": r.index, "label": r.label, "kept": r.index in kept,
                                   "front": r.index in front, "error": r.error or ""}
            rec |= {a: _cell(r.values.get(a)) for a in self.axes}
            rec |= {c: r.metrics.get(c) for c in self.columns}
            rec |= {"final_shape": "x".join(map(str, r.final_shape)) if r.final_shape else "",
                    "warnings": " | ".join(r.warnings), "key": r.key,
                    "spec": json.dumps(r.spec, sort_keys=True, separators=(",", ":"))}
            out.append(rec)
        return out

    def to_csv(self) -> str:
        records = self.records()
        buf = io.StringIO()
        fieldnames = list(records[0]) if records else ["index", "label"]
        writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
        writer.writeheader()
        for rec in records:
            writer.writerow({k: "" if v is None else v for k, v in rec.items()})
        return buf.getvalue()


def _cell(value: Any) -> Any:
    """An axis value in a flat record: scalars as they are, lists and mappings as compact JSON."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, separators=(", ", ": "))
