"""Top-k predictions of a model on a few images, and how far they moved from the unmodified base model.

Preprocessing is timm's eval transform for the model's data config (`resolve_model_data_config`) at the spec's
image size, so pretrained weights see what they were trained on. Class names come from `timm.data.ImageNetInfo`.

See `predict` for an example.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SpecError
from .images import ImageSource, image_name, load_image
from .report import Agreement, ClassScore, Prediction, RankChange

__all__ = ["Prediction", "predict", "data_config", "eval_transform", "class_labels"]


def data_config(model: nn.Module, img_size: int | None = None) -> dict[str, Any]:
    """timm's data config for `model` (mean, std, interpolation, crop_pct), at `img_size` when given."""
    from timm.data import resolve_model_data_config
    return resolve_model_data_config(model, args={"img_size": int(img_size)} if img_size else None)


def eval_transform(model: nn.Module, img_size: int | None = None) -> Callable:
    """timm's eval transform (resize, center crop, normalize) for `model`: PIL image -> CHW float tensor."""
    from timm.data import create_transform
    return create_transform(**data_config(model, img_size), is_training=False)


def class_labels(model: nn.Module, num_classes: int) -> tuple[list[str], str | None]:
    """Class names for a `num_classes`-way output, and a warning when they are not known."""
    from timm.data import ImageNetInfo, infer_imagenet_subset
    subset = infer_imagenet_subset(model)
    if subset:
        info = ImageNetInfo(subset)
        if info.num_classes() == num_classes:
            return [info.index_to_description(i) for i in range(num_classes)], None
    return [f"class {i}" for i in range(num_classes)], (
        f'predictions: {num_classes} classes are not ImageNet-1k; labels are shown as "class <i>"')


def _forward(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Logits (N, C) in float32 on the CPU, the model in eval mode for the call."""
    param = next(model.parameters(), None)
    batch = batch.to(param.device, param.dtype) if param is not None else batch
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model(batch)
    finally:
        model.train(was_training)
    out = out[0] if isinstance(out, (tuple, list)) else out
    if out.ndim != 2 or out.shape[1] < 1:
        raise SpecError(f"predictions need a classifier head; the model outputs shape {tuple(out.shape)} "
                        f"(num_classes is 0?)")
    return out.float().cpu()


def _top(probs: torch.Tensor, labels: Sequence[str], k: int) -> list[ClassScore]:
    values, indices = probs.topk(min(k, probs.numel()))
    return [ClassScore(index=int(i), label=labels[int(i)], prob=float(p)) for p, i in zip(values, indices)]


def _agreement(base_logits: torch.Tensor, logits: torch.Tensor, labels: Sequence[str], k: int) -> Agreement:
    """Top-1 agreement, KL(base || modified) in nats, the largest logit difference, and where the base's top-k
    classes rank now (1 = first).

    KL is computed from both sides' log-softmax (one kernel, one layout), so equal logits give exactly 0 on any
    CPU; a formula that logs one side's clamped probabilities differs from the other side's internal log in the
    last bits, and more on CPUs whose vectorised log differs (AMD vs Intel).
    """
    base_log, mod_log = F.log_softmax(base_logits, dim=-1), F.log_softmax(logits, dim=-1)
    base, mod = base_log.exp(), mod_log.exp()
    kl = F.kl_div(mod_log, base_log, reduction="sum", log_target=True)  # sum base * (log base - log mod)
    rank = torch.empty_like(mod, dtype=torch.long)
    rank[mod.argsort(descending=True)] = torch.arange(1, mod.numel() + 1)
    base_order = base.argsort(descending=True)[:k]
    return Agreement(
        top1_agree=bool(base.argmax() == mod.argmax()),
        kl_divergence=max(float(kl), 0.0),
        max_abs_logit_diff=float((base_logits - logits).abs().max()),
        rank_changes=[RankChange(index=int(i), label=labels[int(i)], base_rank=r + 1, rank=int(rank[i]))
                      for r, i in enumerate(base_order)],
    )


def predict(
        model: nn.Module,
        images: Sequence[ImageSource],
        *,
        base_model: nn.Module | None = None,
        topk: int = 5,
        img_size: int | None = None,
        labels: Sequence[str] | None = None,
        names: Sequence[str] | None = None,
) -> tuple[list[Prediction], list[str]]:
    """Top-k classes of `model` for each image (one batched forward), compared with `base_model` when given.

    Args:
        model: a classifier (eval mode is set for the call).
        images: anything `load_image` accepts (paths, bytes, PIL images, arrays).
        base_model: the unmodified backbone to compare with (agreement, KL, rank changes).
        topk: classes per image.
        img_size: the input size for timm's eval transform (default: the model's).
        labels: class names (default: ImageNet names for ImageNet-sized heads, else "class <i>" with a warning).
        names: display names of the images (default: their file names).

    Returns:
        (predictions, warnings): one Prediction per image, and the warnings for the Report.

    >>> from skimage import data
    >>> from playground import build
    >>> lite0 = build({"backbone": "efficientnet_lite0", "pretrained": True}).model
    >>> predictions, warnings = predict(lite0, [data.chelsea()], topk=1, names=["chelsea"])
    >>> predictions[0].top[0].label, warnings
    ('tabby, tabby cat', [])
    """
    if not images:
        return [], []
    if topk < 1:
        raise SpecError(f"topk: {topk} is not allowed; use a positive number of classes")
    names = list(names) if names is not None else [image_name(im) for im in images]
    pil = [load_image(im, name) for im, name in zip(images, names)]
    transform = eval_transform(model, img_size)  # the base model shares the backbone's data config
    batch = torch.stack([transform(im) for im in pil])
    logits = _forward(model, batch)
    probs = F.softmax(logits, dim=-1)
    warnings: list[str] = []
    mod_labels, warning = _labels(model, probs.shape[1], labels)
    warnings += [warning] if warning else []

    base_logits = base_probs = base_labels = None
    if base_model is not None:
        base_logits = _forward(base_model, batch)
        base_probs = F.softmax(base_logits, dim=-1)
        base_labels, warning = _labels(base_model, base_probs.shape[1], labels)
        if base_probs.shape[1] != probs.shape[1]:
            warnings.append(f"predictions: the base model has {base_probs.shape[1]} classes and the modified one "
                            f"{probs.shape[1]}; no agreement is computed")
        elif warning and warning not in warnings:
            warnings.append(warning)

    out = []
    for n, name in enumerate(names):
        p = Prediction(image=name, top=_top(probs[n], mod_labels, topk))
        if base_probs is not None:
            p.base_top = _top(base_probs[n], base_labels, topk)
            if base_probs.shape[1] == probs.shape[1]:
                p.agreement = _agreement(base_logits[n], logits[n], mod_labels, topk)
        out.append(p)
    return out, warnings


def _labels(model: nn.Module, num_classes: int, labels: Sequence[str] | None) -> tuple[list[str], str | None]:
    if labels is None:
        return class_labels(model, num_classes)
    if len(labels) != num_classes:
        raise SpecError(f"labels: {len(labels)} names given for a {num_classes}-class model; give one per class")
    return [str(label) for label in labels], None
