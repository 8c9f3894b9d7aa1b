"""The embedding stride: change the first downsampling layer (ResNet `conv1`, EfficientNet `conv_stem`, the patch
embeddings of ViT, Swin, FasterNet, PoolFormer, ...; the first strided pool of a net that downsamples by pooling,
VGG and anti-aliased DarkNets), then let the family fix what depends on the grid.

Seed 000's tip: a stride-4 embedding (8x8 maps on CIFAR) runs faster than stride 2 (16x16) at little cost.
Families whose modules depend on the patch grid register a fix-up (`register_grid_fixup`): ViT resamples its
absolute position embeddings (overlapping patches allowed), Swin re-sizes its windows' attention masks and checks
that the new grid still fits the window size. Convolutional families need none.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from timm.layers import resample_abs_pos_embed
from torch import nn

from .errors import SpecError
from .points import Probe
from .spec import StemSpec

__all__ = ["StemPlan", "plan_stem", "apply_stem", "has_fixup", "register_grid_fixup", "first_downsampling",
           "downsampling_geometry",
           "DOWNSAMPLERS"]

GridFixup = Callable[[nn.Module, str, tuple[int, int], int], list[str]]
_FIXUPS: dict[type, GridFixup] = {}


def register_grid_fixup(model_cls: type) -> Callable[[GridFixup], GridFixup]:
    """Register `fixup(model, conv_path, new_grid, img_size) -> warnings` for a model class (and subclasses)."""
    def wrap(fn: GridFixup) -> GridFixup:
        _FIXUPS[model_cls] = fn
        return fn
    return wrap


def _pair_first(value) -> int:
    return value[0] if isinstance(value, (tuple, list)) else value


def _conv_geometry(conv: nn.Conv2d) -> tuple[int, int, int]:
    return conv.kernel_size[0], conv.stride[0], conv.padding[0] if isinstance(conv.padding, tuple) else 0


def _pool_geometry(pool: nn.MaxPool2d | nn.AvgPool2d) -> tuple[int, int, int]:
    return _pair_first(pool.kernel_size), _pair_first(pool.stride), _pair_first(pool.padding)


# The layers that can make the embedding's first downsampling, and how to read their (kernel, stride, padding). A
# conv may also change kernel and padding (a new conv); a pool only its stride.
DOWNSAMPLERS: dict[type[nn.Module], Callable[[nn.Module], tuple[int, int, int]]] = {
    nn.Conv2d: _conv_geometry, nn.MaxPool2d: _pool_geometry, nn.AvgPool2d: _pool_geometry}


def downsampling_geometry(module: nn.Module) -> tuple[int, int, int] | None:
    """(kernel, stride, padding) of a layer of `DOWNSAMPLERS`; None for any other layer."""
    read = next((fn for cls, fn in DOWNSAMPLERS.items() if isinstance(module, cls)), None)
    return read(module) if read else None


def _shrinks_image(call) -> bool:
    """A module call that takes a 4-D map and returns one at most half as wide and high (space-to-depth, a patch
    unfold); not a valid-padded conv, which trims a few pixels."""
    inp, out = call.inp, call.out
    return (isinstance(inp, torch.Tensor) and isinstance(out, torch.Tensor) and inp.dim() == out.dim() == 4
            and 2 * out.shape[-1] <= inp.shape[-1] and 2 * out.shape[-2] <= inp.shape[-2])


def first_downsampling(probe: Probe) -> str | None:
    """Path of the layer whose stride is the embedding's: the first conv that runs with a stride > 1; in a net with
    none, the first strided pool (VGG, anti-aliased DarkNet), unless a layer of another kind shrank the map before
    it (TResNet's space-to-depth: then that layer, which `plan_stem` refuses to change, not a later shortcut pool)."""
    modules = dict(probe.model.named_modules())
    order = sorted((p for p in probe.calls if p in modules), key=lambda p: probe.calls[p].start)
    strided = [p for p in order if (downsampling_geometry(modules[p]) or (0, 1, 0))[1] > 1]
    conv = next((p for p in strided if isinstance(modules[p], nn.Conv2d)), None)
    if conv is not None or not strided:
        return conv
    pool = strided[0]
    leaves = (p for p in order[:order.index(pool)] if not any(True for _ in modules[p].children()))
    return next((p for p in leaves if _shrinks_image(probe.calls[p])), pool)


def _unstrided_embedding(probe: Probe) -> str:
    """Why a backbone without a strided layer has no stride: its patch embedding cuts patches itself and projects
    them with a Linear layer (NaFlex ViT), or nothing downsamples at all."""
    for name, m in probe.model.named_modules():
        size, linear = getattr(m, "patch_size", None), getattr(m, "proj", None)
        if name in probe.calls and size and isinstance(linear, nn.Linear):
            p = _pair_first(size)
            return (f": {name} ({type(m).__name__}) cuts {p}x{p} patches and projects them with a Linear layer of "
                    f"{linear.in_features} inputs, so its patch size is fixed by its weights")
    return " (no patch embedding, stem conv or downsampling pool found)"


def _conv_out(size: int, kernel: int, stride: int, padding: int, ceil: bool = False) -> int:
    span = size + 2 * padding - kernel
    return (-(-span // stride) if ceil else span // stride) + 1


def _grid(size: int, kernel: int, stride: int, padding: int, rounding: str) -> int:
    """The output width of a downsampling layer: `same` (TF padding: ceil(size / stride)), `ceil` (a ceil_mode
    pool) or `floor` (a conv)."""
    return math.ceil(size / stride) if rounding == "same" else _conv_out(size, kernel, stride, padding,
                                                                          rounding == "ceil")


def _ratio(value: float) -> str:
    """A total stride: exact where the map divides the image (8), else about (about 8.3: 224 px on 27 patches)."""
    return f"{round(value)}" if abs(value - round(value)) < 1e-6 else f"about {value:.1f}"


@dataclass(frozen=True)
class StemPlan:
    """What a stem spec changes: the embedding conv at `path` and the grid it makes from its `in_size` input."""
    path: str
    before: tuple[int, int, int]  # kernel, stride, padding
    after: tuple[int, int, int]
    in_size: int
    grid_before: int
    grid_after: int
    img_size: int
    rounding: str = "floor"  # how the layer rounds its output size: floor, ceil or same

    @property
    def equivalent_img_size(self) -> int:
        """The image size at which the unchanged model makes the new grid: what grid-dependent parts (position
        embeddings, attention biases, windows) are rebuilt for. Of the sizes at which the unchanged layer makes
        exactly `grid_after`, the one nearest the proportional size: PiT's 16-pixel patches at stride 8 make a
        14x14 grid from 120 px, not from 224 x 14 / 27 = 116 (which makes 13x13)."""
        scale = self.img_size / self.in_size  # the layer may sit behind other layers that keep the size
        guess = self.in_size * self.grid_after / self.grid_before
        k, s, p = self.before
        reach = 2 * (s + k)
        sizes = [n for n in range(max(1, int(guess) - reach), int(guess) + reach + 1)
                 if _grid(n, k, s, p, self.rounding) == self.grid_after]
        best = min(sizes, key=lambda n: (abs(n - guess), -n)) if sizes else guess
        return max(1, round(best * scale))

    def describe(self, grid: int | None, total_after: float | None, total_before: float | None) -> str:
        """"conv1: stride 2 -> 4; stage 1 sees 28x28 (total stride 8, was 4)"."""
        (k0, s0, p0), (k1, s1, p1) = self.before, self.after
        parts = [f"stride {s0} -> {s1}"] if s0 != s1 else []
        parts += [f"kernel {k0} -> {k1}"] if k0 != k1 else []
        parts += [f"padding {p0} -> {p1}"] if p0 != p1 else []
        text = f"{self.path}: {', '.join(parts) or 'unchanged'}"
        if grid is not None and total_after is not None:
            text += f"; stage 1 sees {grid}x{grid} (total stride {_ratio(total_after)}"
            text += f", was {_ratio(total_before)})" if total_before is not None and total_before != total_after \
                else ")"
        return text


def plan_stem(probe: Probe, stem: StemSpec) -> StemPlan:
    """The change a stem spec asks of the backbone's first strided conv; a SpecError when it cannot work."""
    path = first_downsampling(probe)
    if path is None:
        raise SpecError("stem: this backbone has no strided conv or pool to change" + _unstrided_embedding(probe))
    conv = probe.model.get_submodule(path)
    if downsampling_geometry(conv) is None:
        raise SpecError(f"stem: the first downsampling layer here is a {type(conv).__name__} ({path}), which has no "
                        f"stride to change (its output's channels depend on its reduction)")
    k0, s0, p0 = downsampling_geometry(conv)
    if not isinstance(conv, nn.Conv2d) and (stem.kernel not in (None, k0) or stem.padding not in (None, p0)):
        raise SpecError(f"stem: the first downsampling layer here is a {type(conv).__name__} ({path}): only its "
                        f"stride can change, not its kernel or padding")
    kernel = stem.kernel or k0
    stride = stem.stride or s0
    same_kernel_padding = p0 if kernel == k0 else (0 if p0 == 0 else (kernel - 1) // 2)
    padding = stem.padding if stem.padding is not None else same_kernel_padding
    in_size = probe.calls[path].inp.shape[-1]
    same = type(conv).__name__.startswith("Conv2dSame") or getattr(conv, "padding", None) == "same"
    rounding = "same" if same else "ceil" if getattr(conv, "ceil_mode", False) else "floor"
    grid = _grid(in_size, kernel, stride, padding, rounding)
    if grid < 1:
        raise SpecError(f"stem: kernel {kernel}, stride {stride}, padding {padding} leave no output pixels "
                        f"on a {in_size}x{in_size} input")
    return StemPlan(path, (k0, s0, p0), (kernel, stride, padding), in_size, probe.calls[path].out.shape[-1], grid,
                    probe.img_size, rounding)


def has_fixup(model: nn.Module) -> bool:
    return any(cls in _FIXUPS for cls in type(model).__mro__)


def apply_stem(model: nn.Module, plan: StemPlan, pretrained: bool = False) -> tuple[dict, list[str]]:
    """Change the embedding conv in place and run the family's grid fix-up. Returns ({path, before, after, grid},
    warnings)."""
    path = plan.path
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    conv: nn.Module = getattr(parent, name)
    (k0, s0, p0), (kernel, stride, padding) = plan.before, plan.after
    warnings: list[str] = []
    if not isinstance(conv, nn.Conv2d):  # a pool: its stride (plan_stem refused any other change)
        conv.stride = stride if isinstance(conv.stride, int) else (stride, stride)
    elif kernel != k0:
        new = nn.Conv2d(conv.in_channels, conv.out_channels, kernel, stride, padding, dilation=conv.dilation,
                        groups=conv.groups, bias=conv.bias is not None)
        new.train(conv.training)
        setattr(parent, name, new)
        if pretrained:
            warnings.append(f"stem: {path} kernel {k0} -> {kernel} re-initialises that conv (its pretrained "
                            f"weights no longer fit)")
    else:
        conv.stride, conv.padding = (stride, stride), (padding, padding)
    if kernel < stride:
        warnings.append(f"stem: {path} has kernel {kernel} < stride {stride}: {stride - kernel} of every {stride} "
                        f"pixels in each direction are never seen")
    _accept_input_size(model, path, plan)
    grid = plan.grid_after
    for cls in type(model).__mro__:
        if cls in _FIXUPS:
            warnings += _FIXUPS[cls](model, path, (grid, grid), plan.img_size)
            break
    change = {"path": path, "before": {"kernel": k0, "stride": s0, "padding": p0},
              "after": {"kernel": kernel, "stride": stride, "padding": padding}, "grid": grid}
    return change, warnings


def _accept_input_size(model: nn.Module, path: str, plan: StemPlan) -> None:
    """A patch embedding rebuilt for the equivalent image size still receives the real one: say so where it
    checks (timm's PatchEmbed asserts its `img_size`)."""
    eff, real = plan.equivalent_img_size, plan.in_size
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        m = model.get_submodule(".".join(parts[:i]))
        size = getattr(m, "img_size", None)
        if isinstance(size, (tuple, list)) and len(size) == 2 and tuple(size) == (eff, eff) and eff != real:
            m.img_size = (real, real)


def _set_patch_grid(patch_embed: nn.Module, grid: tuple[int, int], stride: int) -> tuple[int, int]:
    old = tuple(patch_embed.grid_size)
    patch_embed.grid_size = grid
    patch_embed.num_patches = grid[0] * grid[1]
    patch_embed.patch_size = (stride, stride)  # timm reads it as the feature reduction
    return old


def _token_grid(patch_embed: nn.Module, img_size: int) -> tuple[int, int]:
    """The token grid a ViT's patch embedding makes now: the map its `proj` sees. A hybrid's (R50-ViT, ViTamin)
    is its CNN's output, not the changed stem conv's, so it is measured, on the weights' device (meta in a lean
    build)."""
    seen: list[tuple[int, int]] = []
    hook = patch_embed.proj.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[-2:])))
    device = next(patch_embed.parameters()).device
    try:
        with torch.no_grad():
            patch_embed(torch.zeros(1, 3, img_size, img_size, device=device))
    finally:
        hook.remove()
    return seen[0]


def _vit_fixup(model: nn.Module, conv_path: str, grid: tuple[int, int], img_size: int) -> list[str]:
    """ViT (Dosovitskiy et al. 2021): resample the absolute position embedding to the new patch grid; a hybrid
    embedding (ViT-R, ViTamin) re-sizes its feature grid."""
    embed = model.patch_embed
    old = tuple(embed.grid_size)
    conv = model.get_submodule(conv_path)
    if conv is getattr(embed, "proj", None):
        _set_patch_grid(embed, grid, conv.stride[0])
    else:  # the stem conv of a hybrid's CNN: the tokens are what that CNN makes of the new stem. Measured here:
        # timm's HybridEmbed.set_input_size measures the same way, but only when the image size changes
        grid = _token_grid(embed, img_size)
        embed.grid_size, embed.num_patches = grid, grid[0] * grid[1]
        if hasattr(embed, "feature_size"):
            embed.feature_size = tuple(g * p for g, p in zip(grid, embed.patch_size))
            embed.feature_ratio = tuple(max(1, round(img_size / f)) for f in embed.feature_size)
    if getattr(model, "pos_embed", None) is None or old == grid:
        return []
    prefix = 0 if getattr(model, "no_embed_class", False) else model.num_prefix_tokens
    with torch.no_grad():
        model.pos_embed = nn.Parameter(resample_abs_pos_embed(model.pos_embed, new_size=list(grid),
                                                              old_size=list(old), num_prefix_tokens=prefix))
    return [f"stem: position embeddings resampled from a {old[0]}x{old[1]} to a {grid[0]}x{grid[1]} patch grid"]


def _swin_stage_sizes(grid: int, n_stages: int) -> list[int]:
    return [math.ceil(grid / 2 ** i) for i in range(n_stages)]


def _swin_fits(grid: int, window: int, n_stages: int) -> bool:
    """Every stage's map divides into windows or fits in one (timm then shrinks the window to the map)."""
    return all(s % window == 0 or s <= window for s in _swin_stage_sizes(grid, n_stages))


def _swin_fixup(model: nn.Module, conv_path: str, grid: tuple[int, int], img_size: int) -> list[str]:
    """Swin (Liu et al. 2021): windows must tile every stage's map; re-size windows and attention masks."""
    window = max(max(b.window_size) for layer in model.layers for b in layer.blocks)
    n = len(model.layers)
    conv = model.get_submodule(conv_path)
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    if not _swin_fits(grid[0], window, n):
        ok = [c for c in range(1, 17) if _swin_fits(_conv_out(img_size, k, c, p), window, n)]
        raise SpecError(f"stem.stride: {s} gives stage maps {'/'.join(map(str, _swin_stage_sizes(grid[0], n)))} "
                        f"at img_size {img_size}, which {window}x{window} Swin windows do not tile; strides that "
                        f"fit with kernel {k}, padding {p}: {', '.join(map(str, ok)) or 'none'}")
    _set_patch_grid(model.patch_embed, grid, s)
    for i, layer in enumerate(model.layers):
        scale = 2 ** max(i - 1, 0)
        layer.set_input_size(feat_size=tuple(math.ceil(g / scale) for g in grid), window_size=window)
    small = [i + 1 for i, size in enumerate(_swin_stage_sizes(grid[0], n)) if size < window]
    return [f"stem: stage(s) {', '.join(map(str, small))} are now smaller than a {window}x{window} window, so their "
            f"windows shrink to the whole map"] if small else []


def _register_builtin() -> None:
    from timm.models.swin_transformer import SwinTransformer
    from timm.models.vision_transformer import VisionTransformer
    register_grid_fixup(VisionTransformer)(_vit_fixup)
    register_grid_fixup(SwinTransformer)(_swin_fixup)


_register_builtin()
