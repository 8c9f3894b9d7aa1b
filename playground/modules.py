"""Insertable modules: the catalog's factories over timm's attention classes, layout adapters, composites and the
residual gate.

Every catalog module works on NCHW tensors and keeps their shape. `LayoutAdapter` makes it work on the layout of
the point it is stitched into (NCHW, NHWC as in timm's Swin / ConvNeXt blocks, or NLC tokens with prefix tokens);
composites (`Serial`, `Parallel`) and the `Gate` wrap catalog modules and run inside one adapter.

What a spec may say about each module (names, arguments, where it works) is data in `playground.catalog`, which
imports no torch; `introspected_arg_types` reads the same from timm's constructors, for the test that holds the two
equal. Channels always come from the resolved point, never from the user.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from timm.layers import get_attn, make_divisible
from torch import nn

from .catalog import LAYER_ARGS, MODULES, ArgTypes, get_info
from .choices import MERGES
from .errors import SpecError

__all__ = ["CatalogEntry", "register_module", "catalog", "get_entry", "introspected_arg_types", "se_hidden_width",
           "Serial", "Parallel", "Gate", "LayoutAdapter", "laid_out_like"]


@dataclass(frozen=True)
class CatalogEntry:
    """One insertable module: how to build it for C channels, with its catalog data (`playground.catalog`)."""
    name: str
    factory: Callable[..., nn.Module]
    paper: str
    needs_grid: bool = False
    residual: bool = False
    arg_types: ArgTypes = field(default_factory=dict)

    def create(self, channels: int, args: dict[str, Any]) -> nn.Module:
        return self.factory(channels, **args)


_CATALOG: dict[str, CatalogEntry] = {}
_ARG_SOURCES: dict[str, tuple[Callable, tuple[str, ...]]] = {}  # name -> (constructor to read, names to drop)
_SKIP_ARGS = {"self", "channels", "in_channels", "device", "dtype", "_", "norm_layer"}
_FLOAT_ARGS = {"gamma", "beta", "se_factor"}  # declared with int defaults in timm, real-valued in the papers


def _arg_types(fn: Callable) -> dict[str, tuple[type, ...]]:
    """Argument name -> accepted JSON types, read from the constructor's defaults."""
    sig = inspect.signature(fn.func if isinstance(fn, partial) else fn)
    fixed = fn.keywords if isinstance(fn, partial) else {}
    types: dict[str, tuple[type, ...]] = {}
    for name, p in sig.parameters.items():
        if name in _SKIP_ARGS or name in fixed or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        d = p.default
        if name in LAYER_ARGS:
            types[name] = (str,)
        elif isinstance(d, bool):
            types[name] = (bool,)
        elif isinstance(d, float) or name in _FLOAT_ARGS:
            types[name] = (float, int)
        elif isinstance(d, int) or d is None:
            types[name] = (int,)
    return types


def register_module(
        name: str,
        factory: Callable[..., nn.Module] | None = None,
        arg_source: Callable | None = None,
        drop_args: Sequence[str] = (),
) -> CatalogEntry:
    """The factory of catalog module `name`; `factory(channels, **args)` defaults to timm's `get_attn(name)`.

    Its arguments as timm declares them are read from `arg_source` (default: the factory) less `drop_args`.
    """
    factory = factory or get_attn(name)
    info = MODULES[name]
    entry = CatalogEntry(name, factory, info.paper, info.needs_grid, info.residual, info.args)
    _CATALOG[name] = entry
    _ARG_SOURCES[name] = (arg_source or factory, tuple(drop_args))
    return entry


def introspected_arg_types(name: str) -> ArgTypes:
    """The arguments of catalog module `name` and their JSON types, as read from its timm constructor."""
    source, drop = _ARG_SOURCES[name]
    return {k: v for k, v in _arg_types(source).items() if k not in drop}


def catalog() -> dict[str, CatalogEntry]:
    return {name: _CATALOG[name] for name in MODULES}


def get_entry(name: str, where: str = "module") -> CatalogEntry:
    return _CATALOG[get_info(name, where).name]


def _eca(channels: int, kernel_size: int | None = None, circular: bool = False, **kwargs) -> nn.Module:
    """ECA with a fixed kernel when `kernel_size` is given, else the paper's adaptive kernel from gamma/beta.

    timm's EcaModule ignores kernel_size whenever channels are passed, so they are withheld for a fixed kernel.
    """
    cls = get_attn("ceca" if circular else "eca")
    if kernel_size is not None:
        return cls(None, kernel_size=kernel_size, **kwargs)
    return cls(channels, **kwargs)


def _identity(channels: int) -> nn.Module:
    return nn.Identity()


for _name in ("se", "ese", "gc", "cbam", "lcbam", "coord", "scoord", "ela", "strip", "nl"):
    register_module(_name)
register_module("identity", _identity)
register_module("eca", _eca, arg_source=get_attn("eca"), drop_args=("use_mlp", "rd_ratio", "rd_channels", "rd_divisor"))
register_module("ceca", partial(_eca, circular=True), arg_source=get_attn("ceca"))
register_module("ecam", get_attn("ecam"))
register_module("gca", get_attn("gca"))


def se_hidden_width(channels: int, args: dict[str, Any]) -> tuple[float, int]:
    """(ideal, actual) hidden width of an SE-style bottleneck, as timm's make_divisible rounds it."""
    if args.get("rd_channels"):
        return float(args["rd_channels"]), int(args["rd_channels"])
    ideal = channels * args.get("rd_ratio", 1. / 16)
    return ideal, make_divisible(ideal, args.get("rd_divisor", 8), round_limit=0.)


class Serial(nn.Sequential):
    """Modules applied one after another."""


class Parallel(nn.Module):
    """Branches on the same input, merged by add, mul or concat (concat then a 1x1 projection back to C)."""

    def __init__(self, branches: Sequence[nn.Module], merge: str, channels: int):
        super().__init__()
        if merge not in MERGES:
            raise SpecError(f"merge: {merge!r} is not one of {', '.join(MERGES)}")
        self.merge = merge
        self.branches = nn.ModuleList(branches)
        self.proj = nn.Conv2d(channels * len(branches), channels, 1) if merge == "concat" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        if self.merge == "concat":
            return self.proj(torch.cat(outs, dim=1))
        y = outs[0]
        for o in outs[1:]:
            y = y + o if self.merge == "add" else y * o
        return y

    def extra_repr(self) -> str:
        return f"merge={self.merge}"


class Gate(nn.Module):
    """Zero-initialised residual gate: y = x + g * (m(x) - x), g = 0 at init.

    A pretrained model's outputs are unchanged until g is trained (the same idea as ReZero, Bachlechner et al.
    2020, and the zero-init residual branches of Goyal et al. 2017).
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gate * (self.module(x) - x)


def laid_out_like(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`y` with `x`'s strides, values unchanged. The layers after a stitch point then see the memory layout they
    saw in the base model: CPU kernels (oneDNN) are chosen by layout, and a different choice changes the last bits,
    by different amounts on AMD and Intel. So a gated stitch (an identity at init) leaves every later bit as is."""
    if y.stride() == x.stride() or y.shape != x.shape or any(s == 0 for s in x.stride()):
        return y
    out = torch.empty_strided(x.shape, x.stride(), dtype=y.dtype, device=y.device)
    return out.copy_(y)


class LayoutAdapter(nn.Module):
    """Run an NCHW module on a point of any layout.

    NCHW: as is. NHWC: permuted. NLC tokens: prefix tokens (cls, registers) pass through untouched, patch tokens are
    reshaped to their (h, w) grid when it is known, else to an (L, 1) column, which suits channel-only modules.
    """

    def __init__(self, module: nn.Module, layout: str, num_prefix_tokens: int = 0,
                 grid: tuple[int, int] | None = None):
        super().__init__()
        self.layout = layout
        self.num_prefix_tokens = num_prefix_tokens
        self.grid = tuple(grid) if grid else None
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return laid_out_like(self._run(x), x)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout == "NCHW":
            return self.module(x)
        if self.layout == "NHWC":
            return self.module(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        prefix, tokens = x[:, :self.num_prefix_tokens], x[:, self.num_prefix_tokens:]
        B, L, C = tokens.shape
        h, w = self.grid or (L, 1)
        y = self.module(tokens.transpose(1, 2).reshape(B, C, h, w)).flatten(2).transpose(1, 2)
        return torch.cat([prefix, y], dim=1) if self.num_prefix_tokens else y

    def extra_repr(self) -> str:
        if self.layout != "NLC":
            return f"layout={self.layout}"
        grid = f"{self.grid[0]}x{self.grid[1]}" if self.grid else "none"
        return f"layout=NLC, prefix_tokens={self.num_prefix_tokens}, grid={grid}"
