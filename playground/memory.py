"""Memory of a model at a batch and a dtype: parameters and buffers, the inference peak, one training step.

`estimate_memory` runs the model once or twice on fake tensors (`torch._subclasses.FakeTensorMode`: shapes, dtypes
and storages, no data and no arithmetic), so a ViT-B at batch 64 costs about what a batch-1 trace does:

- **parameters and buffers**: their bytes as the model holds them (`dtype` is the autocast dtype, as latency's:
  parameters stay in their own dtype, fp32, and matmuls and convolutions run in bf16 / fp16);
- **inference peak**: a forward pass without grad under a `TorchDispatchMode` that follows every storage an op
  creates until it is freed (weak references, as torch's own `torch.distributed._tools.mem_tracker.MemTracker`
  does): the largest set of tensors alive at once, input and output included, plus parameters and buffers;
- **training**: parameters + gradients (one per trainable parameter) + optimizer state (SGD with momentum: one
  buffer per trainable parameter; AdamW: two, `exp_avg` and `exp_avg_sq`, in the parameter's dtype as torch.optim
  keeps them) + the activations saved for backward: a forward pass in train mode with grad, counting the unique
  storages `torch.autograd.graph.saved_tensors_hooks` packs that are not parameters or buffers.

This is the memory of tensors, not of the process: the allocator's caching and fragmentation (CUDA), a kernel's
scratch space and the framework itself are not in it. The training figure adds every gradient to every saved
activation; in a real step the first activations are freed while the last gradients are made, so it is an upper
bound of the tensors a steady-state step holds (measured: 4 to 10% above, `measure_memory`).

Why not `MemTracker` itself: it lives in a private package of `torch.distributed` (it imports DTensor and fake
collectives), and deep-copies a per-module snapshot at every op; two counters suffice here.

`measure_memory` measures what the estimate claims, on a real run: `torch.cuda.max_memory_allocated` on a GPU; on
CPU the allocations `torch.profiler.profile(profile_memory=True)` records (its `[memory]` events carry the
allocator's running total of the bytes allocated since profiling started and still alive).
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
import weakref
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from .choices import DTYPES, MEMORY_BATCH, OPTIMIZERS
from .errors import SpecError, first_line
from .latency import AUTOCAST  # choices.DTYPES -> the autocast dtype, as latency runs take it
from .report import MemoryEstimate

__all__ = ["estimate_memory", "measure_memory", "OPTIMIZER_STATES"]

# optimizer -> state tensors per trainable parameter (torch.optim: SGD(momentum>0) keeps momentum_buffer; AdamW keeps
# exp_avg and exp_avg_sq; amsgrad would add max_exp_avg_sq)
OPTIMIZER_STATES = {"sgd": 1, "adamw": 2}
assert set(OPTIMIZER_STATES) == set(OPTIMIZERS) and set(AUTOCAST) == set(DTYPES)
StageOf = Callable[[str], str]


def _bytes(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata  # the storage's identity, the same for all of its views


class _Stages:
    """The stage (by `stage_of` of the innermost module running) at any moment of a forward pass."""

    def __init__(self, model: nn.Module, stage_of: StageOf):
        self.stack: list[str] = []
        self.handles = []
        for path, m in model.named_modules():
            self.handles.append(m.register_forward_pre_hook(lambda m, a, p=path: self._enter(p)))
            self.handles.append(m.register_forward_hook(lambda m, a, o: self._leave(), always_call=True))
        self.stage_of = stage_of

    def _enter(self, path: str) -> None:
        self.stack.append(path)

    def _leave(self) -> None:
        self.stack.pop()

    @property
    def now(self) -> str:
        return self.stage_of(self.stack[-1] if self.stack else "")

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


class _LiveBytes(TorchDispatchMode):
    """Bytes of the storages ops created that are still alive; `peak` the largest total, `by_stage` the largest
    total while each stage ran. Storages in `known` (parameters, buffers) are not counted."""

    def __init__(self, known: set[int], stages: _Stages):
        super().__init__()
        self.known, self.stages = known, stages
        self.live = self.peak = 0
        self.by_stage: dict[str, int] = {}
        self.refs: WeakIdKeyDictionary = WeakIdKeyDictionary()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.track(t)
        stage = self.stages.now
        self.by_stage[stage] = max(self.by_stage.get(stage, 0), self.live)
        return out

    def track(self, t: torch.Tensor) -> None:
        st = t.untyped_storage()
        if st in self.refs or st._cdata in self.known:
            return
        n = st.nbytes()
        self.live += n
        self.peak = max(self.peak, self.live)
        self.refs[st] = weakref.ref(st, lambda _, n=n: self._free(n))

    def _free(self, n: int) -> None:
        self.live -= n


def _check(batch: int, dtype: str, optimizer: str) -> None:
    if batch not in MEMORY_BATCH:
        raise SpecError(f"memory: batch {batch!r} is out of range; allowed: {MEMORY_BATCH.lo} to {MEMORY_BATCH.hi}")
    if dtype not in DTYPES:
        raise SpecError(f"memory: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if optimizer not in OPTIMIZERS:
        raise SpecError(f"memory: optimizer {optimizer!r} is not one of {', '.join(OPTIMIZERS)}")


def _autocast(dtype: str, device: str = "cpu") -> Any:
    amp = AUTOCAST[dtype]
    return torch.autocast(device, dtype=amp) if amp is not None else nullcontext()


def estimate_memory(model: nn.Module, img_size: int, batch: int = 8, dtype: str = "fp32", optimizer: str = "adamw",
                    stage_of: StageOf | None = None, in_chans: int = 3) -> MemoryEstimate:
    """Bytes of tensors for inference and for one training step at `batch` x `in_chans` x `img_size`² (module
    docstring). `stage_of(module_path)` names the part of the model a module belongs to (default: one part,
    'model'); `model` itself is not run or changed (a fake copy is)."""
    from torch._subclasses.fake_tensor import FakeCopyMode, FakeTensorMode
    _check(batch, dtype, optimizer)
    stage_of = stage_of or (lambda path: "model")
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    buffers = list(model.buffers())
    fake = FakeTensorMode(allow_non_fake_inputs=False)
    with FakeCopyMode(fake):
        runner = copy.deepcopy(model)
    stages = _Stages(runner, stage_of)
    known = {_key(t) for t in [*runner.parameters(), *runner.buffers()]}
    try:
        with fake:
            live = _LiveBytes(known, stages)
            with torch.no_grad(), _autocast(dtype), live:
                x = torch.zeros(batch, in_chans, img_size, img_size)
                out = runner.eval()(x)
            del x, out
            saved: dict[int, int] = {}
            saved_by_stage: dict[str, int] = {}

            def pack(t: torch.Tensor) -> torch.Tensor:
                k = _key(t)
                if k not in known and k not in saved:
                    saved[k] = t.untyped_storage().nbytes()
                    stage = stages.now
                    saved_by_stage[stage] = saved_by_stage.get(stage, 0) + saved[k]
                return t

            with _autocast(dtype), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out = runner.train()(torch.zeros(batch, in_chans, img_size, img_size))
            del out
    except Exception as e:  # noqa: BLE001  an op fake tensors cannot run (data-dependent shapes): say so
        raise SpecError(f"memory: the model cannot be run on fake tensors to estimate its memory: "
                        f"{first_line(e)}") from None
    finally:
        stages.remove()
    p_bytes, b_bytes, g_bytes = _bytes(params), _bytes(buffers), _bytes(trainable)
    o_bytes = OPTIMIZER_STATES[optimizer] * g_bytes
    saved_bytes = sum(saved.values())
    return MemoryEstimate(
        batch=batch, dtype=dtype, optimizer=optimizer, params_bytes=p_bytes, buffers_bytes=b_bytes,
        activations_peak_bytes=live.peak, inference_bytes=p_bytes + b_bytes + live.peak,
        grads_bytes=g_bytes, optimizer_bytes=o_bytes, saved_bytes=saved_bytes,
        training_bytes=p_bytes + b_bytes + g_bytes + o_bytes + saved_bytes,
        peak_by_stage=live.by_stage, saved_by_stage=saved_by_stage)


# ---- measurement (tests, benchmarks)

def _profiled_peak(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated on CPU while `fn` runs and not freed before the peak, from the profiler's `[memory]`
    events. Their `Total Allocated` is the CPU allocator's running total since profiling was first switched on in
    the process; each run's baseline (the total before its first event) is subtracted."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    mem = [e["args"] for e in events if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0]
    if not mem:
        return 0
    base = mem[0]["Total Allocated"] - mem[0]["Bytes"]
    return max(a["Total Allocated"] for a in mem) - base


def measure_memory(model: nn.Module, img_size: int, batch: int = 8, dtype: str = "fp32", training: bool = False,
                   optimizer: str = "adamw", device: str = "cpu", in_chans: int = 3) -> int:
    """Measured peak bytes of tensors for inference (`training=False`: one forward pass without grad) or for one
    training step in steady state (a first step creates the optimizer state; the second, measured, runs forward,
    backward on the sum of the logits, `step` and `zero_grad`). Runs a copy of `model` on `device`: CUDA's
    `max_memory_allocated`, or on CPU the profiler's allocations (`_profiled_peak`) plus the tensors that exist
    before the measured run (parameters, buffers, optimizer state), counted by their storages."""
    _check(batch, dtype, optimizer)
    dev = torch.device(device)
    model = copy.deepcopy(model).to(dev)
    opt = None
    if training:
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trainable) if optimizer == "adamw" else torch.optim.SGD(trainable, lr=0.1,
                                                                                        momentum=0.9)

    def run() -> None:
        x = torch.zeros(batch, in_chans, img_size, img_size, device=dev)
        if not training:
            with torch.no_grad(), _autocast(dtype, dev.type):
                model.eval()(x)
            return
        with _autocast(dtype, dev.type):
            loss = model.train()(x).float().sum()
        loss.backward()
        opt.step()
        opt.zero_grad()

    if training:
        run()  # the optimizer's state exists from the first step on
    before = {_key(t): t.untyped_storage().nbytes() for t in [*model.parameters(), *model.buffers()]}
    if opt is not None:
        before |= {_key(t): t.untyped_storage().nbytes() for s in opt.state.values() for t in s.values()
                   if isinstance(t, torch.Tensor)}
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        run()
        torch.cuda.synchronize(dev)
        return int(torch.cuda.max_memory_allocated(dev))
    return sum(before.values()) + _profiled_peak(run)
