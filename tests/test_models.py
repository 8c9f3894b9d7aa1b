"""The project's own timm models: SpectFormer-H (playground/models/spectformer.py) and the CIFAR MetaFormer of
seed 000 (playground/models/metaformer_cifar.py)."""
import copy

import pytest
import timm
import torch
from fvcore.nn import FlopCountAnalysis

import playground.models  # noqa: F401  (registers the models into timm)
from playground.models.metaformer_cifar import CIFAR10_MEAN
from playground.models.spectformer import SpectralGatingNetwork, checkpoint_filter_fn

SPECTFORMER_PARAMS = {"spectformer_s": 22.2e6, "spectformer_b": 33.1e6, "spectformer_l": 54.7e6}
CIFAR_MODELS = ("cifar_metaformer_pool", "cifar_metaformer_attn", "cifar_metaformer_hybrid")


def _fvcore(model: torch.nn.Module, x: torch.Tensor) -> FlopCountAnalysis:
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis


@pytest.fixture(scope="module")
def spectformer_s() -> torch.nn.Module:
    return timm.create_model("spectformer_s").eval()


def test_models_registered_without_weights():
    assert set(SPECTFORMER_PARAMS) <= set(timm.list_models("spectformer*"))
    assert set(CIFAR_MODELS) <= set(timm.list_models("cifar_metaformer*"))
    for name in ("spectformer_s", "cifar_metaformer_pool"):
        with pytest.raises(RuntimeError, match="No pretrained weights"):
            timm.create_model(name, pretrained=True)


@pytest.mark.parametrize("name", sorted(SPECTFORMER_PARAMS))
def test_spectformer_params_match_published(name):
    with torch.device("meta"):  # no weight init: fast
        model = timm.create_model(name)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n / SPECTFORMER_PARAMS[name] - 1) < 0.005, n


def test_spectformer_api(spectformer_s):
    m = spectformer_s
    cfg = m.pretrained_cfg
    assert cfg["input_size"] == (3, 224, 224) and cfg["interpolation"] == "bicubic" and cfg["crop_pct"] == 0.9
    assert m.get_submodule(cfg["first_conv"]).stride == (2, 2)
    assert cfg["classifier"] == ("head", "aux_head") and m.get_classifier() is m.head
    assert m.default_cfg is cfg and "url" not in cfg and "hf_hub_id" not in cfg
    assert m.num_classes == 1000 and m.num_features == 448
    assert [f["module"] for f in m.feature_info] == [f"stages.{i}" for i in range(4)]
    # stages 1-2 spectral, sized for 224 as in the official code; stages 3-4 attention
    filters = [g.complex_weight.shape[:2] for g in m.modules() if isinstance(g, SpectralGatingNetwork)]
    assert filters == [(56, 29)] * 3 + [(28, 15)] * 4
    assert type(m.stages[2].blocks[0].attn).__name__ == "Attention"


def test_spectformer_forward_224_and_other_sizes(spectformer_s):
    with torch.no_grad():
        assert spectformer_s(torch.randn(2, 3, 224, 224)).shape == (2, 1000)
        # built for 224, run at 160: the filters are resampled to the runtime grid
        feats = spectformer_s.forward_features(torch.randn(1, 3, 160, 160))
        assert feats.shape == (1, 448, 5, 5)
        assert spectformer_s.forward_head(feats).shape == (1, 1000)
        assert spectformer_s.forward_head(feats, pre_logits=True).shape == (1, 448)
    m = timm.create_model("spectformer_s", img_size=160, drop_path_rate=0.1)
    assert m.stages[0].blocks[0].attn.complex_weight.shape[:2] == (40, 21)
    assert m.stages[1].blocks[0].attn.complex_weight.shape[:2] == (20, 11)
    m.train()
    assert m(torch.randn(2, 3, 160, 160)).shape == (2, 1000)


def test_spectformer_stem_stride_change_on_built_model(spectformer_s):
    m = copy.deepcopy(spectformer_s)
    x = torch.randn(1, 3, 96, 96)
    m.stem.conv[0].stride = (1, 1)  # what the builder does to change the embedding stride
    with torch.no_grad():
        feats = timm.models.FeatureListNet(m, out_indices=(0, 1, 2, 3), flatten_sequential=True)(x)
        assert [f.shape[-1] for f in feats] == [48, 24, 12, 6]
        assert m(x).shape == (1, 1000)
    m.stem.conv[0].stride = (4, 4)
    with torch.no_grad():
        assert m.forward_features(x).shape == (1, 448, 2, 2)
        assert m(x).shape == (1, 1000)


def test_spectformer_features_only_matches_feature_info():
    m = timm.create_model("spectformer_s", features_only=True).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        feats = m(x)
    assert m.feature_info.channels() == [64, 128, 320, 448]
    assert m.feature_info.reduction() == [4, 8, 16, 32]
    for f, c, r in zip(feats, m.feature_info.channels(), m.feature_info.reduction()):
        assert f.shape == (1, c, 128 // r, 128 // r)


def test_spectformer_num_classes_and_reset():
    m = timm.create_model("spectformer_s", num_classes=6).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert m(x).shape == (1, 6)
        assert m.aux_head.out_features == 6
        m.reset_classifier(0)
        assert m(x).shape == (1, 448) and m.aux_head is None
        m.reset_classifier(3, global_pool="avg")
        assert m(x).shape == (1, 3)
    m = timm.create_model("spectformer_s", num_classes=6, token_label=False)
    assert "aux_head" not in str(m) and m.get_classifier().out_features == 6


def test_spectformer_official_checkpoint_remap():
    """An official-layout state dict (patch_embed1, block1.0, norm1..norm4, 224 filters) loads into a 160 model."""
    src = timm.create_model("spectformer_s", num_classes=6)
    official = {}
    for k, v in src.state_dict().items():
        k = k.replace("stem.", "patch_embed1.")
        for i in range(4):
            k = k.replace(f"stages.{i}.downsample.", f"patch_embed{i + 1}.")
            k = k.replace(f"stages.{i}.blocks.", f"block{i + 1}.")
            k = k.replace(f"stages.{i}.norm.", f"norm{i + 1}.")
        official["norm4." + k[5:] if k.startswith("norm.") else k] = v
    dst = timm.create_model("spectformer_s", num_classes=6, img_size=160)
    dst.load_state_dict(checkpoint_filter_fn(official, dst), strict=True)
    assert torch.equal(dst.head.weight, src.head.weight)


def test_spectformer_fvcore_traces(spectformer_s):
    analysis = _fvcore(spectformer_s, torch.randn(1, 3, 224, 224))
    total = analysis.total()
    unsupported = analysis.unsupported_ops()
    # raw fvcore: spectral filters (FFT) and fused attention are not counted; the rest is ~3.93 GMACs
    assert 3.5e9 < total < 4.5e9, total
    assert "aten::fft_rfft2" in unsupported and "aten::fft_irfft2" in unsupported
    # after a stem stride change the filter resampling is traced too
    m = copy.deepcopy(spectformer_s)
    m.stem.conv[0].stride = (1, 1)
    assert _fvcore(m, torch.randn(1, 3, 64, 64)).total() > 0


@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_cifar_metaformer_defaults(name):
    m = timm.create_model(name)
    cfg = m.pretrained_cfg
    assert cfg["input_size"] == (3, 32, 32) and cfg["num_classes"] == 10 and cfg["mean"] == CIFAR10_MEAN
    assert m.get_submodule(cfg["first_conv"]) is m.stem.conv and m.get_classifier() is m.get_submodule("head.fc")
    assert m.num_classes == 10 and m.num_features == 64
    x = torch.randn(2, 3, 32, 32)
    assert m(x).shape == (2, 10)
    assert m.forward_head(m.forward_features(x), pre_logits=True).shape == (2, 64)
    m.reset_classifier(6)
    assert m(x).shape == (2, 6)


def test_cifar_metaformer_stem_stride():
    x = torch.randn(1, 3, 32, 32)
    for stride, size, kernel in ((2, 16, 4), (4, 8, 7)):
        m = timm.create_model("cifar_metaformer_pool", stem_stride=stride, features_only=True)
        assert m.feature_info.reduction() == [stride] * 4
        assert m.stem.conv.kernel_size == (kernel, kernel)
        assert [f.shape for f in m(x)] == [(1, 64, size, size)] * 4
    with pytest.raises(ValueError, match="stem_stride"):
        timm.create_model("cifar_metaformer_pool", stem_stride=3)


def test_cifar_metaformer_mixers_switchable():
    def kinds(model):
        return [type(s.blocks[0].attn).__name__ for s in model.stages]
    assert kinds(timm.create_model("cifar_metaformer_pool")) == ["Pooling"] * 4
    assert kinds(timm.create_model("cifar_metaformer_attn")) == ["Attention2d"] * 4
    assert kinds(timm.create_model("cifar_metaformer_hybrid")) == ["Pooling"] * 2 + ["Attention2d"] * 2
    m = timm.create_model("cifar_metaformer_pool", mixers=("attn", "pool", "pool", "attn"))
    assert kinds(m) == ["Attention2d", "Pooling", "Pooling", "Attention2d"]
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match="mixer"):
        timm.create_model("cifar_metaformer_pool", mixers=("pool", "conv", "pool", "pool"))


def test_cifar_metaformer_head_norm_toggle():
    on = timm.create_model("cifar_metaformer_pool")
    off = timm.create_model("cifar_metaformer_pool", head_norm=False)
    assert type(on.head.norm).__name__ == "GroupNorm1" and isinstance(off.head.norm, torch.nn.Identity)
    assert str(on) != str(off)
    n_on, n_off = (sum(p.numel() for p in m.parameters()) for m in (on, off))
    assert n_on - n_off == 2 * 64


def test_cifar_metaformer_hierarchical_option():
    m = timm.create_model("cifar_metaformer_hybrid", dims=(32, 64, 128, 256), downsample_strides=(1, 2, 2, 2))
    assert m.feature_info[-1] == dict(num_chs=256, reduction=16, module="stages.3")
    assert m.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 256, 2, 2)


def test_cifar_metaformer_macs_stride2_vs_stride4():
    """Seed 000, tip 3: 8x8 maps (stride 4) cost about a quarter of 16x16 maps (stride 2)."""
    x = torch.randn(1, 3, 32, 32)
    macs = {s: _fvcore(timm.create_model("cifar_metaformer_pool", stem_stride=s).eval(), x).total() for s in (2, 4)}
    assert 3.5 < macs[2] / macs[4] < 4.5, macs  # measured 3.91 (69.2 M vs 17.7 M)
