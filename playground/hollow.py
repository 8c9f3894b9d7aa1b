"""Products with zero weights, skipped: fvcore's trace of a lean model without its matrix arithmetic.

fvcore counts MACs from a `torch.jit` trace, which runs the model for real: for `vit_huge_patch14_224` that is
167 GMACs, 5 to 8 s on two cores, almost all of it in `nn.Linear`. A lean model's weights are all zero (see
`lean`), so every one of those products is known to be zero before it is computed. `hollow_copy` gives a copy of
the model whose `nn.Linear` layers with all-zero weight and bias hold a `Hollow` weight instead: a tensor with the
shape, dtype and device and no data, whose matrix products return zeros of the right shape without computing them.
The tracer records the same `aten::linear` nodes with the same shapes, and the values that flow on are the same
zeros (for finite inputs), so the counts are the lean model's exactly.

Why not the meta device for the whole trace: torch's Python meta kernels read sizes that the tracer has made into
tensors, and fail (measured: ResNet, ViT, Swin, ConvNeXt, EfficientNet, MaxViT all stop at their first
convolution); and `aten::convolution` has a meta kernel of its own, so on the meta device it never calls
`aten::_convolution`, the op the tracer records and fvcore counts. Why not a `TorchDispatchMode`: a mode sees every
op below the tracer, convolutions included, and runs them where the tracer no longer records (measured: ResNet-50's
4.09 G of convolutions vanish from the count). A tensor subclass is only seen by the ops that use it, and a Linear's
weight is used by `aten::linear`, which the tracer records before any Python dispatch. Ops on a `Hollow` other than
views and products raise `NotImplementedError`: the caller then counts the ordinary way.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_map

__all__ = ["Hollow", "hollow_copy"]

aten = torch.ops.aten
# views of a zero tensor are zero tensors (shaped by the same view of the meta twin)
_VIEWS = {aten.t.default, aten.transpose.int, aten.permute.default, aten.view.default, aten._unsafe_view.default,
          aten.expand.default, aten.detach.default, aten.alias.default, aten.unsqueeze.default,
          aten.squeeze.dim, aten.squeeze.default, aten._reshape_alias.default}
# a product with a zero factor is zero; with an addend, beta * addend. Value: the position of the first factor.
_PRODUCTS = {aten.mm.default: 0, aten.bmm.default: 0, aten.addmm.default: 1, aten.baddbmm.default: 1}


class Hollow(torch.Tensor):
    """A stand-in for an all-zero tensor: shape, dtype and device, no data (its `twin` on the meta device carries
    the shape through views)."""

    @staticmethod
    def __new__(cls, meta: torch.Tensor, device: torch.device) -> Hollow:
        return torch.Tensor._make_wrapper_subclass(cls, meta.size(), strides=meta.stride(), dtype=meta.dtype,
                                                   device=device)

    def __init__(self, meta: torch.Tensor, device: torch.device):
        self.twin, self.home = meta, device

    def __repr__(self) -> str:  # torch's repr would read the (absent) data
        return f"Hollow({tuple(self.twin.shape)}, dtype={self.dtype}, device={self.home})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        hollow = next(a for a in [*args, *kwargs.values()] if isinstance(a, Hollow))
        if func in _VIEWS:
            return Hollow(func(*_metas(args), **_metas(kwargs)), hollow.home)
        if func in _PRODUCTS:
            first = _PRODUCTS[func]
            a, b = args[first], args[first + 1]
            if not (isinstance(a, Hollow) or isinstance(b, Hollow)):
                raise NotImplementedError(f"Hollow: {func} with a hollow addend")
            # (n, m) @ (m, p) -> (n, p), batched alike: worked out here, torch's Python meta kernels are slow
            if a.shape[-1] != b.shape[-2]:
                raise RuntimeError(f"{func}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied")
            out = torch.zeros((*a.shape[:-1], b.shape[-1]), dtype=a.dtype, device=hollow.home)
            beta = kwargs.get("beta", 1)
            if first and beta != 0 and not isinstance(args[0], Hollow):
                out.add_(args[0], alpha=beta)
            return out
        raise NotImplementedError(f"Hollow: {func} is neither a view nor a product")


def _metas(tree: Any) -> Any:
    return tree_map(lambda a: a.twin if isinstance(a, Hollow) else
                    a.to("meta") if isinstance(a, torch.Tensor) else a, tree)


def _zero_storages(tensors: list[torch.Tensor], known: dict[int, bool]) -> bool:
    """Whether the whole storage behind each tensor holds zeros (one scan per storage: a lean model's parameters
    are views of one storage, so this reads the size of its largest layer once)."""
    for t in tensors:
        s = t.untyped_storage()
        if s.data_ptr() not in known:
            flat = torch.empty(0, dtype=t.dtype, device=t.device).set_(s)
            known[s.data_ptr()] = not bool(flat.any())
        if not known[s.data_ptr()]:
            return False
    return True


# Below this many parameters in all-zero Linear layers, copying the model and dispatching its products in Python
# costs about what computing them does (measured on one core: vit_tiny, 5.5 M, +5 %; vit_small, 21.6 M, -37 %).
HOLLOW_ABOVE_PARAMS = 10_000_000


def hollow_copy(model: nn.Module, above: int | None = None) -> nn.Module | None:
    """A copy of `model` sharing its tensors, whose all-zero `nn.Linear` layers hold `Hollow` weights; None when
    those layers hold `above` (default HOLLOW_ABOVE_PARAMS) parameters or fewer. `model` itself is untouched (other
    threads may be running it)."""
    above = HOLLOW_ABOVE_PARAMS if above is None else above
    memo: dict[int, Any] = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    known: dict[int, bool] = {}
    hollowed = 0
    for m in model.modules():
        w = getattr(m, "weight", None)
        if isinstance(m, nn.Linear) and isinstance(w, nn.Parameter) and not w.is_meta \
                and memo[id(w)] is w and _zero_storages([w] + ([m.bias] if m.bias is not None else []), known):
            memo[id(w)] = nn.Parameter(Hollow(torch.empty_like(w, device="meta"), w.device), w.requires_grad)
            hollowed += w.numel()
    return copy.deepcopy(model, memo) if hollowed > above else None
