""" SpectFormer (hierarchical)

Paper: `SpectFormer: Frequency and Attention is what you need in a Vision Transformer`
    - https://arxiv.org/abs/2304.06446 (Patro, Namboodiri, Agneeswaran, 2023)

Official code: https://github.com/badripatro/SpectFormers (``hierarchical_architecture/spectformer.py``,
which defines ``spectformer_s/b/l``). This is a timm-style re-implementation with the same parameters and
module names inside the blocks (``norm1``, ``attn``, ``norm2``, ``mlp.fc1``, ``mlp.dwconv.dwconv``, ``mlp.fc2``,
``post_network``), re-arranged the timm way: ``stem``, ``stages.<i>`` (``downsample`` -> ``blocks`` -> ``norm``),
``norm``, ``head`` (+ ``aux_head``). ``checkpoint_filter_fn`` maps an official checkpoint onto this layout.

Differences from the official code:
  * The spectral filter of stages 1-2 is sized from the feature-map grid implied by ``img_size`` and the stem
    (the official shapes are hard-coded for 224: (56, 29, C) and (28, 15, C)); if the grid seen at runtime differs
    (other input size, or the stem stride changed on a built model) the filter is resampled to it, see
    ``SpectralGatingNetwork``.
  * Blocks work on NHWC tensors (B, H, W, C) instead of (B, N, C) + (H, W) arguments; every stage returns NCHW.
  * Token labelling: the ``aux_head`` is kept (``token_label=True``, as in the official models, and counted in the
    published parameter numbers) and always combined as at evaluation, ``cls + 0.5 * max_tokens(aux)``. The
    training-time MixToken / dense-label outputs are not implemented.
"""
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import (
    DropPath,
    LayerNorm,
    LayerNorm2d,
    Mlp,
    calculate_drop_path_rates,
    to_2tuple,
    trunc_normal_,
    use_fused_attn,
)
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import Tensor
from torch.jit import Final

__all__ = ["SpectFormer"]


def _conv_out(size: tuple[int, int], conv: nn.Conv2d) -> tuple[int, int]:
    """Spatial output size of ``conv`` for an input of ``size`` (PyTorch's convolution arithmetic)."""
    return tuple(
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, k, st, p, d in zip(size, conv.kernel_size, conv.stride, conv.padding, conv.dilation)
    )


def resample_spectral_weight(weight: Tensor, size: tuple[int, int]) -> Tensor:
    """Resample a spectral filter stored as (H, W // 2 + 1, C, 2) real/imag parts to ``size`` = (H', W' // 2 + 1).

    Rule: the filter is treated as a function of normalised frequency. The H axis of an rfft2 spectrum is
    periodic (0, 1, .., -1), so it is fftshift-ed to put zero frequency in the middle, the real and imaginary
    parts are bilinearly interpolated (align_corners=True: the extreme frequencies stay on the corners), and the
    H axis is shifted back. The W axis (0 .. Nyquist) needs no shift.
    """
    h, w, c, _ = weight.shape
    x = torch.fft.fftshift(weight, dim=0)
    x = x.permute(2, 3, 0, 1).reshape(1, c * 2, h, w)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    x = x.reshape(c, 2, size[0], size[1]).permute(2, 3, 0, 1)
    return torch.fft.ifftshift(x, dim=0).contiguous()


class SpectralGatingNetwork(nn.Module):
    """Global filter token mixer (GFNet-style): rfft2 over H x W -> multiply by a learned complex filter -> irfft2.

    The filter has shape (H, W // 2 + 1, C), stored as a real tensor (..., 2), for the grid given at
    construction. At runtime on another grid it is resampled (``resample_spectral_weight``).
    Input and output are NHWC.
    """

    def __init__(self, dim: int, grid_size: tuple[int, int] = (56, 56)):
        super().__init__()
        self.grid_size = to_2tuple(grid_size)
        h, w = self.grid_size
        self.complex_weight = nn.Parameter(torch.randn(h, w // 2 + 1, dim, 2, dtype=torch.float32) * 0.02)

    def spectral_filter(self, h: int, w: int) -> Tensor:
        """The complex filter for an rfft2 spectrum of a (h, w) grid."""
        weight = self.complex_weight
        if weight.shape[0] != h or weight.shape[1] != w // 2 + 1:
            weight = resample_spectral_weight(weight, (h, w // 2 + 1))
        return torch.view_as_complex(weight)

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        dtype = x.dtype
        x = torch.fft.rfft2(x.float(), dim=(1, 2), norm="ortho")
        x = x * self.spectral_filter(H, W)
        x = torch.fft.irfft2(x, s=(H, W), dim=(1, 2), norm="ortho")
        return x.to(dtype)

    def extra_repr(self) -> str:
        return f"grid_size={self.grid_size}, filter={tuple(self.complex_weight.shape[:3])}"


class Attention(nn.Module):
    """Multi-head self-attention with separate ``q`` and ``kv`` projections (as in the official code). NHWC."""
    fused_attn: Final[bool]

    def __init__(self, dim: int, num_heads: int = 8):
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} should be divided by num_heads {num_heads}."
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.fused_attn = use_fused_attn()
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        x = x.reshape(B, H * W, C)
        q = self.q(x).reshape(B, H * W, self.num_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(x).reshape(B, H * W, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            x = attn.softmax(dim=-1) @ v
        x = x.transpose(1, 2).reshape(B, H, W, C)
        return self.proj(x)


class DWConv(nn.Module):
    """Depthwise 3x3 convolution on an NHWC tensor."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PVT2FFN(nn.Module):
    """PVTv2 feed-forward: fc1 -> depthwise 3x3 conv -> GELU -> fc2 (https://arxiv.org/abs/2106.13797). NHWC."""

    def __init__(self, in_features: int, hidden_features: int, act_layer: type[nn.Module] = nn.GELU):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.dwconv = DWConv(hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x))))


class Block(nn.Module):
    """x + DropPath(mixer(LN(x))), x + DropPath(PVT2FFN(LN(x))); the mixer is spectral gating or attention."""

    def __init__(
            self,
            dim: int,
            num_heads: int,
            mlp_ratio: float,
            block_type: str = "spectral",
            grid_size: tuple[int, int] = (56, 56),
            drop_path: float = 0.,
            norm_layer: Callable[..., nn.Module] = LayerNorm,
    ):
        super().__init__()
        assert block_type in ("spectral", "attn"), f"unknown block_type {block_type!r}"
        self.norm1 = norm_layer(dim)
        if block_type == "attn":
            self.attn = Attention(dim, num_heads)
        else:
            self.attn = SpectralGatingNetwork(dim, grid_size)
        self.norm2 = norm_layer(dim)
        self.mlp = PVT2FFN(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class Stem(nn.Module):
    """Conv 7x7 s2 + BN + ReLU, 2x (Conv 3x3 + BN + ReLU), proj Conv 3x3 s2, LayerNorm. NCHW in, NCHW out."""

    def __init__(self, in_chans: int, hidden_dim: int, out_chs: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_chans, hidden_dim, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU(inplace=True),
        )
        self.proj = nn.Conv2d(hidden_dim, out_chs, kernel_size=3, stride=2, padding=1)
        self.norm = LayerNorm2d(out_chs, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(self.conv(x)))


class DownSamples(nn.Module):
    """Conv 3x3 s2 + LayerNorm between stages. NCHW in, NCHW out."""

    def __init__(self, in_chs: int, out_chs: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chs, out_chs, kernel_size=3, stride=2, padding=1)
        self.norm = LayerNorm2d(out_chs, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x))


class SpectFormerStage(nn.Module):
    """``downsample`` (NCHW) -> ``blocks`` (NHWC) -> ``norm`` -> NCHW."""

    def __init__(
            self,
            dim_in: int,
            dim: int,
            depth: int,
            num_heads: int,
            mlp_ratio: float,
            block_type: str,
            grid_size: tuple[int, int],
            downsample: bool = True,
            drop_path: list[float] | float = 0.,
            norm_layer: Callable[..., nn.Module] | None = LayerNorm,
    ):
        super().__init__()
        self.downsample = DownSamples(dim_in, dim) if downsample else nn.Identity()
        self.blocks = nn.Sequential(*[Block(
            dim=dim,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            block_type=block_type,
            grid_size=grid_size,
            drop_path=drop_path[i] if isinstance(drop_path, (list, tuple)) else drop_path,
            norm_layer=norm_layer or LayerNorm,
        ) for i in range(depth)])
        self.norm = norm_layer(dim) if norm_layer is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.downsample(x).permute(0, 2, 3, 1)
        x = self.norm(self.blocks(x))
        return x.permute(0, 3, 1, 2).contiguous()


class ClassAttention(nn.Module):
    """Class attention (CaiT, https://arxiv.org/abs/2103.17239): the query comes from the class token only."""
    fused_attn: Final[bool]

    def __init__(self, dim: int, num_heads: int = 8):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.fused_attn = use_fused_attn()
        self.kv = nn.Linear(dim, dim * 2)
        self.q = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        k, v = self.kv(x).reshape(B, N, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q = self.q(x[:, :1]).reshape(B, 1, self.num_heads, self.head_dim).transpose(1, 2)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            x = attn.softmax(dim=-1) @ v
        x = x.transpose(1, 2).reshape(B, 1, C)
        return self.proj(x)


class ClassBlock(nn.Module):
    """Updates the class token (first token) with class attention and an MLP; the other tokens pass through."""

    def __init__(
            self,
            dim: int,
            num_heads: int,
            mlp_ratio: float,
            norm_layer: Callable[..., nn.Module] = LayerNorm,
    ):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.norm2 = norm_layer(dim)
        self.attn = ClassAttention(dim, num_heads)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: Tensor) -> Tensor:
        cls_embed = x[:, :1]
        cls_embed = cls_embed + self.attn(self.norm1(x))
        cls_embed = cls_embed + self.mlp(self.norm2(cls_embed))
        return torch.cat([cls_embed, x[:, 1:]], dim=1)


class SpectFormer(nn.Module):
    """Hierarchical SpectFormer: spectral gating in the first stages, multi-head self-attention in the last ones.

    `SpectFormer: Frequency and Attention is what you need in a Vision Transformer` -
        https://arxiv.org/abs/2304.06446
    """

    def __init__(
            self,
            img_size: int | tuple[int, int] = 224,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "cls",
            stem_hidden_dim: int = 32,
            embed_dims: tuple[int, ...] = (64, 128, 320, 448),
            num_heads: tuple[int, ...] = (2, 4, 10, 14),
            mlp_ratios: tuple[float, ...] = (8, 8, 4, 4),
            depths: tuple[int, ...] = (3, 4, 6, 3),
            num_spectral_stages: int = 2,
            drop_path_rate: float = 0.,
            norm_layer: Callable[..., nn.Module] = partial(LayerNorm, eps=1e-6),
            token_label: bool = True,
    ):
        """
        Args:
            img_size: Input size; sets the spectral filter grids (stride 4 and 8 of it with the default stem).
            in_chans: Number of input image channels.
            num_classes: Number of classes for the classification head(s).
            global_pool: 'cls' (class-attention post network, as published) or 'avg' (mean of the tokens).
            stem_hidden_dim: Width of the convolutional stem.
            embed_dims: Width of each stage.
            num_heads: Attention heads per stage (attention stages and the class block use them).
            mlp_ratios: PVT2FFN hidden ratio per stage; the last one also sizes the class block MLP.
            depths: Blocks per stage.
            num_spectral_stages: The first N stages mix tokens by spectral gating, the others by attention.
            drop_path_rate: Stochastic depth rate, linearly increasing over the blocks.
            norm_layer: Norm of the blocks, the stage outputs and the final tokens.
            token_label: Keep the auxiliary token-labelling head (``aux_head``).
        """
        super().__init__()
        num_stages = len(depths)
        assert global_pool in ("cls", "avg"), f"global_pool must be 'cls' or 'avg', got {global_pool!r}"
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.token_label = token_label
        self.feature_info = []

        self.stem = Stem(in_chans, stem_hidden_dim, embed_dims[0])
        grid = to_2tuple(img_size)
        reduction = 1
        for m in self.stem.modules():
            if isinstance(m, nn.Conv2d):
                grid = _conv_out(grid, m)
                reduction *= m.stride[0]

        dpr = calculate_drop_path_rates(drop_path_rate, list(depths), stagewise=True)
        stages = []
        prev_dim = embed_dims[0]
        for i in range(num_stages):
            stage = SpectFormerStage(
                dim_in=prev_dim,
                dim=embed_dims[i],
                depth=depths[i],
                num_heads=num_heads[i],
                mlp_ratio=mlp_ratios[i],
                block_type="spectral" if i < num_spectral_stages else "attn",
                grid_size=tuple((s - 1) // 2 + 1 for s in grid) if i > 0 else grid,  # after a 3x3 s2 p1 conv
                downsample=i > 0,
                drop_path=dpr[i],
                # the last stage's norm is applied after the class block (``self.norm``)
                norm_layer=norm_layer if i < num_stages - 1 else None,
            )
            if i > 0:
                grid = _conv_out(grid, stage.downsample.proj)
                reduction *= 2
            stages.append(stage)
            prev_dim = embed_dims[i]
            self.feature_info += [dict(num_chs=prev_dim, reduction=reduction, module=f"stages.{i}")]
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = embed_dims[-1]

        self.post_network = nn.ModuleList([
            ClassBlock(embed_dims[-1], num_heads[-1], mlp_ratios[-1], norm_layer=norm_layer)
        ])
        self.norm = norm_layer(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.aux_head = nn.Linear(embed_dims[-1], num_classes) if token_label and num_classes > 0 else None

        self.apply(self._init_weights)

    def _init_weights(self, m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^stem", blocks=r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.blocks\.(\d+)")

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            assert global_pool in ("cls", "avg"), f"global_pool must be 'cls' or 'avg', got {global_pool!r}"
            self.global_pool = global_pool
        dim = self.num_features
        self.head = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()
        self.aux_head = nn.Linear(dim, num_classes) if self.token_label and num_classes > 0 else None

    def forward_features(self, x: Tensor) -> Tensor:
        """Stem and stages: the last feature map (B, C, H, W), before the class block, norm and heads."""
        x = self.stem(x)
        return self.stages(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = x.flatten(2).transpose(1, 2)  # B, N, C
        if self.global_pool == "cls":
            x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)
            for blk in self.post_network:
                x = blk(x)
            x = self.norm(x)
            cls, tokens = x[:, 0], x[:, 1:]
        else:
            x = self.norm(x)
            cls, tokens = x.mean(dim=1), x
        if pre_logits:
            return cls
        out = self.head(cls)
        if self.aux_head is not None:
            out = out + 0.5 * self.aux_head(tokens).amax(dim=1)
        return out

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_features(x)
        return self.forward_head(x)


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: SpectFormer) -> dict[str, Tensor]:
    """Remap an official SpectFormer checkpoint onto this layout; resample spectral filters to the model's grid."""
    import re
    state_dict = state_dict.get("model", state_dict)
    num_stages = len(model.stages)
    model_sd = model.state_dict()
    out = {}
    for k, v in state_dict.items():
        k = k.replace("patch_embed1.", "stem.")
        k = re.sub(r"^patch_embed(\d+)\.", lambda m: f"stages.{int(m.group(1)) - 1}.downsample.", k)
        k = re.sub(r"^block(\d+)\.(\d+)\.", lambda m: f"stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}.", k)
        k = re.sub(
            r"^norm(\d+)\.",
            lambda m: "norm." if int(m.group(1)) == num_stages else f"stages.{int(m.group(1)) - 1}.norm.",
            k,
        )
        if k.endswith("complex_weight") and k in model_sd and v.shape != model_sd[k].shape:
            v = resample_spectral_weight(v, tuple(model_sd[k].shape[:2]))
        out[k] = v
    return out


def _create_spectformer(variant: str, pretrained: bool = False, **kwargs: Any) -> SpectFormer:
    out_indices = kwargs.pop("out_indices", tuple(range(len(kwargs.get("depths", (3, 4, 6, 3))))))
    return build_model_with_cfg(
        SpectFormer,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(flatten_sequential=True, out_indices=out_indices),
        **kwargs,
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None,
        "crop_pct": .9, "interpolation": "bicubic", "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.conv.0", "classifier": ("head", "aux_head"),
        "paper_ids": "arXiv:2304.06446", "paper_name": "SpectFormer: Frequency and Attention is what you need "
                                                       "in a Vision Transformer",
        "origin_url": "https://github.com/badripatro/SpectFormers",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "spectformer_s": _cfg(),
    "spectformer_b": _cfg(),
    "spectformer_l": _cfg(),
})


@register_model
def spectformer_s(pretrained: bool = False, **kwargs: Any) -> SpectFormer:
    """SpectFormer-H-S: 22.2 M params (both heads, 1000 classes), 3.9 GFLOPs at 224 (paper / official README)."""
    model_args = dict(
        stem_hidden_dim=32, embed_dims=(64, 128, 320, 448), num_heads=(2, 4, 10, 14),
        mlp_ratios=(8, 8, 4, 4), depths=(3, 4, 6, 3))
    return _create_spectformer("spectformer_s", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def spectformer_b(pretrained: bool = False, **kwargs: Any) -> SpectFormer:
    """SpectFormer-H-B: 33.1 M params (both heads, 1000 classes), 6.3 GFLOPs at 224 (paper / official README)."""
    model_args = dict(
        stem_hidden_dim=64, embed_dims=(64, 128, 320, 512), num_heads=(2, 4, 10, 16),
        mlp_ratios=(8, 8, 4, 4), depths=(3, 4, 12, 3))
    return _create_spectformer("spectformer_b", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def spectformer_l(pretrained: bool = False, **kwargs: Any) -> SpectFormer:
    """SpectFormer-H-L: 54.7 M params (both heads, 1000 classes), 12.7 GFLOPs at 224 (paper / official README)."""
    model_args = dict(
        stem_hidden_dim=64, embed_dims=(96, 192, 384, 512), num_heads=(3, 6, 12, 16),
        mlp_ratios=(8, 8, 4, 4), depths=(3, 6, 18, 3))
    return _create_spectformer("spectformer_l", pretrained=pretrained, **dict(model_args, **kwargs))
