""" A small MetaFormer for CIFAR-10 (seed 000 of this project)

The model of the blog post "CV炼丹心得总结" (https://blog.csdn.net/gwd777/article/details/135040573), built
from the MetaFormer recipe:
    * `MetaFormer Is Actually What You Need for Vision` - https://arxiv.org/abs/2111.11418 (PoolFormer)
    * `MetaFormer Baselines for Vision` - https://arxiv.org/abs/2210.13452

What the seed states, and is kept here:
    * block: x + DropPath(mixer(GroupNorm(1, C)(x))), then x + MLP(GroupNorm(1, C)(x)); the mixer is pooling
      (``pool(x) - x``) or multi-head self-attention (``switch_flag``), ``num_heads=8``; the mixer is named ``attn``
      as in the seed, whichever it is.
    * tip 2, a norm before the classifier: head = AdaptiveAvgPool -> GroupNorm(1, C, eps=1e-6) -> Flatten -> Linear,
      10 classes (``head_norm=False`` removes the norm).
    * tip 3, the embedding: Conv k4 s2 p1 without bias (16x16 maps at 32x32 input) or Conv k7 s4 p2 (8x8 maps,
      "runs faster"): ``stem_stride=2`` (default, the seed's model) or ``stem_stride=4``.
    * 64 channels after the embedding, and 64 channels at 16x16 before the head: the seed's network does not
      downsample after the embedding (isotropic).

Where the seed is silent, small defaults chosen here:
    * 4 stages of 2 blocks, all 64 wide, no downsampling (``dims``, ``depths``, ``downsample_strides`` change it;
      a stage that changes width or stride starts with a GroupNorm + Conv 3x3 ``downsample``).
    * MLP: 1x1 convs, hidden ratio 4, GELU (PoolFormer); the DropPath is also applied to the MLP branch (the seed
      applies it to the mixer branch only); pooling 3x3 (PoolFormer); attention without qkv/proj bias (timm's
      MetaFormer attention).
    * ``drop_path_rate`` and ``proj_drop_rate`` default to 0 (the seed used 0.1 for both).
"""
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn as nn
from timm.layers import (
    DropPath,
    GroupNorm1,
    Mlp,
    NormMlpClassifierHead,
    calculate_drop_path_rates,
    to_ntuple,
    trunc_normal_,
)
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.metaformer import Attention, Downsampling, Pooling
from torch import Tensor

__all__ = ["CifarMetaFormer"]

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

# the seed's two embeddings, by stride: (kernel, padding, bias)
_STEMS = {2: (4, 1, False), 4: (7, 2, True)}
_MIXERS = ("pool", "attn")


class Attention2d(Attention):
    """timm's MetaFormer multi-head self-attention, applied to an NCHW map (every position is a token)."""

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        x = super().forward(x.flatten(2).transpose(1, 2))
        return x.transpose(1, 2).reshape(B, C, H, W)


class Stem(nn.Module):
    """Patch embedding: one strided convolution (the seed's ``embedding``)."""

    def __init__(self, in_chans: int, out_chs: int, stride: int = 2):
        super().__init__()
        if stride not in _STEMS:
            raise ValueError(f"stem_stride must be one of {sorted(_STEMS)}, got {stride!r}")
        kernel_size, padding, bias = _STEMS[stride]
        self.conv = nn.Conv2d(in_chans, out_chs, kernel_size=kernel_size, stride=stride, padding=padding, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class MetaFormerBlock(nn.Module):
    """x + DropPath(mixer(GroupNorm1(x))), x + DropPath(MLP(GroupNorm1(x))); NCHW."""

    def __init__(
            self,
            dim: int,
            mixer: str = "pool",
            num_heads: int = 8,
            pool_size: int = 3,
            mlp_ratio: float = 4.,
            proj_drop: float = 0.,
            drop_path: float = 0.,
    ):
        super().__init__()
        if mixer not in _MIXERS:
            raise ValueError(f"mixer must be one of {_MIXERS}, got {mixer!r}")
        self.norm1 = GroupNorm1(dim)
        if mixer == "attn":
            self.attn = Attention2d(dim, head_dim=dim // num_heads, num_heads=num_heads, proj_drop=proj_drop)
        else:
            self.attn = Pooling(pool_size)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = GroupNorm1(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=proj_drop, use_conv=True)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class CifarMetaFormerStage(nn.Module):
    """Optional ``downsample`` (only when width or resolution changes), then ``blocks``."""

    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            depth: int = 2,
            stride: int = 1,
            mixer: str = "pool",
            dp_rates: Sequence[float] = (0., 0.),
            **block_kwargs: Any,
    ):
        super().__init__()
        if in_chs == out_chs and stride == 1:
            self.downsample = nn.Identity()
        else:
            self.downsample = Downsampling(
                in_chs, out_chs, kernel_size=3, stride=stride, padding=1, norm_layer=GroupNorm1)
        self.blocks = nn.Sequential(*[
            MetaFormerBlock(out_chs, mixer=mixer, drop_path=dp_rates[i], **block_kwargs) for i in range(depth)
        ])

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.downsample(x))


class CifarMetaFormer(nn.Module):
    """A small MetaFormer for 32x32 images with pooling or attention token mixers, switchable per stage.

    Seed 000 of the project (a CSDN post, see the module docstring), on the MetaFormer recipe of
    `MetaFormer Is Actually What You Need for Vision` - https://arxiv.org/abs/2111.11418
    """

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 10,
            global_pool: str = "avg",
            dims: int | tuple[int, ...] = (64, 64, 64, 64),
            depths: tuple[int, ...] = (2, 2, 2, 2),
            mixers: str | tuple[str, ...] = "pool",
            downsample_strides: int | tuple[int, ...] = 1,
            stem_stride: int = 2,
            num_heads: int = 8,
            pool_size: int = 3,
            mlp_ratio: float = 4.,
            head_norm: bool = True,
            drop_rate: float = 0.,
            proj_drop_rate: float = 0.,
            drop_path_rate: float = 0.,
            img_size: int | tuple[int, int] | None = None,
    ):
        """
        Args:
            in_chans: Number of input image channels.
            num_classes: Number of classes (CIFAR-10: 10).
            global_pool: Head pooling type.
            dims: Width of each stage (an int for all).
            depths: Blocks per stage.
            mixers: 'pool' or 'attn', per stage (a str for all), e.g. ('pool', 'pool', 'attn', 'attn').
            downsample_strides: Stride of each stage's downsample (1: none, the seed's isotropic network).
            stem_stride: 2 (Conv k4 s2 p1: 16x16 maps at 32x32) or 4 (Conv k7 s4 p2: 8x8 maps).
            num_heads: Attention heads of the 'attn' mixer.
            pool_size: Window of the 'pool' mixer.
            mlp_ratio: Hidden width of the MLP relative to the block width.
            head_norm: GroupNorm(1, C) between pooling and classifier (seed tip 2).
            drop_rate: Dropout before the classifier.
            proj_drop_rate: Dropout in the MLP and after the attention projection.
            drop_path_rate: Stochastic depth rate, linearly increasing over the blocks.
            img_size: Accepted for API compatibility; the network works at any input size.
        """
        super().__init__()
        num_stages = len(depths)
        dims = to_ntuple(num_stages)(dims)
        mixers = to_ntuple(num_stages)(mixers) if not isinstance(mixers, str) else (mixers,) * num_stages
        downsample_strides = to_ntuple(num_stages)(downsample_strides)
        if len(mixers) != num_stages or any(m not in _MIXERS for m in mixers):
            raise ValueError(f"mixers must be {num_stages} of {_MIXERS}, got {mixers!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.mixers = tuple(mixers)
        self.feature_info = []

        self.stem = Stem(in_chans, dims[0], stride=stem_stride)
        dp_rates = calculate_drop_path_rates(drop_path_rate, list(depths), stagewise=True)
        stages = []
        prev_dim, reduction = dims[0], stem_stride
        for i in range(num_stages):
            stages.append(CifarMetaFormerStage(
                prev_dim,
                dims[i],
                depth=depths[i],
                stride=downsample_strides[i],
                mixer=mixers[i],
                dp_rates=dp_rates[i],
                num_heads=num_heads,
                pool_size=pool_size,
                mlp_ratio=mlp_ratio,
                proj_drop=proj_drop_rate,
            ))
            prev_dim = dims[i]
            reduction *= downsample_strides[i]
            self.feature_info += [dict(num_chs=prev_dim, reduction=reduction, module=f"stages.{i}")]
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = prev_dim

        self.head = NormMlpClassifierHead(
            self.num_features,
            num_classes,
            pool_type=global_pool,
            drop_rate=drop_rate,
            norm_layer=partial(GroupNorm1, eps=1e-6) if head_norm else nn.Identity,
        )
        self.apply(self._init_weights)

    def _init_weights(self, m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^stem", blocks=r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.blocks\.(\d+)")

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, pool_type=global_pool)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _create_cifar_metaformer(variant: str, pretrained: bool = False, **kwargs: Any) -> CifarMetaFormer:
    out_indices = kwargs.pop("out_indices", tuple(range(len(kwargs.get("depths", (2, 2, 2, 2))))))
    return build_model_with_cfg(
        CifarMetaFormer,
        variant,
        pretrained,
        feature_cfg=dict(flatten_sequential=True, out_indices=out_indices),
        **kwargs,
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "num_classes": 10, "input_size": (3, 32, 32), "pool_size": None,
        "crop_pct": 1.0, "interpolation": "bilinear", "fixed_input_size": False,
        "mean": CIFAR10_MEAN, "std": CIFAR10_STD,
        "first_conv": "stem.conv", "classifier": "head.fc",
        "origin_url": "https://blog.csdn.net/gwd777/article/details/135040573",
        "paper_ids": "arXiv:2111.11418",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "cifar_metaformer_pool": _cfg(),
    "cifar_metaformer_attn": _cfg(),
    "cifar_metaformer_hybrid": _cfg(),
})


@register_model
def cifar_metaformer_pool(pretrained: bool = False, **kwargs: Any) -> CifarMetaFormer:
    """Pooling mixers in every stage (the seed's default, ``switch_flag=False``)."""
    model_args = dict(mixers="pool")
    return _create_cifar_metaformer("cifar_metaformer_pool", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def cifar_metaformer_attn(pretrained: bool = False, **kwargs: Any) -> CifarMetaFormer:
    """Multi-head self-attention mixers in every stage (the seed's ``switch_flag=True``)."""
    model_args = dict(mixers="attn")
    return _create_cifar_metaformer("cifar_metaformer_attn", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def cifar_metaformer_hybrid(pretrained: bool = False, **kwargs: Any) -> CifarMetaFormer:
    """Pooling in the first two stages, attention in the last two (MetaFormer's CAFormer-like split)."""
    model_args = dict(mixers=("pool", "pool", "attn", "attn"))
    return _create_cifar_metaformer("cifar_metaformer_hybrid", pretrained=pretrained, **dict(model_args, **kwargs))
