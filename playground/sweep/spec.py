"""The sweep spec: a base spec and axes, each axis a list of values for one field; the variants are their product.

    title: ECA kernel sizes on ResNet-50 stages
    base:                                  # a spec, or a preset's name
      backbone: resnet50
      insert: [{at: "layer1.*.bn3", module: eca, args: {kernel_size: 3}}]
    axes:                                  # field path -> values; the Cartesian product by default
      insert[0].at: ["layer1.*.bn3", "layer4.*.bn3"]
      insert[0].args.kernel_size: [3, 5, 7, 9]
    zip:                                   # optional: axes that take their values together (equal lengths)
      - [stem.stride, stem.kernel]
    latency: false                         # or true, or analyze's latency options {batch: 8, device: cuda}
    objectives: [gmacs, params_m]          # the Pareto front's axes (columns of the results)
    limit: 256                             # refuse more variants than this before anything runs

An axis addresses a field of the spec by a dotted path: `backbone`, `img_size`, `stem.stride`, `insert` (a whole
list), `insert[0].module`, `insert[0].at`, `insert[0].module.merge`, `insert[0].args.kernel_size`, `gate`,
`head_norm` ... Missing mappings on the way are created; a shorter path is set before a longer one (a whole `insert`
list, then `insert[0].module` in it). The sweep's own structure is validated here, each
problem one `SpecError` line naming the field; a variant whose spec does not validate (a bad value, an index the
spec's list does not have) is a variant with its reason, not a failure of the sweep (issue 15). Plain data and
`yaml.safe_load`, as `playground.spec`; no torch.

    >>> s = load_sweep({"base": {"backbone": "resnet18"}, "axes": {"img_size": [64, 96], "gate": [False, True]}})
    >>> s.count, s.describe()
    (4, '4 variants: img_size (2) x gate (2)')
    >>> [v.label for v in s.expand()][:2]
    ['img_size=64 · gate=false', 'img_size=64 · gate=true']
"""
from __future__ import annotations

import copy
import itertools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..choices import BATCH, DEVICES, DTYPES, LATENCY_OPTIONS
from ..errors import SpecError, close_matches
from ..spec import Spec, load_spec, parse_text, read_spec_file

__all__ = ["SweepSpec", "Variant", "load_sweep", "set_path", "DEFAULT_LIMIT", "MAX_LIMIT", "MAX_AXES",
           "MAX_AXIS_VALUES", "check_latency_options"]

DEFAULT_LIMIT = 256  # variants a sweep may have unless it (or the caller) sets `limit`
MAX_LIMIT = 100_000  # the most any limit may be (a list of variants in memory, one row each)
MAX_AXES = 16
MAX_AXIS_VALUES = 256
_KEYS = ("title", "description", "base", "axes", "zip", "latency", "objectives", "limit")
_FIELDS = tuple(f.name for f in fields(Spec) if f.name not in ("title", "description"))
_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*")
_SEGMENT = re.compile(r"\.?([A-Za-z_]\w*)|\[(\d+)\]")


@dataclass(frozen=True)
class Variant:
    """One point of the sweep: the value of every axis, the spec they make (None when it does not validate, and
    then `error` says why), and `data`, the plain spec that was validated."""
    index: int
    values: dict[str, Any]
    label: str
    data: dict[str, Any]
    spec: Spec | None = None
    error: str | None = None


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep. `dims` are the product's factors: one axis, or the axes of a zip group, each a tuple of
    axis paths taking their values together."""
    base: dict[str, Any]
    axes: dict[str, list]
    dims: tuple[tuple[str, ...], ...]
    title: str | None = None
    description: str | None = None
    latency: dict | None = None  # None: no latency; {}: analyze's defaults
    objectives: tuple[str, ...] = ("gmacs", "params_m")
    limit: int = DEFAULT_LIMIT
    labels: dict[str, str] = field(default_factory=dict)  # axis -> its short name in variant labels

    @property
    def count(self) -> int:
        """Variants in the sweep: the product of the factors' lengths (nothing is expanded to count them)."""
        return math.prod(len(self.axes[dim[0]]) for dim in self.dims)

    def describe(self) -> str:
        """'24 variants: backbone (2) x insert[0].module (3) x stem.stride + stem.kernel (4)'."""
        parts = [" + ".join(dim) + f" ({len(self.axes[dim[0]])})" for dim in self.dims]
        n = self.count
        return f"{n:,} variant{'s' if n != 1 else ''}" + (f": {' x '.join(parts)}" if parts else " (no axes)")

    def check_count(self, limit: int | None = None) -> None:
        """Refuse, in one line, a sweep of more variants than `limit` (default: the sweep's own)."""
        limit = self.limit if limit is None else limit
        if self.count > limit:
            raise SpecError(f"sweep: {self.describe()}, over the limit of {limit:,}; narrow an axis, or raise the "
                            f"limit (`limit:` in the sweep, --limit)")

    def expand(self) -> list[Variant]:
        """Every variant, in the product's order (the last axis varies fastest). Check the count first."""
        return list(self._variants())

    def _variants(self) -> Iterator[Variant]:
        ranges = [range(len(self.axes[dim[0]])) for dim in self.dims]
        for index, picks in enumerate(itertools.product(*ranges)):
            values = {axis: self.axes[axis][k] for dim, k in zip(self.dims, picks) for axis in dim}
            values = {axis: values[axis] for axis in self.axes}  # the axes' declared order
            yield self._variant(index, values)

    def _variant(self, index: int, values: dict[str, Any]) -> Variant:
        label = " · ".join(f"{self.labels.get(a, a)}={_short(v)}" for a, v in values.items())
        data = copy.deepcopy(self.base)
        try:
            for axis in sorted(values, key=lambda a: len(_segments(a))):  # `insert` before `insert[0].module`
                set_path(data, axis, copy.deepcopy(values[axis]))
            data.pop("title", None), data.pop("description", None)  # a variant is named by its values
            return Variant(index, values, label, data, spec=load_spec(data))
        except SpecError as e:
            return Variant(index, values, label, data, error=str(e))


def _short(value: Any) -> str:
    """A value as a label shows it: YAML's words for scalars, one-line YAML for lists and mappings."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True, sort_keys=False).strip()
    return text.removesuffix("\n...").removesuffix(" ...").strip()


# ---- dotted paths into plain spec data

def _segments(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _SEGMENT.findall(path)]


def set_path(data: dict, path: str, value: Any) -> None:
    """Set `path` (`stem.stride`, `insert[0].module.merge`) in plain spec data, creating missing mappings on the way.
    A step that is not there (an index past a list's end, a mapping key on a string) is a one-line SpecError."""
    segs = _segments(path)
    node: Any = data
    walked = ""
    for k, seg in enumerate(segs):
        last = k == len(segs) - 1
        where = walked or "the spec"
        if isinstance(seg, int):
            if not isinstance(node, list):
                raise SpecError(f"{path}: {where} is {_short(node)}, not a list")
            if seg >= len(node):
                raise SpecError(f"{path}: {where} has {len(node)} entr{'y' if len(node) == 1 else 'ies'}, no [{seg}]")
            if last:
                node[seg] = value
            else:
                node = node[seg]
            walked += f"[{seg}]"
            continue
        if not isinstance(node, dict):
            raise SpecError(f"{path}: {where} is {_short(node)}, not a mapping")
        if last:
            node[seg] = value
        else:
            if node.get(seg) is None:
                node[seg] = {} if isinstance(segs[k + 1], str) else []
            node = node[seg]
        walked += ("." if walked else "") + seg


# ---- loading and validation

def load_sweep(source: SweepSpec | dict | str | Path) -> SweepSpec:
    """A SweepSpec from a SweepSpec, a dict, YAML/JSON text, or a file given as a `pathlib.Path` (a `str` is text,
    as for `load_spec`). Problems with the sweep itself are one-line SpecErrors naming the field."""
    if isinstance(source, SweepSpec):
        return source
    if isinstance(source, Path):
        source = read_spec_file(source, "sweep")
    if isinstance(source, str):
        data = _sweep_text(source)
        if isinstance(data, str):
            raise SpecError(f"sweep: {data[:80]!r} is text, not a sweep; a preset by name: "
                            f"playground.sweep.load_sweep_preset({data[:80]!r}); a file: pathlib.Path(...)")
        source = data
    return _parse(source)


def _sweep_text(text: str) -> Any:
    try:
        return parse_text(text)
    except SpecError as e:
        raise SpecError(str(e).replace("spec:", "sweep:", 1)) from None


def _mapping(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise SpecError(f"{where}: expected a mapping, got {_short(v)[:80]}")
    return v


def _parse(data: Any) -> SweepSpec:
    if data is None:
        raise SpecError("sweep: empty; it needs `base:` (a spec) and `axes:` (field path -> list of values)")
    d = _mapping(data, "sweep")
    for k in d:
        if k not in _KEYS:
            raise SpecError(f"sweep: unknown key {k!r}{close_matches(str(k), _KEYS)}; allowed: {', '.join(_KEYS)}")
    if "base" not in d:
        raise SpecError("sweep: `base` is required (a spec such as {backbone: resnet50}, or a preset's name)")
    axes = _axes(d.get("axes"))
    dims = _dims(axes, d.get("zip"))
    return SweepSpec(base=_base(d["base"]), axes=axes, dims=dims, title=_text(d.get("title"), "sweep.title", 200),
                     description=_text(d.get("description"), "sweep.description", 4000),
                     latency=_latency(d.get("latency")), objectives=_objectives(d.get("objectives")),
                     limit=_limit(d.get("limit", DEFAULT_LIMIT)), labels=_labels(list(axes)))


def _base(v: Any) -> dict:
    if isinstance(v, str):  # a preset's name
        from ..presets import load_preset
        try:
            return load_preset(v.strip()).to_dict()
        except SpecError as e:
            raise SpecError(f"sweep.base: {e}") from None
    return copy.deepcopy(_mapping(v, "sweep.base"))


def _axes(v: Any) -> dict[str, list]:
    if v is None:
        return {}
    axes = _mapping(v, "sweep.axes")
    if len(axes) > MAX_AXES:
        raise SpecError(f"sweep.axes: {len(axes)} axes; at most {MAX_AXES}")
    out = {}
    for path, values in axes.items():
        path = _path(path)
        if not isinstance(values, list) or not values:
            raise SpecError(f"sweep.axes.{path}: expected a non-empty list of values, got {_short(values)[:80]}")
        if len(values) > MAX_AXIS_VALUES:
            raise SpecError(f"sweep.axes.{path}: {len(values)} values; at most {MAX_AXIS_VALUES}")
        out[path] = values
    return out


def _path(path: Any) -> str:
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise SpecError(f"sweep.axes: {path!r} is not a field path; examples: backbone, img_size, stem.stride, "
                        f"insert, insert[0].module, insert[0].args.kernel_size")
    head = _segments(path)[0]
    if head not in _FIELDS:
        raise SpecError(f"sweep.axes: {path!r} names no spec field{close_matches(str(head), _FIELDS)}; "
                        f"fields: {', '.join(_FIELDS)}")
    return path


def _dims(axes: dict[str, list], groups: Any) -> tuple[tuple[str, ...], ...]:
    """The product's factors in the axes' order; a zip group sits where its first axis is."""
    group_of: dict[str, tuple[str, ...]] = {}
    if groups is not None:
        if not isinstance(groups, list):
            raise SpecError("sweep.zip: expected a list of groups, each a list of axis paths, e.g. "
                            "[[stem.stride, stem.kernel]]")
        for i, group in enumerate(groups):
            where = f"sweep.zip[{i}]"
            if not isinstance(group, list) or len(group) < 2:
                raise SpecError(f"{where}: expected a list of two or more axis paths, got {_short(group)[:80]}")
            for axis in group:
                if axis not in axes:
                    raise SpecError(f"{where}: {axis!r} is not an axis{close_matches(str(axis), axes)}; "
                                    f"axes: {', '.join(axes) or 'none'}")
                if axis in group_of:
                    raise SpecError(f"{where}: {axis} is zipped twice")
            lengths = {axis: len(axes[axis]) for axis in group}
            if len(set(lengths.values())) > 1:
                said = ", ".join(f"{a} has {n}" for a, n in lengths.items())
                raise SpecError(f"{where}: zipped axes take their values together, so they need as many each; {said}")
            for axis in group:
                group_of[axis] = tuple(group)
    dims: list[tuple[str, ...]] = []
    for axis in axes:
        dim = group_of.get(axis, (axis,))
        if dim not in dims:
            dims.append(dim)
    for dim in dims:  # a repeated value (a repeated tuple, for zipped axes) would make the same variants twice
        seen = set()
        for k in range(len(axes[dim[0]])):
            values = [axes[a][k] for a in dim]
            text = json.dumps(values, sort_keys=True, default=str)
            if text in seen:
                what = " + ".join(dim)
                raise SpecError(f"sweep.axes.{what}: {', '.join(_short(v) for v in values)} is listed twice")
            seen.add(text)
    return tuple(dims)


def _labels(axes: list[str]) -> dict[str, str]:
    """Each axis's short name in labels: its last field name (`insert[0].module` -> `module`) when no other axis
    has the same, else the whole path."""
    last = {a: next(s for s in reversed(_segments(a)) if isinstance(s, str)) for a in axes}
    return {a: n if list(last.values()).count(n) == 1 else a for a, n in last.items()}


def _text(v: Any, where: str, limit: int) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > limit:
        raise SpecError(f"{where}: expected text of at most {limit} characters")
    return v


def _latency(v: Any) -> dict | None:
    if v is None or v is False:
        return None
    if v is True:
        return {}
    return check_latency_options(_mapping(v, "sweep.latency"), "sweep.latency")


def check_latency_options(opts: dict, where: str) -> dict:
    """analyze's latency options (`choices.LATENCY_OPTIONS`), the ones with a fixed set of values checked here."""
    for k in opts:
        if k not in LATENCY_OPTIONS:
            raise SpecError(f"{where}: unknown option {k!r}{close_matches(str(k), LATENCY_OPTIONS)}; allowed: "
                            f"{', '.join(sorted(LATENCY_OPTIONS))}")
    checks = (("device", DEVICES), ("dtype", DTYPES))
    for k, allowed in checks:
        if k in opts and opts[k] not in allowed:
            raise SpecError(f"{where}.{k}: {opts[k]!r} is not one of {', '.join(allowed)}")
    if "batch" in opts and opts["batch"] not in BATCH:
        raise SpecError(f"{where}.batch: {opts['batch']!r} is not a batch size from {BATCH.lo} to {BATCH.hi}")
    return dict(opts)


def _objectives(v: Any) -> tuple[str, ...]:
    from .results import check_objectives
    if v is None:
        return SweepSpec.objectives
    if not isinstance(v, list):
        raise SpecError(f"sweep.objectives: expected a list of two or more columns, got {_short(v)[:80]}")
    return check_objectives(v, "sweep.objectives")


def _limit(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_LIMIT:
        raise SpecError(f"sweep.limit: {v!r} is not a number of variants from 1 to {MAX_LIMIT:,}")
    return v
