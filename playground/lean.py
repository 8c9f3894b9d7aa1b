"""Lean models: a backbone created for counting, without paying for random initialisation.

Counting (parameters, MACs, shapes, the layer table) needs the shape of every parameter and the value of every
buffer (relative position indices and attention masks are data: they decide what the forward pass computes), but
never the parameters' values. Created the ordinary way, `vit_huge_patch14_224` takes 7 to 10 s on two cores,
nearly all of it random initialisation, and holds 2.5 GB of weights. Here the parameters are registered on the meta
device, where timm's init functions cost nothing (and are skipped), while buffers are computed on the CPU as usual;
afterwards every parameter becomes a zero view of one shared storage per dtype, as large as the largest parameter.
vit_huge is then made in 0.1 s and runs (its outputs are meaningless) at the memory of its largest layer, 26 MB;
`hollow` can skip its products with zero weights.

Why not `torch.device("meta")` and `to_empty()`: buffers are created on the meta device too and come back as
uninitialised memory; timm's `reinit_non_persistent_buffers` recomputes only the non-persistent buffers of modules
that implement it, so batch-norm statistics and persistent position indices would stay garbage. Why not the
`init_empty_weights` of accelerate (not a dependency): it patches `nn.Module.register_parameter` for every thread,
while the app builds ordinary models in other threads at the same time; torch's registration hook with a
thread-local switch acts on this thread only.

A buffer that followed a parameter onto the meta device (Swin computes its attention mask on `norm1.weight.device`)
is recomputed by its module's `init_non_persistent_buffers`, timm's hook for exactly that. A model with any other
meta buffer, or whose constructor cannot run with meta parameters (it runs a forward pass, as hybrid ViTs do to
size their embedding, or fills a CPU buffer from a parameter's device, as Swin V2 does), is created the ordinary
way: `create` never fails where ordinary creation works. That is 4 of the 195 families of timm's table.

Lean models are for counting only (every weight is zero): predictions, latency and exports use ordinary ones.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ["create", "NotLean"]


class NotLean(RuntimeError):
    """The model holds meta tensors that cannot be recomputed: create it the ordinary way."""


_local = threading.local()  # .memo while this thread creates a lean model: id(original) -> (original, meta)
_hook_lock = threading.Lock()
_hook_installed = False


def _to_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> nn.Parameter | None:
    """torch's parameter registration hook: on a thread creating a lean model, the parameter moves to meta (the
    same meta parameter for the same original, so tied weights stay tied); elsewhere, nothing changes."""
    memo = getattr(_local, "memo", None)
    if memo is None or param is None or param.is_meta:
        return None
    if id(param) not in memo:  # the original is kept in the memo so that its id cannot be reused meanwhile
        memo[id(param)] = (param, nn.Parameter(param.detach().to("meta"), param.requires_grad))
    return memo[id(param)][1]


def _install_hook() -> None:
    """Installed once and never removed: adding or removing a global hook while another thread registers a
    parameter would change the hook table under its iteration."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            nn.modules.module.register_module_parameter_registration_hook(_to_meta)
            _hook_installed = True


# torch.nn.init's functions and the in-place fills they (and timm's trunc_normal_) are made of
_INIT = frozenset({
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_", "xavier_uniform_",
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_", "fill_", "zero_", "copy_",
    "mul_", "add_", "sub_", "div_", "clamp_", "clamp_min_", "clamp_max_", "erfinv_", "exponential_", "bernoulli_",
    "random_", "log_normal_", "cauchy_", "geometric_",
})


class _SkipInit(TorchFunctionMode):
    """Initialising a meta tensor in place changes nothing, yet costs torch's Python meta kernels (timm's
    trunc_normal_ is five of them per parameter: more than the real init of a small model); skipped. A mode is
    thread-local."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")  # torch.nn.init passes its tensor by keyword
        if getattr(func, "__name__", None) in _INIT and isinstance(target, torch.Tensor) and target.is_meta:
            return target
        return func(*args, **kwargs)


@contextmanager
def _parameters_on_meta() -> Iterator[None]:
    _install_hook()
    outer = getattr(_local, "memo", None)
    _local.memo = {}
    try:
        with _SkipInit():
            yield
    finally:
        _local.memo = outer


def _zero_parameters(model: nn.Module) -> None:
    """Every meta parameter becomes a zero view of one storage per dtype (tied parameters stay one parameter)."""
    owners = [(m, name, p) for m in model.modules() for name, p in m._parameters.items()
              if p is not None and p.is_meta]
    sizes: dict[torch.dtype, int] = {}
    for _, _, p in owners:
        sizes[p.dtype] = max(sizes.get(p.dtype, 0), p.numel())
    zeros = {dtype: torch.zeros(n, dtype=dtype) for dtype, n in sizes.items()}
    made: dict[int, nn.Parameter] = {}
    for m, name, p in owners:
        if id(p) not in made:
            made[id(p)] = nn.Parameter(zeros[p.dtype][:p.numel()].view(p.shape), p.requires_grad)
        m._parameters[name] = made[id(p)]


def _restore_buffers(model: nn.Module) -> None:
    """Buffers created on a parameter's (meta) device, recomputed by their module's timm hook; else NotLean."""
    for path, m in model.named_modules():
        meta = [n for n, b in m._buffers.items() if b is not None and b.is_meta]
        if not meta:
            continue
        if not hasattr(m, "init_non_persistent_buffers") or any(n not in m._non_persistent_buffers_set
                                                                for n in meta):
            raise NotLean(f"{path or type(m).__name__}: buffers {meta} were created on the meta device")
        for n in meta:
            m._buffers[n] = torch.empty_like(m._buffers[n], device="cpu")
        m.init_non_persistent_buffers()
        if any(b is not None and b.is_meta for b in m._buffers.values()):
            raise NotLean(f"{path or type(m).__name__}: init_non_persistent_buffers left meta buffers")


def _check_no_meta(model: nn.Module) -> None:
    left = next((n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta), None)
    if left is not None:
        raise NotLean(f"{left} is still on the meta device")


def create(make: Callable[..., nn.Module], *args: Any, **kwargs: Any) -> nn.Module:
    """`make(*args, **kwargs)` (e.g. `timm.create_model`) as a lean model; the ordinary model when the lean one
    cannot be made (its errors are then the ordinary creation's).

    >>> import timm
    >>> m = create(timm.create_model, "resnet18")
    >>> sum(p.numel() for p in m.parameters()), bool(m.fc.weight.any())
    (11689512, False)
    """
    try:
        with _parameters_on_meta():
            model = make(*args, **kwargs)
        _zero_parameters(model)
        _restore_buffers(model)
        _check_no_meta(model)
        return model
    except Exception:  # noqa: BLE001  anything the lean way cannot do, the ordinary way does (or says why not)
        return make(*args, **kwargs)
