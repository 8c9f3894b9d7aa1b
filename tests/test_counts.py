"""Parameter and MAC counts against published figures, and the op handles fvcore lacks."""
from __future__ import annotations

import functools

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from playground.counts import by_prefix, count_macs, count_params

# timm's results tables / the papers: (GMACs at 224x224, M params)
REFERENCE = {
    "resnet50": (4.11, 25.56),
    "vit_base_patch16_224": (17.58, 86.57),
    "swin_tiny_patch4_window7_224": (4.51, 28.29),
    "fasternet_t0": (0.34, 3.91),
    "poolformer_s12": (1.82, 11.92),
    "efficientnet_lite0": (0.40, 4.65),
}


@functools.cache
def counted(name: str):
    """Each reference model is built and counted once per session."""
    model = timm.create_model(name, pretrained=False)
    return model, count_macs(model, torch.randn(1, 3, 224, 224)), count_params(model)


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_figures(name):
    gmacs, mparams = REFERENCE[name]
    _, macs, params = counted(name)
    assert macs.total / 1e9 == pytest.approx(gmacs, rel=0.01)
    # published to two decimals: the count must round to the published figure (within 0.005 M)
    assert round(params.total / 1e6, 2) == mparams
    assert params.trainable == params.total
    assert macs.uncounted_ops == []
    assert macs.by_module[""] == macs.total


def test_vit_attention_is_counted():
    _, macs, _ = counted("vit_base_patch16_224")
    # 12 blocks x (QK^T + attn.V) = 12 * 2 * heads * L^2 * head_dim
    assert macs.by_operator["scaled_dot_product_attention"] == 12 * 2 * 12 * 197 * 197 * 64
    assert not any("attention" in op for op in macs.uncounted_ops)
    assert macs.by_module["blocks.0.attn"] == macs.by_module["blocks.0.attn.qkv"] + \
        macs.by_module["blocks.0.attn.proj"] + 2 * 12 * 197 * 197 * 64


def test_by_module_children_sum_to_parent():
    model, macs, params = counted("resnet50")
    bm = macs.by_module
    # every counted op of a ResNet runs inside a leaf module (the residual adds and max-pool are free)
    assert bm[""] == sum(bm[name] for name, _ in model.named_children())
    assert bm["layer1"] == sum(bm[f"layer1.{i}"] for i in range(3))
    assert bm["layer2.0"] == sum(bm[f"layer2.0.{name}"] for name, _ in model.layer2[0].named_children())
    assert params.by_module["layer1"] == sum(p.numel() for p in model.layer1.parameters())
    assert set(params.by_module) == {name for name, _ in model.named_modules()}
    assert by_prefix(bm, ["layer1", "fc"]) == {"layer1": bm["layer1"], "fc": 2048 * 1000}


def test_by_prefix_aggregates_paths_that_are_not_modules():
    counts = {"": 10, "a": 6, "a.0": 2, "a.1": 4, "a.1.x": 4, "b.0": 1, "b.1": 3, "b.1.y": 3}
    assert by_prefix(counts, ["a", "b", "a.1", "c"]) == {"a": 6, "b": 4, "a.1": 4, "c": 0}


def test_op_without_handle_is_listed():
    class Inverse(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return torch.linalg.inv(self.fc(x).reshape(-1, 2, 2)).sum() + F.gelu(x).sum()

    macs = count_macs(Inverse(), torch.randn(1, 4))
    assert macs.uncounted_ops == ["aten::linalg_inv"]  # gelu and sum are free by convention, not "uncounted"
    assert macs.total == macs.by_module["fc"] == 16


class GlobalFilter(nn.Module):
    """GFNet's global filter layer (Rao et al., 2021): rfft2 -> x complex weight -> irfft2, on NHWC maps."""

    def __init__(self, h: int = 14, w: int = 14, dim: int = 8):
        super().__init__()
        self.complex_weight = nn.Parameter(torch.randn(h, w // 2 + 1, dim, 2) * 0.02)

    def forward(self, x):
        _, h, w, _ = x.shape
        y = torch.fft.rfft2(x, dim=(1, 2), norm="ortho") * torch.view_as_complex(self.complex_weight)
        return torch.fft.irfft2(y, s=(h, w), dim=(1, 2), norm="ortho")


def test_fft_global_filter_is_counted():
    model = nn.Sequential(nn.Linear(8, 8), GlobalFilter())
    macs = count_macs(model, torch.randn(2, 14, 14, 8))  # counted per image
    fft = 8 * 196 * 8  # D channels x N=H*W points x ceil(log2 196) = 8
    assert macs.by_operator == {"linear": 196 * 8 * 8, "fft_rfft2": fft, "complex_mul": 14 * 8 * 8,
                                "fft_irfft2": fft}
    assert macs.by_module["1"] == 2 * fft + 14 * 8 * 8
    assert macs.uncounted_ops == []


def test_fft_variants():
    class Spectral(nn.Module):
        def forward(self, x):  # x: (1, 6, 10, 8)
            a = torch.fft.fft(x, dim=1)  # 10*8 transforms of 6 points
            b = torch.fft.rfftn(x, s=(16, 10))  # zero-padded to 16x10 over the last two dims, 6 transforms
            c = torch.fft.irfft(torch.fft.rfft(x), n=8)  # 60 transforms of 8 points, each way
            return a.real.sum() + b.real.sum() + c.sum()

    macs = count_macs(Spectral(), torch.randn(1, 6, 10, 8))
    assert macs.by_operator == {"fft_fft": 80 * 6 * 3, "fft_rfftn": 6 * 160 * 8, "fft_rfft": 60 * 8 * 3,
                                "fft_irfft": 60 * 8 * 3}


def test_attention_with_grouped_kv_and_value_dim():
    class GQA(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)

    q, k, v = torch.randn(2, 8, 5, 16), torch.randn(2, 2, 7, 16), torch.randn(2, 2, 7, 32)
    macs = count_macs(GQA(), (q, k, v))
    assert macs.total == 8 * 5 * 7 * 16 + 8 * 5 * 7 * 32  # per image: every query head attends


def test_baddbmm_is_counted():
    class Scores(nn.Module):
        def forward(self, bias, q, k):
            return torch.baddbmm(bias, q, k.transpose(1, 2))

    macs = count_macs(Scores(), (torch.zeros(1, 5, 7), torch.randn(1, 5, 16), torch.randn(1, 7, 16)))
    assert macs.by_operator == {"baddbmm": 5 * 7 * 16}


def test_count_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5)).train()
    model[0].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    one, two = count_macs(model, torch.randn(1, 3, 8, 8)), count_macs(model, torch.randn(3, 3, 8, 8))
    assert one == two and one.total == 4 * 27 * 36 + 2 * 4 * 36  # conv + eval-mode batch norm
    assert all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN stats untouched
    params = count_params(model)
    assert (params.total, params.trainable) == (4 * 27 + 4 + 8, 4 + 8)


def _plain_activations(model: nn.Module) -> int:
    from fvcore.nn import ActivationCountAnalysis
    a = ActivationCountAnalysis(model.eval(), torch.zeros(1, 3, 224, 224))
    a.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with torch.no_grad():
        return int(a.total())


def test_activations_are_fvcores_with_attention_as_its_unfused_path(monkeypatch):
    """Fused attention counted as timm's table counts it: plain fvcore on the unfused path (its two matmuls)."""
    import timm.layers.config as config
    _, macs, _ = counted("vit_base_patch16_224")  # fused
    assert macs.activations.by_operator["scaled_dot_product_attention"] == 12 * (12 * 197 * 197 + 197 * 768)
    monkeypatch.setattr(config, "_USE_FUSED_ATTN", 0)
    assert macs.activations.total == _plain_activations(timm.create_model("vit_base_patch16_224"))
    model, resnet, _ = counted("resnet50")
    assert resnet.activations.total == _plain_activations(model)
    assert resnet.activations.by_module["layer1"] == sum(resnet.activations.by_module[f"layer1.{i}"] for i in range(3))
