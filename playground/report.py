"""The Report: what `analyze` returns, typed. The contract the CLI's `--json`, the page, the plots and the API read.

Plain nested dataclasses, JSON-serialisable with `Report.to_dict()`, rebuilt with `Report.from_dict()`; the JSON
Schema in `docs/report.schema.json` is generated from these types (`playground schema > docs/report.schema.json`;
a test checks it is current), and docs/report.md explains each field. Units: parameters and MACs are exact
integer counts (one MAC is one multiply-accumulate, the unit papers usually call "FLOPs"; a FLOP rate counts
2 x MACs), activations are counts of tensor elements, times in ms, spatial sizes in pixels or tokens per side.

    >>> r = Report.from_dict(analyze("se_resnet50").to_dict())   # doctest: +SKIP
    >>> r.params.delta, r.macs.total, [s.shape for s in r.shapes]   # doctest: +SKIP

No torch here: importing the contract costs nothing (the CLI's argument parsing and the page's renderers use it).
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Report", "ParamCounts", "MacCounts", "ActivationCounts", "InsertCount", "MemoryEstimate",
           "PointInfo", "Shape", "Latency", "WeightsInfo",
           "StemConv", "StemChange", "ClassScore", "RankChange", "Agreement", "Prediction", "report_schema",
           "from_plain", "PlainData"]

T = TypeVar("T")


@dataclass
class InsertCount:
    """One stitched module instance and what it adds: `count` is params (in `params.by_insert`) or MACs (in
    `macs.by_insert`). `index` is its entry in the spec's `insert` list (a glob makes several instances)."""
    index: int
    point: str  # the point or glob match it is stitched at, e.g. 'stage3' or 'layer1.0.bn3'
    path: str  # its module path in the built model, e.g. 'layer3_after.0'
    module: str  # its label, e.g. 'se' or 'serial[se, eca]'
    count: int


@dataclass
class ParamCounts:
    """Parameters: `by_stage` splits `total` into stem, stage1..n, head (stitched modules count in their stage, so
    the parts add up to the total); `delta` = total - base_total, the base being the unmodified backbone."""
    total: int
    trainable: int
    base_total: int
    delta: int
    by_stage: dict[str, int]
    by_insert: list[InsertCount] = field(default_factory=list)


@dataclass
class TraceCounts:
    """What one traced forward pass of one image counts, split as the parameters are: `total`, the unmodified
    backbone's `base_total`, `delta`, `by_stage` (adding up to the total), `by_insert`, and `by_operator` (fvcore's
    operator names)."""
    total: int
    base_total: int
    delta: int
    by_stage: dict[str, int]
    by_insert: list[InsertCount] = field(default_factory=list)
    by_operator: dict[str, int] = field(default_factory=dict)


@dataclass
class MacCounts(TraceCounts):
    """Multiply-accumulates of one forward pass of one image (fvcore, attention counted). `uncounted_ops` lists the
    operators that ran with no counter (their cost is not in the total)."""
    uncounted_ops: list[str] = field(default_factory=list)
    unit: str = "MACs"


@dataclass
class ActivationCounts(TraceCounts):
    """Activations of one forward pass of one image, the figure timm publishes as `infer_macts`: fvcore's
    `ActivationCountAnalysis`, the output elements of convolutions and matrix products (conv, linear, addmm, bmm,
    matmul, einsum; attention as its Q·Kᵀ and attention·V outputs), counted in the same trace as the MACs."""


@dataclass
class PointInfo:
    """A named place in the backbone where a module can be stitched, with the feature map that flows through it.
    `layout` is 'NCHW', 'NHWC' or 'NLC' (tokens); `reduction` the input size over the map's size;
    `output_index` the map's position when the module returns a tuple or list."""
    name: str
    path: str
    layout: str
    channels: int
    shape: list[int]
    num_prefix_tokens: int = 0
    reduction: float | None = None
    output_index: int | None = None


@dataclass
class Shape:
    """The feature map at a stage point (input, stem, stage<i>, final) or at a stitching point, at batch 1:
    its shape as the layout orders it, and its channels and spatial size (height and width are None for
    tokens whose grid is not known). `base_shape` is the shape at the same point of the unmodified backbone (it
    differs when the spec changes the embedding stem; None where the base has no such point)."""
    point: str
    layout: str
    shape: list[int]
    channels: int
    height: int | None
    width: int | None
    reduction: float | None = None
    base_shape: list[int] | None = None

    @property
    def changed(self) -> bool:
        """Whether this feature map differs from the base backbone's at the same point."""
        return self.base_shape != self.shape


@dataclass
class Latency:
    """One latency measurement (`playground.latency`). Times are per forward pass of the whole batch.

    `times_ms` holds the timed blocks' mean times (at least 10 blocks), the sample the statistics come from:
    `median_ms` their median, `iqr_ms` their inter-quartile range (the spread of one block), and `median_ci_ms`
    the 95% confidence interval of the median as (low, high): a distribution-free interval from the sorted blocks
    (order statistics, binomial coverage; `playground.stats.median_interval`). Two latencies differ clearly only
    when their intervals do not overlap (`playground.latency.difference`). `throughput` is images/s; `tflops` the
    achieved TFLOP/s counting a MAC as 2 FLOPs (None when the MACs are not known); `started_at` / `finished_at` the
    wall-clock seconds (epoch) this run held the device. `contended_blocks` counts the blocks in `times_ms` that
    ran while other work used the same CPU cores (0: the measurement had them to itself; see
    `playground.latency.share_cores_with`).
    """
    device: str
    batch: int
    dtype: str
    channels_last: bool
    compiled: bool
    threads: int
    median_ms: float
    iqr_ms: float
    median_ci_ms: tuple[float, float]
    throughput: float
    tflops: float | None
    times_ms: list[float] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0
    contended_blocks: int = 0


@dataclass
class MemoryEstimate:
    """Bytes of tensors at `batch` images and `dtype` (the autocast dtype, as a latency's: parameters stay fp32),
    estimated on fake tensors (`playground.memory`). `inference_bytes` = params + buffers + `activations_peak_bytes`,
    the largest set of tensors alive at once during a forward pass without grad (not their sum);
    `training_bytes` = params + buffers + grads + optimizer state (`optimizer` 'sgd' with momentum: 1 x the
    trainable parameters, 'adamw': 2 x) + `saved_bytes`, the activations saved for backward. `peak_by_stage`: the
    largest live set while each part (stem, stage<i>, head) runs; `saved_by_stage`: the saved activations made in
    each part."""
    batch: int
    dtype: str
    optimizer: str
    params_bytes: int
    buffers_bytes: int
    activations_peak_bytes: int
    inference_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    saved_bytes: int
    training_bytes: int
    peak_by_stage: dict[str, int] = field(default_factory=dict)
    saved_by_stage: dict[str, int] = field(default_factory=dict)


@dataclass
class WeightsInfo:
    """What loading weights did. `source` is 'hub:<model>', 'bundled:<package>' or 'checkpoint:<file name>';
    `missing` model tensors the weights did not provide (left at their init), `unexpected` tensors the model has no
    place for (ignored), `reinitialised` tensors present but not loaded (another shape, e.g. a new classifier)."""
    source: str
    missing: list[str]
    unexpected: list[str]
    reinitialised: list[str]


@dataclass
class StemConv:
    kernel: int
    stride: int
    padding: int


@dataclass
class StemChange:
    """The embedding conv before and after the spec's `stem` change; `grid` is the side of the map it now makes, and
    `description` says it in words ("conv1: stride 2 -> 4; stage 1 sees 28x28 (total stride 8, was 4)")."""
    path: str
    before: StemConv
    after: StemConv
    grid: int
    description: str = ""


@dataclass
class ClassScore:
    index: int
    label: str
    prob: float


@dataclass
class RankChange:
    """Where one of the base model's top-k classes ranks in the modified model (1 = first)."""
    index: int
    label: str
    base_rank: int
    rank: int


@dataclass
class Agreement:
    """The modified model against the base on one image: top-1 agreement, KL(base || modified) in nats from both
    sides' log-softmax (exactly 0 for equal logits), and the largest absolute logit difference."""
    top1_agree: bool
    kl_divergence: float
    max_abs_logit_diff: float
    rank_changes: list[RankChange] = field(default_factory=list)


@dataclass
class Prediction:
    """Top-k classes of the model for one image, most probable first; the base's and their agreement when the
    spec changes the backbone."""
    image: str
    top: list[ClassScore]
    base_top: list[ClassScore] | None = None
    agreement: Agreement | None = None


class PlainData:
    """`to_dict()` / `to_json()` / `from_dict()` for a dataclass of typed data (Report, Comparison)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """The value of `to_dict()` (or of `--json` output, parsed), validated against the types."""
        return from_plain(cls, data)


@dataclass
class Report(PlainData):
    """Everything one analysis of a spec found.

    `spec` is the normalised spec (as `Spec.to_dict()`); `points` every named insertion point of the built model;
    `shapes` the feature maps at the stage points and at the spec's stitching points; `tree` the printed module
    tree, `tree_diff` its unified diff against the unmodified backbone's, `summary` torchinfo's layer table;
    `latency` / `base_latency` when asked for (the base only when the spec changes the backbone); `memory` when
    asked for (it depends on the batch and dtype: computed on request, never cached); `predictions`
    when images were given; `warnings` one line each, in domain words.
    """
    spec: dict[str, Any]
    backbone: str
    img_size: int
    modified: bool  # the model differs from the unmodified backbone (else base and model are one network)
    params: ParamCounts
    macs: MacCounts
    activations: ActivationCounts
    points: list[PointInfo]
    shapes: list[Shape]
    tree: str
    tree_diff: str
    summary: str
    stem: StemChange | None = None
    weights: WeightsInfo | None = None
    latency: Latency | None = None
    base_latency: Latency | None = None
    memory: MemoryEstimate | None = None
    predictions: list[Prediction] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.spec.get("title") or self.backbone

    @property
    def inserted(self) -> list[str]:
        """Module paths of the stitched modules (to highlight in the tree)."""
        return [i.path for i in self.params.by_insert]

    @property
    def pretrained(self) -> bool:
        return self.weights is not None

    def shape_at(self, point: str) -> Shape | None:
        return next((s for s in self.shapes if s.point == point), None)


@functools.cache
def _adapter(cls: type) -> Any:
    from pydantic import TypeAdapter  # pydantic turns the dataclass types into a validator and a JSON Schema
    return TypeAdapter(cls)


def from_plain(cls: type[T], data: Any) -> T:
    """A typed value of dataclass `cls` from plain data (dicts and lists), checked against the field types."""
    from pydantic import ValidationError

    from .errors import SpecError
    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or cls.__name__
        raise SpecError(f"{cls.__name__.lower()}: {where}: {err['msg']}") from None


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `Report.to_dict()`, generated from the types."""
    schema = _adapter(Report).json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}

