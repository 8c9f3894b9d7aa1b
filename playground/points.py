"""Insertion points, resolved by a probe forward pass with hooks — never guessed from module names.

Point names: `input`, `stem`, `stage<i>`, `stage<i>.block<j>`, `stage<i>.block*`, `final` (i and j 1-based), or a
glob over module paths (`layer*.*.bn3`, fnmatch syntax: `*` also matches dots) meaning "right after each matching
module". Stages come from the model's `feature_info`; the blocks of a stage are the children of the stage's block
container (the stage itself when it is an nn.Sequential / nn.ModuleList, else its `blocks` child). A plain ViT has
no such container: each of its blocks is a stage.
"""
from __future__ import annotations

import copy
import dataclasses
import fnmatch
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import SpecError, close_matches, first_line, in_domain_words, root_cause
from .report import PointInfo, Shape

__all__ = ["Point", "Probe", "probe", "ForwardError", "feature_map", "map_layout", "meta_copy", "shape_runner"]

_CONTAINERS = (nn.Sequential, nn.ModuleList)
_STAGE_RE = re.compile(r"^stage(\d+)(?:\.block(\d+|\*))?$")


@dataclass
class Point:
    """A place in the backbone where a module can be stitched in, with what flows through it."""
    name: str  # the name the user wrote, resolved: 'stage2.block1', 'layer1.0.bn3', 'final', ...
    path: str  # module path the insertion attaches to
    where: str  # 'after' the module, or 'before' it (only `input`)
    layout: str  # 'NCHW' | 'NHWC' | 'NLC'
    channels: int
    shape: list[int]  # at batch 1 and the spec's image size
    num_prefix_tokens: int = 0
    grid: tuple[int, int] | None = None  # spatial grid, None for tokens whose grid is unknown
    reduction: float | None = None  # input size / grid size
    block: str | None = None  # the residual block this point lies strictly inside, if any
    index: int | None = None  # the feature map's position when the module outputs a tuple or list

    def info(self) -> PointInfo:
        """What the Report (and `points --json`) says about this point."""
        return PointInfo(name=self.name, path=self.path, layout=self.layout, channels=self.channels,
                         shape=list(self.shape), num_prefix_tokens=self.num_prefix_tokens,
                         reduction=self.reduction, output_index=self.index)

    def shape_info(self) -> Shape:
        """The feature map here, with its channels and spatial size."""
        height, width = self.grid if self.grid else (None, None)
        return Shape(point=self.name, layout=self.layout, shape=list(self.shape), channels=self.channels,
                     height=height, width=width, reduction=self.reduction)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self.info())


def feature_map(out: Any) -> tuple[torch.Tensor | None, int | None]:
    """The feature map (a 3-D token or 4-D map tensor) in a module's output, and its index when the output is a
    tuple or list (MViTv2 stages return (x, size), PiT's (x, cls_tokens)): the first such element."""
    if isinstance(out, torch.Tensor):
        return (out, None) if out.ndim in (3, 4) else (None, None)
    if isinstance(out, (tuple, list)):
        return next(((o, i) for i, o in enumerate(out) if isinstance(o, torch.Tensor) and o.ndim in (3, 4)),
                    (None, None))
    return None, None


class ForwardError(RuntimeError):
    """A probe's forward pass failed inside the module at `path` (the innermost one that had started)."""

    def __init__(self, cause: BaseException, path: str | None, module: nn.Module | None):
        self.cause, self.path = cause, path
        self.module_type = type(module).__name__ if module is not None else None
        self.raw = first_line(root_cause(cause))
        self.words = in_domain_words(self.raw)  # torch's size arithmetic as what it means, when it is that
        self.text = self.words or self.raw
        super().__init__(f"{path or 'forward'}: {self.text}")


@dataclass
class _Call:
    start: int
    end: int = -1
    inp: torch.Tensor | None = None
    out: object = None

    @property
    def map(self) -> torch.Tensor | None:
        return feature_map(self.out)[0]


@dataclass
class Probe:
    """What one forward pass of a backbone showed: every module call, its stages, blocks and special points."""
    model: nn.Module
    img_size: int
    calls: dict[str, _Call]
    stages: list[str]
    blocks: list[list[str]]  # per stage: block paths (empty when the stage has no block container)
    input_path: str
    stem_path: str | None
    final_path: str | None
    num_prefix_tokens: int = 0
    patch_grid: tuple[int, int] | None = None
    unavailable: dict[str, str] = field(default_factory=dict)  # point name -> why it cannot take a module
    _cache: dict = field(default_factory=dict)

    # ---- named points
    def names(self) -> list[str]:
        """Every named point of this backbone, in forward order."""
        out = ["input"] + (["stem"] if self.stem_path else [])
        for i, blocks in enumerate(self.blocks, 1):
            out += [f"stage{i}.block{j}" for j in range(1, len(blocks) + 1)] + [f"stage{i}"]
        return out + (["final"] if self.final_path else [])

    def named_points(self) -> list[Point]:
        """Every named point that can take a module; the others are in `unavailable` with the reason."""
        out = []
        for name in self.names():
            try:
                out += self.resolve(name)
            except SpecError as e:
                self.unavailable[name] = str(e)
        return out

    def stage_of(self, path: str) -> str:
        """'stem', 'stage<i>' or 'head' for a module path of the backbone: inside a stage or one of its blocks, else by
        when it runs (a module between two stages feeds the next one, as EfficientNet's `blocks.3`)."""
        for i, (stage, blocks) in enumerate(zip(self.stages, self.blocks), 1):
            if any(path == p or path.startswith(p + ".") for p in [stage, *blocks]):
                return f"stage{i}"
        if not path or any(p.startswith(path + ".") for p in self.stages):
            return "stem"  # the root's own parameters (cls token, position embedding) and container overhead
        call = self._call(path)
        if call is None:
            return "head"
        for i, begin in enumerate(self._stage_begins(), 1):
            if call.start < begin:
                return "stem" if i == 1 else f"stage{i}"
        return "head"

    def _stage_begins(self) -> list[int]:
        return [min([self.calls[p].start for p in [stage, *blocks] if p in self.calls])
                for stage, blocks in zip(self.stages, self.blocks)]

    def _call(self, path: str) -> _Call | None:
        while path:
            if path in self.calls:
                return self.calls[path]
            path = path.rpartition(".")[0]
        return None

    def resolve(self, at: str, where: str = "insert.at") -> list[Point]:
        """The points named by `at`: a point name or a module-path glob (one or more modules)."""
        if not isinstance(at, str) or not at:
            raise SpecError(f"{where}: {at!r} is not a point name; allowed: {self._allowed()}")
        if at == "input":
            return [self._point(at, self.input_path, "before")]
        if at == "stem":
            if not self.stem_path:
                raise SpecError(f"{where}: this backbone has no stem output distinct from its input")
            return [self._point(at, self.stem_path)]
        if at == "final":
            if not self.final_path:
                raise SpecError(f"{where}: the output of forward_features is not produced by a module here; "
                                f"stitch at stage{len(self.stages)} instead")
            return [self._point(at, self.final_path)]
        m = _STAGE_RE.match(at)
        if m:
            return self._resolve_stage(at, int(m.group(1)), m.group(2), where)
        if at.startswith("stage") and "." not in at.replace(".block", ""):
            raise SpecError(f"{where}: {at!r} is not a point; allowed: {self._allowed()}")
        return self._resolve_glob(at, where)

    def _resolve_stage(self, at: str, i: int, j: str | None, where: str) -> list[Point]:
        n = len(self.stages)
        if not 1 <= i <= n:
            raise SpecError(f"{where}: {at!r}: this backbone has stages 1 to {n}")
        if j is None:
            return [self._point(at, self.stages[i - 1])]
        blocks = self.blocks[i - 1]
        if not blocks:
            raise SpecError(f"{where}: {at!r}: stage {i} is a single block here (plain ViT-style backbone); "
                            f"use stage{i}")
        if j == "*":
            return [self._point(f"stage{i}.block{k}", b) for k, b in enumerate(blocks, 1)]
        if not 1 <= int(j) <= len(blocks):
            raise SpecError(f"{where}: {at!r}: stage {i} has blocks 1 to {len(blocks)}")
        return [self._point(at, blocks[int(j) - 1])]

    def _resolve_glob(self, pattern: str, where: str) -> list[Point]:
        if any(c in pattern for c in " \t\n;()"):
            raise SpecError(f"{where}: {pattern!r} is not a point name or module-path glob")
        matched = [p for p in self.calls if p and fnmatch.fnmatchcase(p, pattern)]
        if not matched:
            raise SpecError(f"{where}: {pattern!r} matches no module that runs in the forward pass"
                            f"{close_matches(pattern, [p for p in self.calls if p])}; "
                            f"named points: {self._allowed()}")
        return [self._point(p, p) for p in matched]

    def _allowed(self) -> str:
        n = len(self.stages)
        stage = f"stage1..stage{n}, stage<i>.block<j>, stage<i>.block*, " if n else ""
        return f"input, stem, {stage}final, or a module-path glob such as 'layer*.*.bn3'"

    # ---- describing a point
    def _point(self, name: str, path: str, where: str = "after") -> Point:
        key = (name, path, where)
        if key in self._cache:
            return self._cache[key]
        call = self.calls[path]
        raw = call.inp if where == "before" else call.out
        t, index = feature_map(raw) if where == "after" else (raw if feature_map(raw)[1] is None else None, None)
        if t is None:
            shape = list(raw.shape) if isinstance(raw, torch.Tensor) else type(raw).__name__
            raise SpecError(f"insert.at: {name!r} ({path}) outputs {shape}, which has no spatial or token axis "
                            f"to stitch into; pick a point before pooling")
        layout, channels, grid, prefix = self._layout(t)
        reduction = round(self.img_size / grid[0], 3) if grid else None
        point = Point(name, path, where, layout, channels, list(t.shape), prefix, grid, reduction,
                      self._enclosing_block(path), index)
        self._cache[key] = point
        return point

    def _layout(self, t: torch.Tensor) -> tuple[str, int, tuple[int, int] | None, int]:
        return map_layout(t, self.num_prefix_tokens, self.patch_grid, getattr(self.model, "output_fmt", "NCHW"))

    def _enclosing_block(self, path: str) -> str | None:
        for blocks, stage in zip(self.blocks, self.stages):
            for b in blocks or [stage]:
                if path.startswith(b + "."):
                    return b
        return None


def map_layout(t: torch.Tensor, num_prefix_tokens: int = 0, patch_grid: tuple[int, int] | None = None,
               output_fmt: str = "NCHW") -> tuple[str, int, tuple[int, int] | None, int]:
    """(layout, channels, grid, prefix tokens) of a feature map: NCHW, NHWC, or NLC tokens (B, L, C) whose grid
    is the model's patch grid or a square after the prefix tokens (the model's count, none, or one cls token)."""
    if t.ndim == 3:  # tokens (B, L, C), timm's layout
        L, C = t.shape[1], t.shape[2]
        for prefix in dict.fromkeys([num_prefix_tokens, 0, 1]):
            n = L - prefix
            if patch_grid and n == patch_grid[0] * patch_grid[1]:
                return "NLC", C, tuple(patch_grid), prefix
            side = math.isqrt(max(n, 0))
            if n > 0 and side * side == n:
                return "NLC", C, (side, side), prefix
        return "NLC", C, None, 0
    _, a, b, c = t.shape
    if b == c and a != b:
        return "NCHW", a, (b, c), 0
    if a == b and c != a:
        return "NHWC", c, (a, b), 0
    if output_fmt == "NHWC":
        return "NHWC", c, (a, b), 0
    return "NCHW", a, (b, c), 0


def _block_container(stage: nn.Module, stage_path: str) -> str | None:
    if isinstance(stage, _CONTAINERS):
        return stage_path
    children = dict(stage.named_children())
    if isinstance(children.get("blocks"), _CONTAINERS):
        return f"{stage_path}.blocks"
    containers = [n for n, c in children.items() if isinstance(c, _CONTAINERS) and len(c)]
    return f"{stage_path}.{containers[0]}" if len(containers) == 1 else None


def _feature_info_stages(model: nn.Module, calls: dict[str, _Call]) -> list[tuple[str, list[str]]]:
    """(stage path, block paths) from timm's `feature_info`, kept only where it names modules that ran and output a
    feature map. A ModuleList entry (CoaT's `serial_blocks1`) is not called itself: its last block that ran is the
    stage's output. Leading stem entries (reduction 2 or less, no blocks: ResNet `act1`, DenseNet `norm0`) go."""
    modules = dict(model.named_modules())
    found: list[tuple[str, list[str], int]] = []
    for f in getattr(model, "feature_info", None) or []:
        path = f.get("module") if isinstance(f, dict) else None
        if not path or path not in modules:
            continue
        container = _block_container(modules[path], path)
        blocks = [f"{container}.{n}" for n, _ in modules[container].named_children()] if container else []
        if path not in calls and isinstance(modules[path], nn.ModuleList):
            ran = [b for b in blocks if b in calls]
            path = max(ran, key=lambda b: calls[b].end) if ran else path
        if path not in calls or calls[path].map is None or any(path == p for p, _, _ in found):
            continue
        found.append((path, blocks, int(f.get("reduction") or 0)))
    found.sort(key=lambda e: calls[e[0]].end)
    while len(found) > 1 and not found[0][1] and 0 < found[0][2] <= 2:
        found.pop(0)
    return [(p, b) for p, b, _ in found]


def _outer_maps(calls: dict[str, _Call], until: int) -> list[str]:
    """Module calls not inside another call that output a feature map and end by `until`, in the order they end."""
    def outer(path: str) -> bool:
        parts = path.split(".")
        return not any(".".join(parts[:i]) in calls for i in range(1, len(parts)))
    return sorted((p for p, c in calls.items() if outer(p) and c.end <= until and c.map is not None),
                  key=lambda p: calls[p].end)


def _trunk_stages(model: nn.Module, calls: dict[str, _Call], features_end: int,
                  reduction: Callable[[torch.Tensor], float | None]) -> list[tuple[str, list[str]]]:
    """Stages found from the probe where `feature_info` is missing or wrong (MViTv2, Twins, HRNet): the trunk is the
    outermost module calls that output a feature map up to the features; a stage ends where the reduction grows
    beyond every one before it. Units of a stage that share a container are its blocks; a stage that is all of a
    callable container's children is that container (ResNet's `layer1`)."""
    modules = dict(model.named_modules())

    trunk = _outer_maps(calls, features_end)
    runs: list[list[str]] = []
    top = 0.0
    for p in trunk:
        r = reduction(calls[p].map)
        if r is None:
            continue
        if not runs or r > top:
            runs.append([])
            top = max(top, r)
        runs[-1].append(p)
    if len(runs) > 1 and all("." not in p and not isinstance(modules[p], _CONTAINERS) for p in runs[0]):
        runs.pop(0)  # leading single layers (conv, norm, act) at the first reduction are the stem
    stages = []
    for run in runs:
        last = run[-1]
        parent = last.rpartition(".")[0]
        blocks = [p for p in run if p.rpartition(".")[0] == parent] if parent else []
        siblings = [f"{parent}.{n}" for n, _ in modules[parent].named_children()] if parent else []
        if parent in calls and blocks == siblings:
            last = parent
        elif len(run) == 1 and not blocks:
            container = _block_container(modules[last], last)
            blocks = [f"{container}.{n}" for n, _ in modules[container].named_children()] if container else []
        stages.append((last, blocks))
    return stages


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` whose parameters and buffers live on the meta device: forward passes propagate shapes
    without computing, at a fraction of the cost. Weights are never copied."""
    memo: dict[int, torch.Tensor] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(meta, t.requires_grad) if isinstance(t, nn.Parameter) else meta
    return copy.deepcopy(model, memo)


META_ABOVE_PARAMS = 50_000_000  # below this a real batch-1 forward is cheaper than a meta copy's (measured)


def shape_runner(model: nn.Module) -> tuple[nn.Module, str]:
    """What to run a shapes-only forward pass on: a meta copy for large models, the model itself otherwise."""
    if sum(p.numel() for p in model.parameters()) > META_ABOVE_PARAMS:
        try:
            return meta_copy(model), "meta"
        except Exception:
            pass
    return model, "cpu"


Forward = Callable[[nn.Module, torch.Tensor], Any]


def probe(model: nn.Module, img_size: int, forward: Forward | None = None, private: bool = False) -> Probe:
    """One forward pass at batch 1 with hooks on every module: what ran, in which order, with which shapes.

    Large models run on a meta-device copy (shapes only, no compute); models the meta device cannot run
    (data-dependent control flow, tensors held outside parameters and buffers) get a real forward pass instead.
    `forward(module, x)`, if given, runs the pass instead of us (it must call `module(x)`), so another tool's
    forward pass (torchinfo's) can serve as the probe's too. `private`: never hook `model` itself (it is shared
    with other threads): probe a meta copy, or a real copy if the meta device cannot run it.
    """
    runner, device = shape_runner(model)
    if private:
        try:
            return _probe(meta_copy(model), img_size, "meta", forward)
        except Exception:
            return _probe(copy.deepcopy(model), img_size, "cpu", forward)
    if device == "meta":
        try:
            return _probe(runner, img_size, "meta", forward)
        except Exception:
            pass
    return _probe(model, img_size, "cpu", forward)


def _probe(model: nn.Module, img_size: int, device: str, forward: Forward | None = None) -> Probe:
    calls: dict[str, _Call] = {}
    clock = iter(range(1 << 62))
    handles = []

    def pre(path):
        def hook(_m, args):
            calls[path] = _Call(next(clock), inp=args[0] if args else None)
        return hook

    def post(path):
        def hook(_m, _args, out):
            calls[path].end, calls[path].out = next(clock), out
        return hook

    for path, m in model.named_modules():
        if path:
            handles += [m.register_forward_pre_hook(pre(path)), m.register_forward_hook(post(path))]
    x = torch.zeros(1, 3, img_size, img_size, device=device)
    was_training = model.training
    model.eval()
    captured: list = []
    features_end: list[int] = []
    forward_features = model.forward_features

    def features_hook(*a, **k):  # timm's forward calls self.forward_features: catch its output on the way
        captured.append(forward_features(*a, **k))
        features_end.append(next(clock))
        return captured[-1]
    try:
        if forward is not None:
            model.forward_features = features_hook
            try:
                forward(model, x)
            finally:
                del model.forward_features
        if not captured:
            calls.clear()
            with torch.inference_mode():
                model.forward_head(features_hook(x))
    except Exception as e:
        running = [p for p, c in calls.items() if c.end < 0]
        path = max(running, key=lambda p: calls[p].start) if running else None
        raise ForwardError(e, path, model.get_submodule(path) if path else None) from e
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    features = captured[0]

    calls = {p: c for p, c in calls.items() if c.end >= 0}
    if not calls:
        raise SpecError("backbone: no module of this model runs in its forward pass; nothing to stitch into")
    fed = [p for p, c in calls.items() if c.inp is x]
    input_path = min(fed or calls, key=lambda p: (p.count("."), calls[p].start))

    def latest_producer(t, before: int) -> str | None:
        found = [p for p, c in calls.items() if c.map is t and c.end < before]
        return max(found, key=lambda p: calls[p].end) if found else None

    prefix = int(getattr(model, "num_prefix_tokens", 0) or 0)
    patch_grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    patch_grid = tuple(patch_grid) if isinstance(patch_grid, (tuple, list)) and len(patch_grid) == 2 else None
    output_fmt = getattr(model, "output_fmt", "NCHW")

    def reduction(t: torch.Tensor) -> float | None:
        grid = map_layout(t, prefix, patch_grid, output_fmt)[2]
        return img_size / grid[0] if grid else None
    found = _feature_info_stages(model, calls)
    if len(found) < 2:
        trunk = _trunk_stages(model, calls, features_end[0], reduction)
        found = trunk if len(trunk) > len(found) else found
    stages, blocks = [p for p, _ in found], [b for _, b in found]
    end = features_end[0]
    begin = min([calls[p].start for p in [stages[0], *blocks[0]] if p in calls]) if stages else -1
    # the stem's output: the last feature map made before stage 1 begins
    stem_path = max((p for p, c in calls.items() if c.end < begin and c.map is not None),
                    key=lambda p: calls[p].end, default=None)
    # the module that outputs the features, else the last one whose output becomes them (NesT permutes after norm)
    final_path = latest_producer(feature_map(features)[0], end + 1) or \
        max((p for p, c in calls.items() if c.map is not None and c.end <= end), key=lambda p: calls[p].end,
            default=None)
    return Probe(model, img_size, calls, stages, blocks, input_path, stem_path, final_path, prefix, patch_grid)
