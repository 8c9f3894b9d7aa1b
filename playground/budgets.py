"""Budgets: how big a request the web app accepts, checked before anything real is allocated.

A shared server must refuse a giant model in a second, not discover it when the machine runs out of memory. The
parameter count and the MACs of a request come from the backbone built on the meta device (shapes, no storage) and
torch's `FlopCounterMode` over one meta forward pass: about 0.3 s for `vit_huge_patch14_224` (632 M parameters),
1 s for `eva02_enormous_patch14_clip_224` (4.4 B), and no memory beyond the imports.

The web app and its API read their limits from the environment (`Budgets.from_env`, defaults below, sized for a
16 GB CPU Space); the CLI and the Python API are unlimited unless asked (`Budgets()`; `--max-params` ...).

    >>> Budgets(max_img_size=512).check_request(load_spec({"backbone": "resnet18", "img_size": 640}))
    Traceback (most recent call last):
    ...
    playground.errors.SpecError: img_size: 640 px is over the limit here, 512 px (--max-img-size); use a ...
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import SpecError, first_line
from .spec import Spec, load_spec

__all__ = ["Budgets", "Estimate", "estimate", "published_estimate", "DEFAULTS", "ENV", "PUBLISHED_MARGIN"]

# field -> environment variable of the web app (documented in the README, "Limits")
ENV = {"max_params_m": "PLAYGROUND_MAX_PARAMS_M", "max_gmacs": "PLAYGROUND_MAX_GMACS",
       "max_img_size": "PLAYGROUND_MAX_IMG_SIZE", "max_seconds": "PLAYGROUND_MAX_SECONDS",
       "max_memory_gb": "PLAYGROUND_WORKER_MEMORY_GB"}
# The web app's defaults, for a 16 GB CPU Space with two analysis workers and one latency worker: ViT-L and
# ConvNeXt-XL pass, ViT-H/14 at 224 px (632 M, 167 GMACs) passes, ViT-g/14 (1.1 B) and EVA02-E (4.4 B) do not.
DEFAULTS = {"max_params_m": 700.0, "max_gmacs": 200.0, "max_img_size": 768, "max_seconds": 120.0,
            "max_memory_gb": 6.0}
_ADVICE = "run it locally with the CLI, which has no limit"


# Refusing from timm's published table (no model built) needs a figure this far over the limit: the table rounds to
# 0.01 M and 0.01 G; a changed head is under 1% of a model near the limits; MACs scaled by the image area from the
# nearest benchmarked size undercount attention (quadratic in tokens) and overcount size-independent parts (the
# head) by a few percent. Anything closer to the limit is counted on the meta device.
PUBLISHED_MARGIN = 1.1


@dataclass(frozen=True)
class Estimate:
    """What a request will cost: parameters, and MACs per image (None if not countable); `published` when taken from
    timm's table rather than counted on the meta device."""
    params: int
    macs: int | None
    published: bool = False


@dataclass(frozen=True)
class Budgets:
    """Limits of one request; None means unlimited. `max_gmacs` is per forward pass (MACs per image x batch)."""
    max_params_m: float | None = None
    max_gmacs: float | None = None
    max_img_size: int | None = None
    max_seconds: float | None = None
    max_memory_gb: float | None = None
    from_environment: bool = False  # the web app's (messages name the variables), else the caller's options

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Budgets:
        """The web app's limits: DEFAULTS, each overridden by its environment variable ("none" lifts it)."""
        values = {}
        for name, var in ENV.items():
            text = env.get(var, "").strip()
            if not text:
                values[name] = DEFAULTS[name]
            elif text.lower() in ("none", "off", "0"):
                values[name] = None
            else:
                try:
                    values[name] = float(text) if name != "max_img_size" else int(text)
                except ValueError:
                    raise SpecError(f"{var}: {text!r} is not a number (or 'none' for no limit)") from None
                if values[name] <= 0:
                    raise SpecError(f"{var}: {text!r} must be positive (or 'none' for no limit)")
        return cls(**values, from_environment=True)

    @property
    def limited(self) -> bool:
        return any(getattr(self, name) is not None for name in ENV)

    def _name(self, field: str) -> str:
        """How the user sets this limit: the environment variable, or the option."""
        return ENV[field] if self.from_environment else "--" + field.replace("_", "-")

    def _advice(self, change: str) -> str:
        return f"{change}, or {_ADVICE}" if self.from_environment else change

    @property
    def memory_bytes(self) -> int | None:
        return None if self.max_memory_gb is None else int(self.max_memory_gb * 2 ** 30)

    def check_request(self, spec: Spec) -> None:
        """What needs no model: the image size."""
        size = spec.img_size
        if self.max_img_size is not None and size is not None and size > self.max_img_size:
            raise SpecError(f"img_size: {size} px is over the limit here, {self.max_img_size} px "
                            f"({self._name('max_img_size')}); {self._advice('use a smaller img_size')}")

    def check(self, spec: Spec | dict | str, batch: int = 1,
              estimator: Callable[[Spec, float | None], Estimate] | None = None) -> Estimate | None:
        """Refuse a request over a limit with one line, before building it; the estimate when one was needed.
        `estimator(spec, max_params)` defaults to `estimate` (in this process)."""
        spec = load_spec(spec)
        self.check_request(spec)
        if self.max_params_m is None and self.max_gmacs is None:
            return None
        quick = published_estimate(spec)
        if quick is not None:  # a giant timm has published: refused without asking a worker
            self._refuse_over(spec, quick, batch, PUBLISHED_MARGIN)
        est = (estimator or estimate)(spec, None if self.max_params_m is None else self.max_params_m * 1e6)
        self._refuse_over(spec, est, batch)
        return est

    def _refuse_over(self, spec: Spec, est: Estimate, batch: int, margin: float = 1.0) -> None:
        """Raise the one-line refusal when `est` is over a limit by more than `margin` times it."""
        about = "about " if est.published else ""
        if self.max_params_m is not None and est.params > margin * self.max_params_m * 1e6:
            raise SpecError(f"backbone: {spec.backbone} has {about}{est.params / 1e6:,.1f} M parameters, over the "
                            f"limit here of {self.max_params_m:,.0f} M ({self._name('max_params_m')}); "
                            f"{self._advice('pick a smaller backbone')}")
        if self.max_gmacs is not None and est.macs is not None and est.macs * batch > margin * self.max_gmacs * 1e9:
            per_pass = f"{about}{est.macs / 1e9:,.1f} GMACs per image" + (f" x batch {batch}" if batch > 1 else "")
            raise SpecError(f"{spec.backbone} at {_size(spec)} needs {per_pass}, over the limit here of "
                            f"{self.max_gmacs:,.0f} GMACs per forward pass ({self._name('max_gmacs')}); "
                            f"{self._advice('use a smaller img_size' + (' or batch' if batch > 1 else ''))}")


def published_estimate(spec: Spec) -> Estimate | None:
    """The spec's backbone as timm's published table has it (`published`), None when the table lacks it: parameters
    as published, MACs scaled by the image area from the nearest benchmarked size (none after a stem change, which
    changes the grid). Approximate: only a figure well over a limit is refused from it (`PUBLISHED_MARGIN`)."""
    from .published import published_rows
    rows = published_rows().get(spec.backbone.partition(".")[0])
    if not rows:
        return None
    size = spec.img_size or rows[0].img_size
    row = min(rows, key=lambda r: abs(r.img_size - size))
    macs = round(row.gmacs * 1e9 * (size / row.img_size) ** 2) if spec.stem.is_default() else None
    return Estimate(round(row.params_m * 1e6), macs, published=True)


def _size(spec: Spec) -> str:
    return f"{spec.img_size} px" if spec.img_size else "its default size"


def estimate(spec: Spec | dict | str, max_params: float | None = None) -> Estimate:
    """Parameters and MACs per image of the spec's backbone at its image size, from a meta-device model (MACs left
    out when the parameters alone are over `max_params`).

    Stitched modules are left out (their parameters are capped by the builder, their MACs are small next to a
    giant's); a stem change scales the MACs by the change of the first stage's grid area.
    """
    import timm
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .backbones import check_backbone, create, create_kwargs, default_img_size
    spec = load_spec(spec)
    check_backbone(spec.backbone)
    size = spec.img_size or default_img_size(spec.backbone)
    try:
        with torch.device("meta"):
            model = create(spec.backbone, timm.create_model, size, **create_kwargs(spec)).eval()
    except SpecError:
        raise
    except Exception as e:
        raise SpecError(f"backbone: {spec.backbone} cannot be created: {first_line(e)}") from None
    params = sum(p.numel() for p in model.parameters())
    if max_params is not None and params > max_params:
        return Estimate(params, None)  # over already: no need to count the MACs
    try:
        x = torch.empty(1, getattr(model, "in_chans", 3), size, size, device="meta")
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        macs = counter.get_total_flops() // 2  # torch counts a multiply-add as 2 FLOPs
    except Exception:  # data-dependent control flow: no count on the meta device; the other limits still hold
        return Estimate(params, None)
    if not spec.stem.is_default():
        macs = round(macs * _grid_scale(model, size, spec))
    return Estimate(params, macs)


def _grid_scale(model, size: int, spec: Spec) -> float:
    """How much a stem change multiplies the MACs: the ratio of the first stage's grid areas (1 if unknown)."""
    from .points import probe
    from .stem import plan_stem
    try:
        plan = plan_stem(probe(model, size, private=True), spec.stem)  # private: probed on the meta device
    except Exception:  # an invalid stem change is the builder's to explain
        return 1.0
    return (plan.grid_after / plan.grid_before) ** 2 if plan.grid_before else 1.0
