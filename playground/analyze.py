"""analyze(spec or Built) -> Report: the module tree, params, MACs, feature-map shapes, latency, predictions.

One analysis object per question, as fvcore does; the Report (`playground.report`, documented in docs/report.md)
is typed data that the CLI prints, the page renders, the API returns as JSON and the tests assert.

Params, MACs and activations are split three ways: `by_stage` (stem, stage1.., head; stitched modules count in
the stage they sit in, so the parts add up to the total), `by_insert` (each stitched module) and `delta` against
the base. The split works on "self" counts (a module's own parameters / ops, children excluded); stitching keeps
the backbone's module paths (see `stitch`), so every count maps back to them directly.

A static analysis (no latency, no predictions) of a spec without weights counts a lean build (`lean`: no random
initialisation; the same numbers, a fraction of the time and memory for a large model), and falls back to the
ordinary build if the lean one fails. `PLAYGROUND_LEAN=0` in the environment forces the ordinary build (benchmarks).

    >>> r = analyze({"backbone": "resnet18", "img_size": 64, "insert": [{"at": "stage2", "module": "eca"}]})
    >>> r.params.delta, r.params.by_insert[0].path, r.shape_at("stage2").channels
    (5, 'layer2_after.0', 128)
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .build import Built, build, points
from .cache import LRU
from .choices import LATENCY_OPTIONS, SUMMARY_DEPTH
from .compute import COMPUTE
from .counts import MacCount, count_macs, count_params
from .errors import SpecError
from .points import Probe, shape_runner
from .report import ActivationCounts, InsertCount, MacCounts, ParamCounts, Report
from .spec import Spec, load_spec, spec_key

__all__ = ["analyze", "cached_build", "spec_key", "Report", "LATENCY_OPTIONS", "MEMORY_OPTIONS"]

REPORT_CACHE_SIZE = 32
BUILT_CACHE_SIZE = 3
Progress = Callable[[float, str], None] | None
MEMORY_OPTIONS = {"batch", "dtype", "optimizer"}  # `memory.estimate_memory` options


# ---- grouping counts by stage

class _Grouper:
    """Maps module paths of the built model to 'stem' / 'stage<i>' / 'head' and to stitched-module indices."""

    def __init__(self, built: Built):
        self.probe: Probe = built.probed()
        self.stages = self.probe.stages
        self.inserts = [(i.path, k) for k, i in enumerate(built.insertions)]
        self.insert_group = [self.probe.stage_of(i.point.path) for i in built.insertions]
        self.names = ["stem"] + [f"stage{i}" for i in range(1, len(self.stages) + 1)] + ["head"]

    def insert_index(self, path: str) -> int | None:
        for p, k in self.inserts:
            if path == p or path.startswith(p + "."):
                return k
        return None

    def group(self, path: str) -> tuple[str, int | None]:
        k = self.insert_index(path)
        if k is not None:
            return self.insert_group[k], k
        return self.probe.stage_of(path), None


def _self_counts(by_module: dict[str, int]) -> dict[str, int]:
    """A module's own count: its cumulative count less its direct children's."""
    own = dict(by_module)
    for path, n in by_module.items():
        if path:
            parent = path.rpartition(".")[0]
            if parent in own:
                own[parent] -= n
    return own


def _split(own: dict[str, int], grouper: _Grouper, n_inserts: int) -> tuple[dict, list[int]]:
    by_stage = OrderedDict((n, 0) for n in grouper.names)
    by_insert = [0] * n_inserts
    for path, n in own.items():
        if not n:
            continue
        group, k = grouper.group(path)
        by_stage[group] += n
        if k is not None:
            by_insert[k] += n
    return dict(by_stage), by_insert


def _param_self_counts(model: nn.Module) -> dict[str, int]:
    own: dict[str, int] = {}
    for name, p in model.named_parameters():
        path = name.rpartition(".")[0]
        own[path] = own.get(path, 0) + p.numel()
    return own


# ---- caches

_reports: LRU[Report] = LRU(REPORT_CACHE_SIZE)
_builts: LRU[Built] = LRU(BUILT_CACHE_SIZE)
_base_macs: LRU[Any] = LRU(16)


def cached_build(spec: Spec | dict | str, lean: bool = False) -> Built:
    """`build`, from a small LRU keyed by the normalised spec (the UI asks for the same spec repeatedly)."""
    spec = load_spec(spec)
    return _builts.get_or_make(("lean|" if lean else "") + spec_key(spec), lambda: build(spec, lean))


# ---- the analysis

def _summary(built: Built, depth: int) -> str:
    """torchinfo's layer table. Large models run on a meta-device copy (shapes and counts need no compute); a
    model not probed yet is probed during torchinfo's forward pass, which then serves both."""
    import torchinfo
    kw = dict(depth=depth, verbose=0, mode="eval", col_names=("output_size", "num_params"),
              row_settings=("var_names",))
    table: list[str] = []
    if built.probe is None:
        built.probed(lambda m, x: table.append(str(torchinfo.summary(m, input_data=x, device=x.device, **kw))))
        if table:
            return table[0]
    runner, device = shape_runner(built.model)
    size = (1, 3, built.img_size, built.img_size)
    try:
        return str(torchinfo.summary(runner, input_size=size, device=device, **kw))
    except Exception:
        if device == "cpu":
            raise
        return str(torchinfo.summary(built.model, input_size=size, device="cpu", **kw))


def _base_mac_count(built: Built, macs: MacCount, mac_insert: list[int], act_insert: list[int]):
    """Base (MACs, activations, its MacCount or None): the modified counts less their insertions when only
    insertions changed the model, else counted (and kept per backbone and size)."""
    s = built.spec
    if s.changes_only_by_insertion():
        return macs.total - sum(mac_insert), macs.activations.total - sum(act_insert), None
    hit = _base_macs.get_or_make((s.backbone, built.img_size), lambda: count_macs(
        built.base, torch.zeros(1, 3, built.img_size, built.img_size), skip_zero_products=built.lean))
    return hit.total, hit.activations.total, hit


def _shapes(built: Built) -> list:
    """Feature maps at the stage points, then at the spec's other stitching points (globs, blocks), once each, with
    the base backbone's shape at the same point (its cached probe; the same maps unless the stem changed)."""
    stem_changed = not built.spec.stem.is_default()
    base = {p.name: list(p.shape) for p in points(built.spec.backbone, built.img_size)} if stem_changed else None
    shapes = []
    seen: set[str] = set()
    for p in [p for p in built.points if ".block" not in p.name] + [i.point for i in built.insertions]:
        if p.name not in seen:
            seen.add(p.name)
            s = p.shape_info()
            s.base_shape = base.get(p.name) if base is not None else list(s.shape)
            shapes.append(s)
    return shapes


def _static_report(built: Built, summary_depth: int, progress: Progress) -> Report:
    model, base = built.model, built.base
    step = progress or (lambda f, m: None)
    step(0.2, "layer table (torchinfo)")
    summary = _summary(built, summary_depth)
    grouper = _Grouper(built)
    n = len(built.insertions)

    def per_insert(counts: list[int]) -> list[InsertCount]:
        return [InsertCount(index=i.index, point=i.point.name, path=i.path, module=i.label, count=counts[k])
                for k, i in enumerate(built.insertions)]

    step(0.3, "counting parameters")
    params = count_params(model)
    base_total = sum(p.numel() for p in base.parameters())
    p_stage, p_insert = _split(_param_self_counts(model), grouper, n)

    step(0.45, "counting MACs and activations (fvcore)")
    macs = count_macs(model, torch.zeros(1, 3, built.img_size, built.img_size), skip_zero_products=built.lean)
    acts = macs.activations
    m_stage, m_insert = _split(_self_counts(macs.by_module), grouper, n)
    a_stage, a_insert = _split(_self_counts(acts.by_module), grouper, n)
    base_macs, base_acts, base_count = _base_mac_count(built, macs, m_insert, a_insert)
    uncounted = sorted(set(macs.uncounted_ops) | set(base_count.uncounted_ops if base_count else []))

    tree = str(model)
    base_tree = tree if base is model else str(base)
    diff = "\n".join(difflib.unified_diff(base_tree.splitlines(), tree.splitlines(), "base", "stitched",
                                          lineterm="", n=2))

    warnings = list(built.warnings)
    for name, why in built.probed().unavailable.items():
        warnings.append(f"points: {name} is left out: {why.split(': ', 1)[-1]}")
    if uncounted:
        warnings.append(f"macs: not counted (no handle): {', '.join(uncounted)}")
    return Report(
        spec=built.spec.to_dict(),
        backbone=built.spec.backbone,
        img_size=built.img_size,
        modified=built.spec.changes_backbone(),
        params=ParamCounts(total=params.total, trainable=params.trainable, base_total=base_total,
                           delta=params.total - base_total, by_stage=p_stage, by_insert=per_insert(p_insert)),
        macs=MacCounts(total=macs.total, base_total=base_macs, delta=macs.total - base_macs, by_stage=m_stage,
                       by_insert=per_insert(m_insert), by_operator=dict(macs.by_operator), uncounted_ops=uncounted),
        activations=ActivationCounts(total=acts.total, base_total=base_acts, delta=acts.total - base_acts,
                                     by_stage=a_stage, by_insert=per_insert(a_insert),
                                     by_operator=dict(acts.by_operator)),
        points=[p.info() for p in built.points],
        shapes=_shapes(built),
        tree=tree,
        tree_diff=diff,
        summary=summary,
        stem=built.stem,
        weights=built.weights,
        warnings=warnings,
    )


def _lean_report(spec: Spec, summary_depth: int, progress: Progress) -> Report | None:
    """The static report of a lean build of `spec` (see `lean`), or None: lean builds are off, the spec loads
    weights, an ordinary build is cached already, or the lean build or its analysis fails (the ordinary path then
    runs, and says why if it fails too)."""
    if os.environ.get("PLAYGROUND_LEAN", "1") == "0" or spec.pretrained or spec.checkpoint \
            or _builts.get(spec_key(spec)) is not None:
        return None
    try:
        built = cached_build(spec, lean=True)
        with built.lock, COMPUTE.shared():
            return _static_report(built, summary_depth, progress)
    except Exception:  # noqa: BLE001  the ordinary build gives the answer, or the error, the user should see
        return None


def _latency(built: Built, static: Report, opts: dict[str, Any], step: Callable[[float, str], None]):
    """(latency, base latency): the model timed and, when asked and the spec changes the backbone, the base.
    The one latency path of the library, the CLI and the page."""
    from .latency import measure_latency
    unknown = sorted(set(opts) - LATENCY_OPTIONS)
    if unknown:
        raise SpecError(f"latency: unknown option {unknown[0]!r}; allowed: {', '.join(sorted(LATENCY_OPTIONS))}")
    opts = dict(opts)
    with_base = bool(opts.pop("base", False)) and static.modified
    share = 0.5 if with_base else 1.0
    with built.lock:  # it deep-copies the model: not while another request has hooks on it
        latency = measure_latency(built.model, built.img_size, macs_per_image=static.macs.total, **opts,
                                  progress=lambda f, m: step(share * f, f"model: {m}" if with_base else m))
        base = measure_latency(built.base, built.img_size, macs_per_image=static.macs.base_total, **opts,
                               progress=lambda f, m: step(0.5 + 0.5 * f, f"base: {m}")) if with_base else None
    return latency, base


def _memory(built: Built, opts: dict[str, Any]):
    """The memory estimate of the built model at the options' batch, dtype and optimizer, split by stage."""
    from .memory import estimate_memory
    unknown = sorted(set(opts) - MEMORY_OPTIONS)
    if unknown:
        raise SpecError(f"memory: unknown option {unknown[0]!r}; allowed: {', '.join(sorted(MEMORY_OPTIONS))}")
    grouper = _Grouper(built)
    with built.lock, COMPUTE.shared():  # it deep-copies the model: not while another request has hooks on it
        return estimate_memory(built.model, built.img_size, **opts, stage_of=lambda path: grouper.group(path)[0])


def _counting_build(spec: Spec) -> Built:
    """A build to count with: the ordinary one when cached, else a lean one when the spec loads no weights."""
    key = spec_key(spec)
    if _builts.get(key) is None and not (spec.pretrained or spec.checkpoint) \
            and os.environ.get("PLAYGROUND_LEAN", "1") != "0":
        try:
            return cached_build(spec, lean=True)
        except Exception:  # noqa: BLE001  the ordinary build says what is wrong, if anything
            pass
    return cached_build(spec)


def analyze(
        spec_or_built: Spec | Built | dict | str,
        latency: None | bool | dict = None,
        memory: None | bool | dict = None,
        images: list | None = None,
        topk: int = 5,
        summary_depth: int = 3,
        progress: Progress = None,
        image_names: list[str] | None = None,
) -> Report:
    """Analyze a spec: build it (cached by its normalised form), count, probe, and optionally time and predict.

    Args:
        spec_or_built: a Spec, a dict, YAML/JSON text, a preset's Spec, or an already built model (never cached).
        latency: None/False to skip, True for defaults, or options: `measure_latency`'s (device, batch, dtype,
            channels_last, compile, min_run_time, max_run_time, warmup, threads) and `base` (also time the
            unmodified backbone into `Report.base_latency`).
        memory: None/False to skip, True for batch 8, fp32, AdamW, or options `batch`, `dtype` ('fp32', 'bf16',
            'fp16': autocast) and `optimizer` ('sgd', 'adamw'): the memory estimate (`playground.memory`) into
            `Report.memory`, computed on each request (it depends on the batch and dtype; fake tensors, no compute).
        images: paths, bytes, PIL images or arrays to predict (top-k of the model and of the base).
        topk: classes per prediction.
        summary_depth: depth of torchinfo's layer table (1 to 10).
        progress: optional `progress(fraction, message)` callback (a `gr.Progress` fits).
        image_names: display names of `images` (default: their file names).

    Returns:
        The Report (see `playground.report`): params, MACs, points, shapes, tree, and latency / predictions when
        asked (and memory). Bad input raises a one-line `SpecError`.
    """
    if summary_depth not in SUMMARY_DEPTH:
        raise SpecError(f"summary_depth: {summary_depth} is out of range; allowed: {SUMMARY_DEPTH.lo} to "
                        f"{SUMMARY_DEPTH.hi}")
    step = progress or (lambda f, m: None)
    if isinstance(spec_or_built, Built):
        built, key = spec_or_built, None
        if built.lean and (latency or images):
            raise SpecError("a lean build (build(spec, lean=True)) is for counting only: its weights are zeros; "
                            "build the spec without lean=True to time it or predict with it")
        static = None
    else:
        spec = load_spec(spec_or_built)
        key = f"{spec_key(spec)}|{summary_depth}"
        static = _reports.get(key)
        if static is None and not latency and not images:
            step(0.05, "building the model")
            static = _lean_report(spec, summary_depth, progress)
            if static is not None:
                _reports.put(key, static)
        built = None
        if static is None or latency or images:
            step(0.05, "building the model")
            built = cached_build(spec)
    if static is None:
        # hooks (probe, fvcore, torchinfo) on a model other requests may be running; not while a latency times
        with built.lock, COMPUTE.shared():
            static = _static_report(built, summary_depth, progress)
        if key:
            _reports.put(key, static)
    report = dataclasses.replace(static, warnings=list(static.warnings))
    if latency:
        step(0.8, "measuring latency")
        report.latency, report.base_latency = _latency(
            built, static, latency if isinstance(latency, dict) else {},
            lambda f, m: step(0.8 + 0.1 * f, f"latency: {m}"))
    if memory:
        step(0.85, "estimating memory")
        report.memory = _memory(built or _counting_build(spec), memory if isinstance(memory, dict) else {})
    if images:
        from .predict import predict
        step(0.9, "predicting")
        with built.lock, COMPUTE.shared():
            preds, warns = predict(built.model, images, base_model=built.base, topk=topk, img_size=built.img_size,
                                   names=image_names)
        report.predictions = preds
        report.warnings += [w for w in warns if w not in report.warnings]
    step(1.0, "done")
    return report
