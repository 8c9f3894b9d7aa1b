"""Insertion points, resolved by a probe forward pass with hooks — never guessed from module names.

Point names: `input`, `stem`, `stage<i>`, `stage<i>.block<j>`, `stage<i>.block*`, `final` (i and j 1-based), or a
glob over module paths (`layer*.*.bn3`, fnmatch syntax: `*` also matches dots) meaning "right after each matching
module". Stages come from the model's `feature_info`; the blocks of a stage are the children of the stage's block
container (the stage itself when it is an nn.Sequential / nn.ModuleList, else its `blocks` child). A plain ViT has
no such container: each of its blocks is a stage.
"""
from __future__ import annotations

import copy
import fnmatch
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

from .errors import SpecError, close_matches

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
    grid: Optional[tuple[int, int]] = None  # spatial grid, None for tokens whose grid is unknown
    reduction: Optional[float] = None  # input size / grid size
    block: Optional[str] = None  # the residual block this point lies strictly inside, if any

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "layout": self.layout, "channels": self.channels,
                "shape": list(self.shape), "num_prefix_tokens": self.num_prefix_tokens,
                "reduction": self.reduction}


@dataclass
class _Call:
    start: int
    end: int = -1
    inp: Optional[torch.Tensor] = None
    out: object = None


@dataclass
class Probe:
    """What one forward pass of a backbone showed: every module call, its stages, blocks and special points."""
    model: nn.Module
    img_size: int
    calls: dict[str, _Call]
    stages: list[str]
    blocks: list[list[str]]  # per stage: block paths (empty when the stage has no block container)
    input_path: str
    stem_path: Optional[str]
    final_path: Optional[str]
    num_prefix_tokens: int = 0
    patch_grid: Optional[tuple[int, int]] = None
    _cache: dict = field(default_factory=dict)

    # ---- named points
    def names(self) -> list[str]:
        """Every named point of this backbone, in forward order."""
        out = ["input"] + (["stem"] if self.stem_path else [])
        for i, blocks in enumerate(self.blocks, 1):
            out += [f"stage{i}.block{j}" for j in range(1, len(blocks) + 1)] + [f"stage{i}"]
        return out + (["final"] if self.final_path else [])

    def named_points(self) -> list[Point]:
        return [p for n in self.names() for p in self.resolve(n)]

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

    def _resolve_stage(self, at: str, i: int, j: Optional[str], where: str) -> list[Point]:
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
        t = call.inp if where == "before" else call.out
        if not isinstance(t, torch.Tensor) or t.ndim not in (3, 4):
            shape = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise SpecError(f"insert.at: {name!r} ({path}) outputs {shape}, which has no spatial or token axis "
                            f"to stitch into; pick a point before pooling")
        layout, channels, grid, prefix = self._layout(t)
        reduction = round(self.img_size / grid[0], 3) if grid else None
        point = Point(name, path, where, layout, channels, list(t.shape), prefix, grid, reduction,
                      self._enclosing_block(path))
        self._cache[key] = point
        return point

    def _layout(self, t: torch.Tensor) -> tuple[str, int, Optional[tuple[int, int]], int]:
        if t.ndim == 3:  # tokens (B, L, C), timm's layout
            L, C = t.shape[1], t.shape[2]
            for prefix in dict.fromkeys([self.num_prefix_tokens, 0]):
                n = L - prefix
                if self.patch_grid and n == self.patch_grid[0] * self.patch_grid[1]:
                    return "NLC", C, tuple(self.patch_grid), prefix
                side = math.isqrt(max(n, 0))
                if n > 0 and side * side == n:
                    return "NLC", C, (side, side), prefix
            return "NLC", C, None, 0
        _, a, b, c = t.shape
        if b == c and a != b:
            return "NCHW", a, (b, c), 0
        if a == b and c != a:
            return "NHWC", c, (a, b), 0
        if getattr(self.model, "output_fmt", "NCHW") == "NHWC":
            return "NHWC", c, (a, b), 0
        return "NCHW", a, (b, c), 0

    def _enclosing_block(self, path: str) -> Optional[str]:
        for blocks, stage in zip(self.blocks, self.stages):
            for b in blocks or [stage]:
                if path.startswith(b + "."):
                    return b
        return None


def _block_container(stage: nn.Module, stage_path: str) -> Optional[str]:
    if isinstance(stage, _CONTAINERS):
        return stage_path
    children = dict(stage.named_children())
    if isinstance(children.get("blocks"), _CONTAINERS):
        return f"{stage_path}.blocks"
    containers = [n for n, c in children.items() if isinstance(c, _CONTAINERS) and len(c)]
    return f"{stage_path}.{containers[0]}" if len(containers) == 1 else None


def _stages(model: nn.Module) -> tuple[list[str], list[list[str]]]:
    """Stage paths from feature_info (leading stem features dropped) and each stage's block paths."""
    modules = dict(model.named_modules())
    info = [f["module"] for f in getattr(model, "feature_info", []) or [] if f.get("module") in modules]
    containers = [_block_container(modules[p], p) for p in info]
    if any(containers):  # leading entries without blocks (ResNet act1, MobileNetV3 bn1) belong to the stem
        first = next(i for i, c in enumerate(containers) if c)
        info, containers = info[first:], containers[first:]
    blocks = [[f"{c}.{n}" for n, _ in modules[c].named_children()] if c else [] for c in containers]
    return info, blocks


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


def probe(model: nn.Module, img_size: int, forward: Optional[Forward] = None, private: bool = False) -> Probe:
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


def _probe(model: nn.Module, img_size: int, device: str, forward: Optional[Forward] = None) -> Probe:
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
    try:
        if forward is not None:  # timm's forward calls self.forward_features: catch its output on the way
            forward_features = model.forward_features
            model.forward_features = lambda *a, **k: captured.append(forward_features(*a, **k)) or captured[-1]
            try:
                forward(model, x)
            finally:
                del model.forward_features
        if not captured:
            calls.clear()
            with torch.inference_mode():
                captured.append(model.forward_features(x))
                model.forward_head(captured[0])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    features = captured[0]

    stages, blocks = _stages(model)
    calls = {p: c for p, c in calls.items() if c.end >= 0}
    input_path = min((p for p, c in calls.items() if c.inp is x), key=lambda p: (p.count("."), calls[p].start))

    def latest_producer(t, before: int) -> Optional[str]:
        found = [p for p, c in calls.items() if c.out is t and c.end < before]
        return max(found, key=lambda p: calls[p].end) if found else None

    stages_ran = [i for i, s in enumerate(stages) if s in calls]
    stages, blocks = [stages[i] for i in stages_ran], [blocks[i] for i in stages_ran]
    stem_path = latest_producer(calls[stages[0]].inp, calls[stages[0]].start) if stages else None
    final_path = latest_producer(features, 1 << 62)
    patch_embed = getattr(model, "patch_embed", None)
    grid = getattr(patch_embed, "grid_size", None)
    return Probe(model, img_size, calls, stages, blocks, input_path, stem_path, final_path,
                 int(getattr(model, "num_prefix_tokens", 0) or 0), tuple(grid) if grid else None)
