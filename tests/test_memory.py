"""The memory estimate (`playground.memory`) against a measured run, and through analyze, the CLI and the page.

The measurement on CPU is torch.profiler's record of the CPU allocator (`profile_memory=True`): every allocation and
free of the real kernels, independent of the estimate's fake-tensor liveness tracking. The estimate counts tensors
only and the training figure adds all gradients to all saved activations (an upper bound of a steady-state step),
hence the 15% tolerance; the measured figures are exact for the run but vary a little with the CPU's kernels.
"""
from __future__ import annotations

import pytest
import torch

from playground import SpecError
from playground.analyze import analyze
from playground.build import build
from playground.memory import estimate_memory, measure_memory

TOLERANCE = 0.15


@pytest.mark.parametrize("backbone", ["resnet50", "vit_small_patch16_224", "convnext_tiny"])
def test_estimate_is_within_15_percent_of_the_measured_peak(backbone, one_thread):
    model = build({"backbone": backbone}, lean=True).model
    est = estimate_memory(model, 224, batch=8, dtype="fp32", optimizer="adamw")
    inference = measure_memory(model, 224, batch=8)
    training = measure_memory(model, 224, batch=8, training=True, optimizer="adamw")
    assert est.inference_bytes == pytest.approx(inference, rel=TOLERANCE), (est.inference_bytes, inference)
    assert est.training_bytes == pytest.approx(training, rel=TOLERANCE), (est.training_bytes, training)


def test_parts_add_up_and_follow_the_optimizer():
    model = build({"backbone": "resnet18", "img_size": 64}).model
    n = sum(p.numel() for p in model.parameters())
    adamw = estimate_memory(model, 64, batch=2, optimizer="adamw")
    sgd = estimate_memory(model, 64, batch=2, optimizer="sgd")
    assert adamw.params_bytes == adamw.grads_bytes == 4 * n  # fp32 parameters, one gradient each
    assert (adamw.optimizer_bytes, sgd.optimizer_bytes) == (8 * n, 4 * n)  # exp_avg + exp_avg_sq; momentum
    assert adamw.training_bytes == (adamw.params_bytes + adamw.buffers_bytes + adamw.grads_bytes
                                    + adamw.optimizer_bytes + adamw.saved_bytes)
    assert adamw.inference_bytes == adamw.params_bytes + adamw.buffers_bytes + adamw.activations_peak_bytes
    # the peak is of tensors alive at once: at least the input and the first conv's output, less than their sum
    assert 2 * 3 * 64 * 64 * 4 + 2 * 64 * 32 * 32 * 4 <= adamw.activations_peak_bytes < adamw.saved_bytes


def test_batch_and_dtype_scale_the_activations():
    model = build({"backbone": "resnet18", "img_size": 64}).model
    one, two, four = (estimate_memory(model, 64, batch=b) for b in (1, 2, 4))
    # saved activations grow linearly with the batch (BatchNorm's per-channel statistics do not grow)
    assert four.saved_bytes - one.saved_bytes == 3 * (two.saved_bytes - one.saved_bytes) > 0
    bf16_two, bf16_four = (estimate_memory(model, 64, batch=b, dtype="bf16") for b in (2, 4))
    assert bf16_four.params_bytes == four.params_bytes  # autocast: parameters stay fp32 ...
    # ... and convolutions save bf16 copies of them once (autocast's cast cache), but bf16 activations per image
    assert bf16_four.saved_bytes - bf16_two.saved_bytes < four.saved_bytes - two.saved_bytes


def test_analyze_splits_by_stage_and_refuses_bad_options():
    r = analyze({"backbone": "resnet18", "img_size": 64, "insert": [{"at": "stage2", "module": "se"}]},
                memory={"batch": 4, "optimizer": "sgd"})
    m = r.memory
    assert (m.batch, m.dtype, m.optimizer) == (4, "fp32", "sgd")
    assert set(m.saved_by_stage) <= set(r.params.by_stage) and sum(m.saved_by_stage.values()) == m.saved_bytes
    assert max(m.peak_by_stage.values()) == m.activations_peak_bytes
    assert analyze({"backbone": "resnet18", "img_size": 64}).memory is None  # the cached static report has none
    for bad, word in [({"batch": 0}, "batch"), ({"dtype": "fp64"}, "dtype"), ({"optimizer": "lion"}, "optimizer"),
                      ({"batc": 2}, "unknown option")]:
        with pytest.raises(SpecError, match=word):
            analyze({"backbone": "resnet18", "img_size": 64}, memory=bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: torch.cuda.max_memory_allocated")
@pytest.mark.parametrize("backbone", ["resnet50", "vit_small_patch16_224", "convnext_tiny"])
def test_estimate_against_cuda_max_memory_allocated(backbone):
    model = build({"backbone": backbone}).model
    est = estimate_memory(model, 224, batch=8)
    for training, figure in ((False, est.inference_bytes), (True, est.training_bytes)):
        measured = measure_memory(model, 224, batch=8, training=training, device="cuda")
        assert figure == pytest.approx(measured, rel=TOLERANCE), (training, figure, measured)
