"""Products with zero weights, skipped: fvcore's trace of a lean model without its matrix arithmetic.

fvcore counts MACs from a `torch.jit` trace, which runs the model for real: for `vit_huge_patch14_224` that is
167 GMACs, 5 to 8 s on two cores, almost all of it in `nn.Linear`. A lean model's weights are all zero (see
`lean`), so every one of those products is known to be zero before it is computed. `hollow_copy` gives a copy
of the model whose `nn.Linear` layers with all-zero weight and bias hold a `Hollow` weight instead: a tensor with
the shape, dtype and device and no data, whose matrix products return zeros of the right shape (taken from the
meta device) without computing them. The tracer records the same `aten::linear` nodes with the same shapes, and the
values that flow on are the same zeros (for finite inputs), so the counts are the lean model's exactly.

Why not the meta device for the whole trace (measured): torch's Python meta kernels read sizes that the tracer has
made into tensors and fail, and where they run they skip the decompositions the tracer records on the CPU
(`aten::convolution` never reaches `aten::_convolution`, so ResNet-50's 4.09 G of convolutions vanish). Why not a
`TorchDispatchMode`: a mode sees every op below the tracer, convolutions included, and the same `_convolution`
nodes vanish. A tensor subclass is only seen by the ops that use it, and a Linear's weight is used by
`aten::linear`, which the tracer records above any Python dispatch. Ops on a `Hollow` other than views and
products raise `NotImplementedError`: the caller then counts the ordinary way.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_map

__all__ = ["Hollow", "hollow_copy"]

aten = torch.ops.aten
# views of a zero tensor are zero tensors
_VIEWS = {aten.t.default, aten.transpose.int, aten.permute.default, aten.view.default, aten._unsafe_view.default,
          aten.expand.default, aten.detach.default, aten.alias.default, aten.unsqueeze.default,
          aten.squeeze.dim, aten.squeeze.default, aten._reshape_alias.default}
_PRODUCTS = {aten.mm.default, aten.bmm.default}  # a product with a zero factor is zero
_ADD_PRODUCTS = {aten.addmm.default, aten.baddbmm.default}  # beta * self + alpha * (zero product) = beta * self


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
        if func in _PRODUCTS or func in _ADD_PRODUCTS:
            factors = args[:2] if func in _PRODUCTS else args[1:3]
            if not any(isinstance(a, Hollow) for a in factors):
                raise NotImplementedError(f"Hollow: {func} with a hollow addend")
            # the meta result's shape, dtype and strides, on the device the ordinary product would have used
            out = torch.empty_like(func(*_metas(args), **_metas(kwargs)), device=hollow.home).zero_()
            if func in _ADD_PRODUCTS and not isinstance(args[0], Hollow):
                out.add_(args[0], alpha=kwargs.get("beta", args[3] if len(args) > 3 else 1))
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


def hollow_copy(model: nn.Module) -> nn.Module | None:
    """A copy of `model` sharing its tensors, whose all-zero `nn.Linear` layers hold `Hollow` weights; None when
    it has none. `model` itself is untouched (other threads may be running it)."""
    memo: dict[int, Any] = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    known: dict[int, bool] = {}
    found = False
    for m in model.modules():
        w = getattr(m, "weight", None)
        if isinstance(m, nn.Linear) and isinstance(w, nn.Parameter) and not w.is_meta \
                and _zero_storages([w] + ([m.bias] if m.bias is not None else []), known):
            memo[id(w)] = nn.Parameter(Hollow(torch.empty_like(w, device="meta"), w.device), w.requires_grad)
            found = True
    return copy.deepcopy(model, memo) if found else None
