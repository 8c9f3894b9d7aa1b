"""Parameter and multiply-accumulate (MAC) counts for any `nn.Module`.

MACs come from fvcore's `FlopCountAnalysis` (https://github.com/facebookresearch/fvcore), which traces the model
with `torch.jit` and counts one fused multiply-add as one "flop": that is a MAC, the unit papers call FLOPs
(ResNet, ViT, Swin, ...). We say MACs everywhere.

fvcore misses ops that matter for the backbones we stitch, so `count_macs` adds handles for:

- `aten::scaled_dot_product_attention` (timm's fused attention): without it ViT-B/16 reads 16.87 G, not 17.58 G.
- the FFT family (`torch.fft.*`, SpectFormer / GFNet spectral mixers) and the complex multiply of a global filter.
- `aten::baddbmm` / `aten::addbmm` (batched matmuls with an added term, used by some attention code).

Elementwise ops, activations, softmax and pooling are counted as zero (`NOT_COUNTED`), as in the papers' figures and
fvcore's own `_IGNORED_OPS`; anything else fvcore has no handle for is listed in `MacCount.uncounted_ops`.

Activations come from the same trace: the figure timm publishes (`infer_macts`), fvcore's `ActivationCountAnalysis`,
which counts the output elements of convolutions and matrix products (`aten::_convolution`, `addmm`, `bmm`,
`einsum`, `matmul`, `linear`) and nothing else (not norms, activation functions, adds or pooling). timm profiles
attention on its unfused path, whose Q·Kᵀ and attention·V matmuls count; fused `scaled_dot_product_attention` is
counted as those two products' outputs (`sdpa_activations`), so a fused model reads what timm's table says.
One trace serves both: every handle returns a Counter whose activation keys carry the prefix `ACT`.
"""
from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .hollow import hollow_copy

with warnings.catch_warnings():  # fvcore scripts a few losses at import: torch warns that jit is deprecated
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis, parameter_count  # noqa: F401  FlopCountAnalysis: zoo's plain count
    from fvcore.nn.activation_count import _DEFAULT_SUPPORTED_OPS as FVCORE_ACTIVATION_HANDLES
    from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS as FVCORE_MAC_HANDLES
    from fvcore.nn.jit_analysis import JitModelAnalysis
    from fvcore.nn.jit_handles import get_shape

__all__ = ["ParamCount", "MacCount", "ActivationCount", "count_params", "count_macs", "by_prefix", "NOT_COUNTED",
           "OP_HANDLES", "ACTIVATION_HANDLES"]


@dataclass
class ParamCount:
    """Parameters of a model. `by_module` holds every module path ('' = the whole model), nested paths included."""
    total: int
    trainable: int
    by_module: dict[str, int] = field(default_factory=dict)


@dataclass
class ActivationCount:
    """Activations of one forward pass for one image: output elements of the ops fvcore's `ActivationCountAnalysis`
    counts (see the module docstring); `by_module` and `by_operator` as in `MacCount`."""
    total: int = 0
    by_module: dict[str, int] = field(default_factory=dict)
    by_operator: dict[str, int] = field(default_factory=dict)


@dataclass
class MacCount:
    """Multiply-accumulates of one forward pass for one image, and the activations of the same trace.

    `by_module` has every module path ('' = whole model; a parent includes its children, as fvcore's
    `by_module()`), `by_operator` the MACs per counted operator, `uncounted_ops` the sorted names of ops that ran
    but that neither fvcore nor our handles count (their cost is missing from `total`).
    """
    total: int
    by_module: dict[str, int] = field(default_factory=dict)
    by_operator: dict[str, int] = field(default_factory=dict)
    uncounted_ops: list[str] = field(default_factory=list)
    activations: ActivationCount = field(default_factory=ActivationCount)


# Ops counted as zero MACs. Papers' FLOPs tables count conv / linear / matmul / attention (and fvcore adds norms);
# elementwise arithmetic, activations, softmax, pooling and padding are left out. Counting them would inflate
# every figure away from the published ones (e.g. poolformer_s12 1.82 G) and list noise in `uncounted_ops`.
NOT_COUNTED: frozenset[str] = frozenset(f"aten::{op}" for op in (
    # elementwise arithmetic (aten::mul is handled below: only complex multiplies count)
    "add", "add_", "sub", "sub_", "rsub", "div", "div_", "neg", "abs", "pow", "sqrt", "rsqrt", "exp", "log",
    "reciprocal", "square", "minimum", "maximum", "clamp_min", "clamp_max", "where", "lt", "le", "ne", "lerp",
    "addcmul", "sign", "round", "fill_", "zero_", "masked_fill_", "clone",
    # activations and softmax
    "gelu", "gelu_", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "erf", "hardsigmoid", "hardsigmoid_",
    "hardswish", "hardswish_", "hardtanh", "hardtanh_", "relu6", "relu6_", "leaky_relu", "leaky_relu_", "elu", "elu_",
    "mish", "mish_", "softplus", "softmax", "log_softmax",
    # pooling and reductions (fvcore itself counts adaptive_avg_pool2d, 1 per input element)
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_max_pool2d",
    "mean", "sum", "amax", "amin", "std", "var", "norm", "linalg_vector_norm", "frobenius_norm", "argmax",
    # padding, copies, views and dtype/complex views
    "pad", "reflection_pad2d", "replication_pad2d", "repeat", "repeat_interleave", "expand_as", "flip", "unflatten",
    "movedim", "unfold", "index_select", "masked_fill", "view_as_complex", "view_as_real", "real", "imag",
    "complex", "dropout_", "feature_dropout", "alpha_dropout", "ones_like", "empty_like", "new_ones", "linspace",
    "meshgrid", "lift_fresh",
))


def _numel(shape: Sequence[int]) -> int:
    return math.prod(int(s) for s in shape)


def _ivalue(value: Any) -> Any:
    """A traced constant argument as Python (lists element by element; None where it is not a constant)."""
    node = value.node()
    if node.kind() == "prim::ListConstruct":
        return [_ivalue(v) for v in node.inputs()]
    if node.kind() == "prim::Constant":
        return value.toIValue()
    return None


def _is_complex(value: Any) -> bool:
    return value.isCompleteTensor() and str(value.type().scalarType()).startswith("Complex")


def sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """`aten::scaled_dot_product_attention`: Q·Kᵀ plus attention·V.

    q: (..., Hq, L, E), k: (..., Hk, S, E), v: (..., Hk, S, Ev). Every query head attends (grouped-query attention
    broadcasts K and V), so MACs = B·Hq·L·S·E + B·Hq·L·S·Ev; 2·B·H·L²·D for plain self-attention. Masks and
    `is_causal` are ignored (the full matrix is computed), as in torch's FlopCounterMode. Softmax is not counted.
    """
    q, k, v = (get_shape(x) for x in inputs[:3])
    s = k[-2]
    return _numel(q[:-1]) * s * q[-1] + _numel(q[:-2]) * q[-2] * s * v[-1]


def baddbmm_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """`aten::baddbmm` / `aten::addbmm` (`beta·input + alpha·b1 @ b2`): B·N·M·P, like fvcore's bmm."""
    b, n, m = get_shape(inputs[1])
    return b * n * m * get_shape(inputs[2])[-1]


def complex_mul_macs(inputs: list[Any], outputs: list[Any]) -> Counter:
    """`aten::mul`: one MAC per output element when the product is complex, else nothing (elementwise).

    This is the global-filter product of GFNet / SpectFormer (X ⊙ K in the frequency domain), which GFNet's
    complexity table counts as HWD, one per element (Rao et al., "Global Filter Networks for Image
    Classification", NeurIPS 2021, Table 1). A real elementwise product stays uncounted, as in the papers.
    """
    out = outputs[0]
    if _is_complex(out):
        return Counter({"complex_mul": _numel(get_shape(out))})
    return Counter()


# FFT ops as traced (torch.fft.* keeps its public name in the trace) and their low-level forms:
# name -> (index of the `dim` argument, default dims when it is None, kind). kind: c2c, r2c (real in, half
# spectrum out), c2r (half spectrum in, real out).
_FFT_KINDS = {"fft": "c2c", "ifft": "c2c", "rfft": "r2c", "ihfft": "r2c", "irfft": "c2r", "hfft": "c2r"}
_FFT_OPS: dict[str, tuple[int, Any, str]] = {
    **{f"aten::fft_{k}": (2, -1, kind) for k, kind in _FFT_KINDS.items()},
    **{f"aten::fft_{k}2": (2, [-2, -1], kind) for k, kind in _FFT_KINDS.items()},
    **{f"aten::fft_{k}n": (2, None, kind) for k, kind in _FFT_KINDS.items()},
    "aten::_fft_c2c": (1, None, "c2c"),
    "aten::_fft_r2c": (1, None, "r2c"),
    "aten::_fft_c2r": (1, None, "c2r"),
}


def fft_macs(inputs: list[Any], outputs: list[Any], dim_index: int, default_dim: Any, kind: str) -> int:
    """FFT of a signal of N points (over all transformed dims), repeated M times: M·N·⌈log2 N⌉ MACs.

    N is the full signal size (`s` when given), the same for a forward and an inverse, real or complex transform.
    This is the convention of GFNet's complexity table (HWD⌈log2(HW)⌉ for a 2-D FFT over an H×W×D map, Rao et al.,
    NeurIPS 2021) and of the `rfft_flop_jit` fvcore handle its authors publish with DynamicViT / HorNet
    (`calc_flops`): O(N log N) per transform, constant factor 1. (That handle reads the inverse's size from its
    half-spectrum input, H×(W/2+1); we use H×W so that a forward and its inverse cost the same.)
    """
    x, y = get_shape(inputs[0]), get_shape(outputs[0])
    rank = len(y)
    dims = _ivalue(inputs[dim_index])
    if dims is None:
        dims = default_dim
    if dims is None:  # fftn without dim: the last len(s) dims, or all of them
        s = _ivalue(inputs[1])
        dims = list(range(rank - len(s), rank)) if isinstance(s, list) else list(range(rank))
    dims = [d % rank for d in ([dims] if isinstance(dims, int) else dims)]  # order kept: the last one is halved
    sizes = [y[d] for d in dims]  # c2c, c2r: the output holds the full signal
    if kind == "r2c":  # half spectrum out: the last dim's real length is on the input side
        half = y[dims[-1]]
        sizes[-1] = x[dims[-1]] if x[dims[-1]] // 2 + 1 == half else 2 * (half - 1)
    batch = _numel(y) // _numel([y[d] for d in dims])
    n = _numel(sizes)
    return batch * n * math.ceil(math.log2(n)) if n > 1 else 0


def _fft_handle(name: str):
    dim_index, default_dim, kind = _FFT_OPS[name]
    return lambda inputs, outputs: fft_macs(inputs, outputs, dim_index, default_dim, kind)


# Handles added on top of fvcore's defaults (conv, linear, matmul, bmm, einsum, norms, upsample, ...).
OP_HANDLES: dict[str, Any] = {
    "aten::scaled_dot_product_attention": sdpa_macs,
    "aten::baddbmm": baddbmm_macs,
    "aten::addbmm": baddbmm_macs,
    "aten::mul": complex_mul_macs,
    "aten::mul_": complex_mul_macs,
    **{name: _fft_handle(name) for name in _FFT_OPS},
}


def sdpa_activations(inputs: list[Any], outputs: list[Any]) -> int:
    """`aten::scaled_dot_product_attention` as timm's table counts it (unfused): the outputs of Q·Kᵀ,
    (..., Hq, L, S), and of attention·V, (..., Hq, L, Ev). ViT-S/16 at 224: 11.95 M, as the table."""
    q, k = get_shape(inputs[0]), get_shape(inputs[1])
    return _numel(q[:-1]) * k[-2] + _numel(get_shape(outputs[0]))


# fvcore's activation handles (output elements of conv, addmm, bmm, einsum, matmul, linear) and fused attention.
ACTIVATION_HANDLES: dict[str, Any] = {
    **FVCORE_ACTIVATION_HANDLES,
    "aten::scaled_dot_product_attention": sdpa_activations,
}
ACT = "activations:"  # key prefix of activation counts in the one trace that counts MACs and activations


def _as_counter(value: Any, kind: str) -> Counter:
    """A handle's result as fvcore keys it: a number under the op's name without its namespace."""
    return value if isinstance(value, Counter) else Counter({kind.partition("::")[2] or kind: value})


def _both(kind: str, macs: Any, acts: Any):
    """One handle for an op that counts MACs (`macs`) and activations (`acts`, keys prefixed with ACT)."""
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        out = _as_counter(macs(inputs, outputs), kind) if macs else Counter()
        if acts:
            out.update({ACT + k: v for k, v in _as_counter(acts(inputs, outputs), kind).items()})
        return out
    return handle


def _handles() -> dict[str, Any]:
    mac_handles = {**FVCORE_MAC_HANDLES, **OP_HANDLES}
    return {kind: _both(kind, mac_handles.get(kind), ACTIVATION_HANDLES.get(kind))
            for kind in {**mac_handles, **ACTIVATION_HANDLES}}


def count_params(model: nn.Module) -> ParamCount:
    """Parameters, total and trainable (shared tensors once), and per module path via fvcore's `parameter_count`."""
    per_name = parameter_count(model)  # every prefix of every parameter name, '' included
    by_module = {name: int(per_name.get(name, 0)) for name, _ in model.named_modules()}
    params = list(model.parameters())  # de-duplicated, like parameter_count
    return ParamCount(
        total=sum(p.numel() for p in params),
        trainable=sum(p.numel() for p in params if p.requires_grad),
        by_module=by_module,
    )


def count_macs(model: nn.Module, inputs: torch.Tensor | tuple[torch.Tensor, ...],
               skip_zero_products: bool = False) -> MacCount:
    """MACs and activations of one forward pass for one image (one fvcore trace): the first item of `inputs`'
    batch, model in eval mode, no grad.

    The model's train/eval flags are restored afterwards; its weights are untouched. `skip_zero_products`: trace
    `hollow.hollow_copy(model)`, whose all-zero Linear layers skip their arithmetic (a lean model's: the same counts
    in a fraction of the time); a model that copy cannot run is counted the ordinary way.
    """
    if skip_zero_products:
        runner = hollow_copy(model)
        if runner is not None:
            try:
                return count_macs(runner, inputs)
            except Exception:  # noqa: BLE001  an op the hollow weights do not support: count the ordinary way
                pass
    inputs = tuple(t[:1] for t in (inputs if isinstance(inputs, tuple) else (inputs,)))
    param = next(model.parameters(), None)
    if param is not None:
        inputs = tuple(t.to(param.device) for t in inputs)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            # FlopCountAnalysis and ActivationCountAnalysis are this engine with other handles: one trace, both
            analysis = (JitModelAnalysis(model, inputs)
                        .set_op_handle(**_handles())
                        .set_op_handle(**dict.fromkeys(NOT_COUNTED))  # None = ignore, as fvcore's _IGNORED_OPS
                        .unsupported_ops_warnings(False)
                        .uncalled_modules_warnings(False)
                        .tracer_warnings("none"))
            per_module = analysis.by_module_and_operator()
            uncounted = sorted(analysis.unsupported_ops())
    finally:
        for m, training in modes.items():
            m.training = training
    split = {True: ({}, {}), False: ({}, {})}  # is an activation key -> (by_module, by_operator)
    for name, ops in per_module.items():
        for is_act, (by_module, _) in split.items():
            by_module[name] = int(sum(v for k, v in ops.items() if k.startswith(ACT) == is_act))
    for op, v in per_module[""].items():
        if v:
            split[op.startswith(ACT)][1][op.removeprefix(ACT)] = int(v)
    (macs, mac_ops), (acts, act_ops) = split[False], split[True]
    return MacCount(total=macs.get("", 0), by_module=macs, by_operator=mac_ops, uncounted_ops=uncounted,
                    activations=ActivationCount(total=acts.get("", 0), by_module=acts, by_operator=act_ops))


def by_prefix(counts: Mapping[str, int], prefixes: Iterable[str]) -> dict[str, int]:
    """Aggregate a `by_module` table onto module paths (stages, insertion points), in the order given.

    A path that is a key gets its value (it already includes its children); a path that is not (a prefix shared
    by several modules, e.g. 'blocks' split into 'blocks.0'…) gets the sum of its topmost descendants; else 0.
    """
    out = {}
    for prefix in prefixes:
        if prefix in counts:
            out[prefix] = int(counts[prefix])
            continue
        below = [k for k in counts if k.startswith(prefix + ".")]
        top = [k for k in below if not any(k.startswith(o + ".") for o in below if o != k)]
        out[prefix] = int(sum(counts[k] for k in top))
    return out
