"""The builder: Spec -> Built (the modified model, the unmodified base, resolved points, warnings).

Order of work: create the backbone with its weights (hub, bundled or a local checkpoint, through timm), change the
embedding stride, put a norm before the classifier if asked, probe the result to resolve the insertion points,
stitch the modules in (deepest module paths first, so outer wrappers never hide inner paths), and run one forward
pass to prove the model works and its output shape is unchanged. Every failure is a one-line SpecError.

`build(spec, lean=True)` makes the backbone without random initialisation (`lean`): for counting only.
"""
from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import backbones
from .cache import LRU
from .choices import IMG_SIZE, REMOVE_HEAD_NORM
from .compute import COMPUTE, shares_cores
from .errors import SpecError, StemRefusal, WhatFits, first_line
from .lean import create as lean_create
from .modules import Gate, LayoutAdapter, Parallel, Serial, catalog, get_entry, se_hidden_width
from .points import Forward, ForwardError, Point, Probe, probe
from .report import StemChange, from_plain
from .spec import Leaf, ModuleSpec, Spec, load_spec, module_count, module_label
from .stem import StemPlan, apply_stem, has_fixup, plan_stem
from .stitch import attach

__all__ = ["build", "points", "Built", "Insertion", "base_model", "describe_stem"]

BASE_CACHE_SIZE = 4
MAX_STITCHED_MODULES = 256  # catalog modules stitched in all: a glob's matches times each module's size
MAX_STITCHED_PARAMS = 100_000_000  # parameters of all stitched modules together (four ResNet-50s)


@dataclass
class Insertion:
    """One stitched module: which spec entry, at which point, what it is and what it costs."""
    index: int  # position in spec.insert
    at: str  # as written in the spec
    point: Point
    label: str  # e.g. 'serial[se, eca]'
    module: nn.Module = field(repr=False)
    path: str = ""  # path of the inserted module in the built model
    params: int = 0

    def to_dict(self) -> dict:
        return {"index": self.index, "at": self.at, "point": self.point.name, "target": self.point.path,
                "path": self.path, "module": self.label, "params": self.params, "layout": self.point.layout,
                "channels": self.point.channels}


@dataclass
class Built:
    """What `build` made. `base` is the unmodified backbone, shared with a bounded cache: treat it as read-only.
    A spec that changes nothing gets one fresh model, which is both `model` and `base`. `lean`: made by
    `build(spec, lean=True)`, for counting only (its weights are zeros)."""
    spec: Spec
    model: nn.Module
    base: nn.Module
    img_size: int
    insertions: list[Insertion]
    stem: StemChange | None = None  # the embedding conv before and after, when the spec changed it
    warnings: list[str] = field(default_factory=list)
    weights: Any = None  # weights.WeightsInfo or None
    probe: Probe | None = field(default=None, repr=False)  # of the model before stitching; lazy if unchanged
    # held while anything hooks or runs the model: a Built from the analysis cache is shared between requests
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    lean: bool = False

    def probed(self, forward: Forward | None = None) -> Probe:
        """The probe, run now if it was not needed to build (a spec that changes nothing); `forward` as in
        `points.probe`, to share another tool's forward pass."""
        with self.lock:
            if self.probe is None:
                with COMPUTE.shared():
                    self.probe = _probe(self.model, self.img_size, "backbone", forward)
            return self.probe

    @property
    def points(self) -> list[Point]:
        """Named points of the backbone after the stem change, before stitching."""
        return self.probed().named_points()

    @property
    def delta_params(self) -> int:
        return _n_params(self.model) - _n_params(self.base)


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---- base models: a small LRU, keyed by what determines them

_bases: LRU[tuple[nn.Module, Any]] = LRU(BASE_CACHE_SIZE)
_base_probes: LRU[Probe] = LRU(BASE_CACHE_SIZE)


def _weights_source(spec: Spec):
    if not spec.pretrained and not spec.checkpoint:
        return None
    from .weights import resolve_source
    return resolve_source(spec.backbone, spec.pretrained, spec.checkpoint)


def _create(backbone: str, source, img_size: int, reparameterize: bool = False, exact_size: bool = False,
            lean: bool = False, **kwargs) -> tuple[nn.Module | None, Any]:
    """A backbone with its weights, in timm's fused deploy form if asked (`reparameterize_model`: RepVGG,
    MobileOne, FastViT ... as they ship and as timm's tables count them). Errors from timm (no network, bad
    checkpoint) are SpecErrors already. `exact_size`: (None, None) when the constructor takes no image size.
    `lean`: without random initialisation when there are no weights to load (see `lean`)."""
    model, info = _create_train_form(backbone, source, img_size, exact_size, lean, **kwargs)
    if model is None:
        return None, None
    if reparameterize:
        from timm.utils.model import reparameterize_model
        model = reparameterize_model(model.eval(), inplace=True)
    return model, info


def _create_train_form(backbone: str, source, img_size: int, exact_size: bool, lean: bool,
                       **kwargs) -> tuple[nn.Module, Any]:
    if source is None:
        import timm

        def make(name, **kw):
            return lean_create(timm.create_model, name, **kw) if lean else timm.create_model(name, **kw)
        return backbones.create(backbone, make, img_size, exact_size, **kwargs), None
    from .weights import create_with_weights
    holder: dict = {}

    def make(name, **kw):
        holder["model"], holder["info"] = create_with_weights(name, source, **kw)
        return holder["model"]
    if backbones.create(backbone, make, img_size, exact_size, **kwargs) is None:
        return None, None
    return holder["model"], holder["info"]


def base_model(backbone: str, img_size: int, source=None, reparameterize: bool = False,
               lean: bool = False) -> tuple[nn.Module, Any]:
    """The unmodified backbone (eval mode), from the cache when it was made before. `lean`: for counting only
    (ignored when weights are loaded)."""
    lean = lean and source is None

    def make() -> tuple[nn.Module, Any]:
        model, info = _create(backbone, source, img_size, reparameterize, lean=lean)
        return model.eval(), info
    return _bases.get_or_make((backbone, img_size, repr(source), reparameterize, lean), make)


@shares_cores
def points(backbone: str, img_size: int | None = None) -> list[Point]:
    """The named insertion points of an unmodified backbone, with their layout, channels and shape.

    Args:
        backbone: a timm model name (or one of the project's models).
        img_size: the input size (default: the backbone's).

    Returns:
        Points in forward order: `input`, `stem`, `stage<i>.block<j>`, `stage<i>`, ..., `final`.

    >>> [(p.name, p.shape) for p in points("resnet18", 64)][:3]
    [('input', [1, 3, 64, 64]), ('stem', [1, 64, 16, 16]), ('stage1.block1', [1, 64, 16, 16])]
    """
    backbones.check_backbone(backbone)
    img_size = img_size or backbones.default_img_size(backbone)
    model, _ = base_model(backbone, img_size, lean=True)  # shapes only: no need to initialise it
    # probed on a private (meta) copy: the cached base may be running a prediction in another thread
    found = _base_probes.get_or_make((backbone, img_size), lambda: _probe(model, img_size, backbone, private=True))
    return found.named_points()


def _probe(model: nn.Module, img_size: int, what: str, forward: Forward | None = None,
           private: bool = False) -> Probe:
    try:
        return probe(model, img_size, forward, private)
    except SpecError:
        raise
    except ForwardError as e:  # a forward pass that fails is a property of the spec, not a crash
        where = f" in {e.path} ({e.module_type})" if e.path else ""
        raise SpecError(f"{what}: the forward pass fails at img_size {img_size}{where}: {e.text}") from None
    except Exception as e:
        raise SpecError(f"{what}: the forward pass fails at img_size {img_size}: "
                        f"{first_line(e)}") from None


# ---- stitching

def _make(m: ModuleSpec, point: Point, where: str, warnings: list[str]) -> nn.Module:
    """The nn.Module for a module spec at a point (NCHW; the layout adapter goes around it)."""
    C = point.channels
    if isinstance(m, Leaf):
        entry = get_entry(m.name, where)
        if entry.needs_grid and point.grid is None:
            raise SpecError(f"{where}: {m.name} needs a 2-D feature map, but {point.name} carries "
                            f"{point.layout} tokens whose grid is unknown; use a channel module "
                            f"(se, eca, ...) or another point")
        if "rd_ratio" in entry.arg_types and "rd_channels" not in m.args:
            ideal, actual = se_hidden_width(C, m.args)
            if ideal < m.args.get("rd_divisor", 8) and actual != round(ideal):
                warnings.append(f"{where}: {m.name} at {point.name} has {C} channels, so its hidden width "
                                f"{C} x {m.args.get('rd_ratio', 1 / 16):g} = {ideal:.2g} was clamped to {actual}"
                                + (" (wider than its input)" if actual >= C else ""))
        try:
            return entry.create(C, dict(m.args))
        except Exception as e:
            raise SpecError(f"{where}: {module_label(m)} cannot be built for {C} channels: "
                            f"{first_line(e)}") from None
    kind = "serial" if m.kind == "serial" else "parallel"
    items = [_make(x, point, f"{where}.{kind}[{i}]", warnings) for i, x in enumerate(m.items)]
    return Serial(*items) if m.kind == "serial" else Parallel(items, m.merge, C)


def _meta_params(m: ModuleSpec, point: Point, where: str) -> int:
    """Parameters `_make` would allocate at `point`, counted on the meta device: nothing is allocated."""
    with torch.device("meta"):
        return _n_params(_make(m, point, where, []))


def _check_budget(spec: Spec, found: Probe) -> None:
    """Refuse, before anything is allocated, stitching that would make too many modules or parameters: a glob
    such as `*` times a composite multiplies fast, and one `rd_channels` can ask for gigabytes."""
    n_modules, n_params, seen = 0, 0, {}
    for i, ins in enumerate(spec.insert):
        where = f"insert[{i}]"
        pts = found.resolve(ins.at, f"{where}.at")
        n_modules += module_count(ins.module) * len(pts)
        if n_modules > MAX_STITCHED_MODULES:
            raise SpecError(f"{where}: {ins.at!r} matches {len(pts)} point(s), {n_modules} stitched modules in all; "
                            f"at most {MAX_STITCHED_MODULES}: use a narrower glob")
        for point in pts:
            key = (i, point.channels)
            if key not in seen:
                seen[key] = _meta_params(ins.module, point, f"{where}.module")
            n_params += seen[key]
            if n_params > MAX_STITCHED_PARAMS:
                raise SpecError(f"{where}: the stitched modules would add {n_params / 1e6:,.0f} M parameters; at "
                                f"most {MAX_STITCHED_PARAMS / 1e6:,.0f} M (check rd_channels / rd_ratio)")


def _is_residual(m: ModuleSpec) -> bool:
    if isinstance(m, Leaf):
        return catalog()[m.name].residual
    if m.kind == "parallel" and m.merge == "add" and any(isinstance(x, Leaf) and x.name == "identity"
                                                         for x in m.items):
        return True
    return any(_is_residual(x) for x in m.items)


def _stitch(model: nn.Module, insertions: list[Insertion]) -> None:
    """Attach each insertion's module before/after its target (hooks: the backbone's names are kept)."""
    for ins in sorted(insertions, key=lambda i: i.index):
        ins.path = attach(model, ins.point.path, ins.module, ins.point.where, ins.point.index)


_PASS_THROUGH = ("pool", "flatten", "drop", "identity")  # modules between the features and the classifier


def _norm_before(found: Probe, model: nn.Module, classifier: str) -> str | None:
    """Path of a norm layer that already runs right before the classifier (ViT's norm, a NormMlp head's norm)."""
    modules = dict(model.named_modules())
    start = found.calls[classifier].start if classifier in found.calls else None
    if start is None:
        return None
    leaves = [p for p, c in found.calls.items() if c.end < start and not list(modules[p].children())]
    for path in sorted(leaves, key=lambda p: found.calls[p].end, reverse=True):
        name = type(modules[path]).__name__
        if not any(k in name.lower() for k in _PASS_THROUGH):
            return path if "Norm" in name and "Act" not in name else None
    return None


def _head_norm(model: nn.Module, kind: str, found: Probe, warnings: list[str]) -> str:
    path = backbones.classifier_path(model)
    head = model.get_submodule(path) if path else None
    if not isinstance(head, nn.Linear):
        raise SpecError(f"head_norm: {type(model).__name__} has no linear classifier to put a norm before "
                        f"(num_classes 0 or a conv head)")
    existing = _norm_before(found, model, path)
    if kind == REMOVE_HEAD_NORM:
        if not existing:
            raise SpecError(f"head_norm: remove: {type(model).__name__} has no norm right before its classifier "
                            f"{path} to remove")
        removed = type(model.get_submodule(existing)).__name__
        norm_parent, _, norm_name = existing.rpartition(".")
        setattr(model.get_submodule(norm_parent) if norm_parent else model, norm_name, nn.Identity())
        warnings.append(f"head_norm: {existing} ({removed}) removed: the classifier {path} sees the features "
                        f"unnormalised")
        return path
    if existing:
        warnings.append(f"head_norm: {existing} already normalises the features before the classifier {path}; "
                        f"{kind} adds a second norm")
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, nn.Sequential(OrderedDict(norm=backbones.HEAD_NORMS[kind](head.in_features), fc=head)))
    return path


def _for_grid(model: nn.Module, info, plan: StemPlan, spec: Spec, source, kwargs: dict, lean: bool
              ) -> tuple[nn.Module, Any, bool]:
    """The model rebuilt for the grid the new stem makes, with timm's own mechanisms: `set_input_size` (ViT-style
    models resample their position embeddings, Swin / MaxViT re-size windows), else the constructor's `img_size`
    (relative-position tables, attention biases, fixed grids) at the equivalent image size. Families with a
    registered fix-up (ViT, Swin) and models that take no image size (convnets) are changed in place."""
    eff = plan.equivalent_img_size
    if plan.grid_after == plan.grid_before or has_fixup(model):
        return model, info, True
    if hasattr(model, "set_input_size"):
        try:
            model.set_input_size(img_size=(eff, eff))
            return model, info, True
        except Exception as e:
            raise SpecError(_grid_refusal(plan, spec, type(model).__name__, str(e))) from None
    try:
        new, new_info = _create(spec.backbone, source, eff, spec.reparameterize, exact_size=True, lean=lean,
                                **kwargs)
    except SpecError:
        raise
    except Exception as e:
        raise SpecError(_grid_refusal(plan, spec, spec.backbone, str(e))) from None
    return (new.eval(), new_info, True) if new is not None else (model, info, False)


def _grid_refusal(plan: StemPlan, spec: Spec, what: str, why: str, fits: WhatFits | None = None,
                  rebuilt: bool = True, known: str | None = None) -> str:
    """The refusal of a stem change: `known` is what the failure means when torch's text says it
    (`errors.in_domain_words`), else the likely cause is given and `why` quoted."""
    g0, g1 = plan.grid_before, plan.grid_after
    why = (why.strip().splitlines() or [""])[0][:160]
    reason = known or ("even rebuilt for that grid by timm, its design needs other grid sizes (window, block or "
                       "attention partitions that must tile the map)" if rebuilt else
                       f"it holds parts fixed to the {g0}x{g0} grid (attention biases, position tables) and timm "
                       f"cannot rebuild {spec.backbone} for another (no set_input_size, no img_size argument)")
    text = (f"stem.stride: {plan.after[1]} makes a {g1}x{g1} grid at img_size {plan.img_size} (was {g0}x{g0}), "
            f"which {what} cannot take: {reason}" + (f" ({why})" if why else ""))
    return text + (fits.text(plan.after[1]) if fits is not None else "")


def _probe_changed_stem(model: nn.Module, plan: StemPlan, spec: Spec, rebuilt: bool, lean: bool,
                        before: Probe) -> Probe:
    """The probe after a stem change; a forward pass that fails becomes a refusal that names the module that
    cannot take the new grid and what fits."""
    try:
        return probe(model, plan.img_size)
    except ForwardError as e:
        what, why, known = (f"{e.module_type} ({e.path})" if e.path else spec.backbone), "", e.words
    except Exception as e:
        what, why, known = spec.backbone, str(e), None
    fits = _what_fits(spec, plan, lean, before)
    raise StemRefusal(_grid_refusal(plan, spec, what, why, fits, rebuilt, known), fits) from None


MAX_STRIDE_SEARCH_PARAMS = 30_000_000  # above this, finding the strides that fit takes too long to offer
STRIDE_SEARCH_SECONDS = 12.0


_search = threading.local()  # set while _what_fits builds: a refusal inside it does not search again


def _builds(spec: Spec, lean: bool) -> bool:
    _search.active = True
    try:
        build(spec, lean)
        return True
    except SpecError:
        return False
    finally:
        _search.active = False


def _even_sizes(img_size: int, before: Probe, plan: StemPlan) -> list[int]:
    """Image sizes near `img_size` that the new total stride divides (the deepest map's reduction times the stride
    change), nearest first: where every stage halves an even map, as the design assumed (ResNet-D's pooled
    shortcut, CoAtNet's attention grids, DLA's trees). The deepest map: the named points' (Hiera's token grids) or
    the smallest a conv makes (NCHW, also inside token stages: CoaT's position convs), pooled 1x1 maps aside."""
    modules = dict(before.model.named_modules())
    reductions = [p.reduction for p in before.named_points() if p.reduction]
    reductions += [plan.img_size / c.out.shape[-1] for p, c in before.calls.items()
                   if isinstance(modules.get(p), nn.Conv2d) and isinstance(c.out, torch.Tensor) and c.out.dim() == 4
                   and c.out.shape[-1] > 1]
    if not reductions:
        return []
    step = round(max(reductions) * plan.after[1] / plan.before[1])
    near = {step * (img_size // step), step * -(-img_size // step)} - {0, img_size}
    return sorted((n for n in near if n in IMG_SIZE), key=lambda n: (abs(n - img_size), -n))


def _what_fits(spec: Spec, plan: StemPlan, lean: bool, before: Probe) -> WhatFits | None:
    """Of half, one, two and four times the original stride, those with which this backbone builds and runs, and
    the nearest image size where the asked stride does (None when the model is too large to try them within
    STRIDE_SEARCH_SECONDS). Never below half: a smaller stride multiplies the tokens an attention layer sees, and
    its memory by their square."""
    base, _ = base_model(spec.backbone, plan.img_size, None, spec.reparameterize, lean=True)  # for its size
    if _n_params(base) > MAX_STRIDE_SEARCH_PARAMS or getattr(_search, "active", False):
        return None
    plain = dataclasses.replace(spec, pretrained=False, checkpoint=None, insert=(), head_norm=None)
    deadline = time.monotonic() + STRIDE_SEARCH_SECONDS
    # the asked stride at a nearby size first (the most useful answer), then the strides from the cheapest (largest)
    size = next((n for n in _even_sizes(plan.img_size, before, plan)
                 if time.monotonic() < deadline and _builds(dataclasses.replace(plain, img_size=n), lean)), None)
    s0, strides = plan.before[1], []
    for s in sorted({max(1, s0 // 2), s0, 2 * s0, 4 * s0} - {plan.after[1]}, reverse=True):
        if time.monotonic() > deadline:
            return WhatFits(sorted(strides), size) if strides or size else None  # cut short: "none" unproven
        if _builds(dataclasses.replace(plain, stem=dataclasses.replace(spec.stem, stride=s)), lean):
            strides.append(s)
    return WhatFits(sorted(strides), size)


def describe_stem(plan: StemPlan, before: Probe, after: Probe) -> str:
    """"conv1: stride 2 -> 4; stage 1 sees 28x28 (total stride 8, was 4)": what the stem outputs, which stage 1
    takes, and the total stride there before and after."""
    def fed(p: Probe) -> tuple[int | None, float | None]:
        pts = {x.name: x for x in p.named_points()}
        x = pts.get("stem") or pts.get("stage1")
        return (x.grid[0], x.reduction) if x is not None and x.grid else (None, None)
    (_, r0), (g1, r1) = fed(before), fed(after)
    return plan.describe(g1, r1, r0)


@shares_cores
def build(spec: Spec | dict | str, lean: bool = False) -> Built:
    """Build the model a spec describes (the module docstring gives the order of work).

    Args:
        spec: a Spec, a dict, or YAML/JSON text.
        lean: for counting only: the backbone without random initialisation (all its weights zero; see `lean`),
            unless weights are loaded. Its params, MACs and shapes are the ordinary model's; its outputs are not.

    Returns:
        A Built: `model` (the stitched nn.Module), `base` (the unmodified backbone), `points`, `insertions`,
        `stem`, `weights` and `warnings`. Bad input raises a one-line SpecError.

    >>> b = build({"backbone": "resnet18", "img_size": 64, "insert": [{"at": "stage4", "module": "se"}]})
    >>> b.delta_params, b.insertions[0].path
    (33312, 'layer4_after.0')
    """
    spec = load_spec(spec)
    img_size = spec.img_size or backbones.default_img_size(backbones.check_backbone(spec.backbone))
    source = _weights_source(spec)
    kwargs = backbones.create_kwargs(spec)
    fused = spec.reparameterize
    lean = lean and source is None
    if not spec.changes_backbone():  # the model is its own base: one fresh model, no copy, nothing cached to share
        base, info = _create(spec.backbone, source, img_size, fused, lean=lean)
        model = base
    elif kwargs or lean:  # the constructor changes (classes, drop path): a model of its own, weights loaded by timm
        # (and a lean model is cheaper to make again than to copy: deepcopy clones every parameter)
        base, _ = base_model(spec.backbone, img_size, source, fused, lean)
        model, info = _create(spec.backbone, source, img_size, fused, lean=lean, **kwargs)
    else:
        base, info = base_model(spec.backbone, img_size, source, fused)
        model = copy.deepcopy(base)
    model.eval()
    warnings: list[str] = []
    if info is not None:  # the base's info is shared with the cache
        info = dataclasses.replace(info, missing=list(info.missing), unexpected=list(info.unexpected),
                                   reinitialised=list(info.reinitialised))
    if not spec.changes_backbone():
        built = Built(spec, model, base, img_size, [], weights=info, lean=lean)
        if img_size != backbones.default_img_size(spec.backbone):
            built.probed()  # a size the backbone was not made for may not run: refuse it now, in one line
        return built  # else the probe runs when first asked (Built.probed), sharing torchinfo's forward pass
    found = _probe(model, img_size, "backbone")

    stem = None
    if not spec.stem.is_default():
        before = found
        plan = plan_stem(found, spec.stem)
        model, info, rebuilt = _for_grid(model, info, plan, spec, source, kwargs, lean)
        change, w = apply_stem(model, plan, pretrained=info is not None)
        warnings += w
        found = _probe_changed_stem(model, plan, spec, rebuilt, lean, before)
        stem = from_plain(StemChange, {**change, "description": describe_stem(plan, before, found)})
        if stem.after.kernel != stem.before.kernel and info is not None:
            info.reinitialised = sorted(set(info.reinitialised) | {f"{stem.path}.weight"})
    if spec.head_norm:
        _head_norm(model, spec.head_norm, found, warnings)
    out_shape = found.calls[found.final_path].map.shape if found.final_path else None

    _check_budget(spec, found)
    insertions: list[Insertion] = []
    for i, ins in enumerate(spec.insert):
        where = f"insert[{i}]"
        for point in found.resolve(ins.at, f"{where}.at"):
            module = _make(ins.module, point, f"{where}.module", warnings)
            residual = _is_residual(ins.module)
            if spec.gate:
                module = Gate(module)
            if (spec.gate or residual) and point.block:
                warnings.append(f"{where}: {module_label(ins.module)} at {point.name} adds a second residual "
                                f"inside the residual block {point.block}")
            module = LayoutAdapter(module, point.layout, point.num_prefix_tokens, point.grid)
            insertions.append(Insertion(i, ins.at, point, module_label(ins.module), module,
                                        params=_n_params(module)))
    _stitch(model, insertions)
    if insertions and (spec.pretrained or spec.checkpoint) and not spec.gate:
        warnings.append(f"weights: {len(insertions)} stitched module(s) start from random weights; the pretrained "
                        f"predictions change until they are trained (gate: true keeps them unchanged)")
    if info is not None:  # stitched parameters are not in any checkpoint, gated or not
        info.missing = sorted(set(info.missing) | {f"{i.path}.{n}" for i in insertions
                                                   for n, _ in i.module.named_parameters()})

    final = _probe(model, img_size, "insert") if insertions else found
    silent = next((i for i in insertions if i.path not in final.calls), None)
    if silent is not None:
        raise SpecError(f"insert[{silent.index}]: {silent.point.name} ({silent.point.path}) is never called as a "
                        f"module in the forward pass (its parent uses its weights directly); pick another point")
    if out_shape is not None and final.final_path:
        got = final.calls[final.final_path].map.shape
        if got != out_shape:
            raise SpecError(f"insert: the stitched model's features changed shape {list(out_shape)} -> "
                            f"{list(got)}; stitched modules must keep the shape")
    return Built(spec, model, base, img_size, insertions, stem, warnings, info, found, lean=lean)
