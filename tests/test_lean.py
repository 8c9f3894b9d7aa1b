"""Lean models for counting (issue 13): no random initialisation, the same Report to the last number.

Each case compares the whole static Report of a lean build with that of an ordinary, fully initialised build of the
same spec: params and MACs (totals, by stage, by insert, by operator), uncounted ops, points, shapes, the module
tree and its diff, torchinfo's table, the stem change and warnings.
"""
import threading

import pytest
import timm
import torch
from torch import nn

from playground import hollow, lean
from playground.analyze import _builts, _reports, analyze, cached_build, spec_key
from playground.build import build
from playground.counts import count_macs
from playground.errors import SpecError
from playground.hollow import hollow_copy
from playground.spec import load_spec

SPECS = {
    "resnet50_se_bn3": {"backbone": "resnet50", "insert": [{"at": "layer*.*.bn3", "module": "se"}]},
    "vit_tiny_serial_final": {"backbone": "vit_tiny_patch16_224",
                              "insert": [{"at": "final", "module": {"serial": ["se", "eca"]}}]},
    "swin_tiny": {"backbone": "swin_tiny_patch4_window7_224"},  # relative position index, shifted-window masks
    "convnext_atto": {"backbone": "convnext_atto"},
    "coatnet_nano_se": {"backbone": "coatnet_nano_rw_224", "insert": [{"at": "stage2", "module": "se"}]},
    "efficientnet_lite0": {"backbone": "efficientnet_lite0"},
    # the base counted separately (stem change), a model of its own (num_classes, head norm), a rebuilt grid
    "resnet18_stem_head": {"backbone": "resnet18", "img_size": 96, "stem": {"stride": 4}, "num_classes": 10,
                           "head_norm": "layernorm"},
    "swin_stride_gate": {"backbone": "swin_tiny_patch4_window7_224", "img_size": 112, "stem": {"stride": 8}, "gate": True,
                         "insert": [{"at": "stage1", "module": "eca"}]},
}


def _zero(model: nn.Module) -> bool:
    return not any(bool(p.any()) for p in model.parameters())


@pytest.mark.parametrize("name", list(SPECS))
def test_lean_report_equals_the_fully_initialised_one(name, monkeypatch):
    monkeypatch.setattr(hollow, "HOLLOW_ABOVE_PARAMS", 0)  # products skipped at any size
    spec = SPECS[name]
    ordinary, slim = build(spec), build(spec, lean=True)
    assert slim.lean and not ordinary.lean
    assert _zero(slim.base) and not _zero(ordinary.base)  # lean for real, not a fallback
    assert hollow_copy(slim.model) is not None  # and its Linear layers skip their products
    want, got = analyze(ordinary).to_dict(), analyze(slim).to_dict()
    assert got == want, [k for k in want if got[k] != want[k]]


@pytest.mark.parametrize("backbone", ["swin_tiny_patch4_window7_224", "coatnet_nano_rw_224"])
def test_buffers_are_computed_not_left_uninitialised(backbone):
    """Relative position indices and attention masks are data: equal to an ordinary model's, element for element
    (Swin's masks follow `norm1.weight` onto the meta device and come back through timm's hook)."""
    ordinary, slim = timm.create_model(backbone), lean.create(timm.create_model, backbone)
    want, got = dict(ordinary.named_buffers()), dict(slim.named_buffers())
    assert got.keys() == want.keys() and any("relative_position" in k for k in want)
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert _zero(slim)


def test_parameters_share_one_storage_and_ties_stay_tied():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.head = nn.Linear(64, 32), nn.Linear(32, 64)
            self.head.weight = nn.Parameter(torch.randn(64, 32))
            self.out = nn.Linear(32, 64)
            self.out.weight = self.head.weight

    ordinary, slim = Tied(), lean.create(Tied)
    assert [n for n, _ in slim.named_parameters()] == [n for n, _ in ordinary.named_parameters()]
    assert slim.out.weight is slim.head.weight
    assert len({p.untyped_storage().data_ptr() for p in slim.parameters()}) == 1
    assert slim.embed.weight.untyped_storage().nbytes() == 64 * 32 * 4  # the largest parameter, once


class _PersistentFromParam(nn.Module):
    """A persistent buffer made on the parameter's device: only an ordinary creation knows its value."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("table", torch.arange(4.0, device=self.fc.weight.device))


class _ReadsWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.scale = float(self.fc.weight.detach().abs().sum())  # fails on the meta device


@pytest.mark.parametrize("cls", [_PersistentFromParam, _ReadsWeights])
def test_what_cannot_be_lean_is_created_the_ordinary_way(cls):
    model = lean.create(cls)
    assert not _zero(model) and all(not t.is_meta for t in [*model.parameters(), *model.buffers()])
    if cls is _PersistentFromParam:
        assert torch.equal(model.table, torch.arange(4.0))


def test_lean_creation_is_inert_on_other_threads():
    """The registration hook is global in torch; only the thread that creates a lean model is affected."""
    made = {}
    with lean._parameters_on_meta():
        worker = threading.Thread(target=lambda: made.setdefault("fc", nn.Linear(8, 8)))
        worker.start()
        worker.join()
        here = nn.Linear(8, 8)
    assert here.weight.is_meta and not made["fc"].weight.is_meta and bool(made["fc"].weight.any())
    assert not nn.Linear(8, 8).weight.is_meta  # and nothing is left switched on


def test_init_of_meta_parameters_is_skipped(monkeypatch):
    """On the meta device init changes nothing but still runs torch's Python meta kernels: it is skipped, whether
    the tensor comes by position or by keyword (torch.nn.init passes `tensor=`)."""
    seen = []
    real = torch.Tensor.normal_
    monkeypatch.setattr(torch.Tensor, "normal_", lambda self, *a, **k: seen.append(self) or real(self, *a, **k))
    with lean._parameters_on_meta():
        layer = nn.Linear(4, 4)
        nn.init.normal_(layer.weight)
        torch.nn.init.trunc_normal_(layer.weight)
    assert layer.weight.is_meta and not seen
    layer.weight.detach().normal_()  # and only there
    assert seen


class _OddUse(nn.Module):
    """A Linear weight used outside a product: the hollow trace cannot run it, the ordinary count does."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 8, 3), nn.Linear(8, 8)

    def forward(self, x):
        x = self.conv(x).mean((2, 3))
        return self.fc(x) + self.fc.weight.sum()


def test_hollow_count_falls_back_on_ops_it_does_not_support(monkeypatch):
    monkeypatch.setattr(hollow, "HOLLOW_ABOVE_PARAMS", 0)
    model = lean.create(_OddUse).eval()
    x = torch.zeros(1, 3, 16, 16)
    assert hollow_copy(model) is not None
    assert count_macs(model, x, skip_zero_products=True) == count_macs(model, x)


def test_hollow_leaves_the_model_and_non_zero_layers_alone():
    model = lean.create(timm.create_model, "vit_tiny_patch16_224")
    model.head = nn.Linear(192, 10)  # random weights: computed, not skipped
    assert hollow_copy(model, above=10_000_000) is None  # 5.5 M parameters in Linear layers: not worth it
    copy = hollow_copy(model, above=0)
    assert type(copy.head.weight) is nn.Parameter and type(copy.blocks[0].mlp.fc1.weight).__name__ == "Hollow"
    assert type(model.blocks[0].mlp.fc1.weight) is nn.Parameter  # the original is untouched
    assert copy.blocks[0].norm1.weight is model.blocks[0].norm1.weight  # tensors shared, not copied


def test_static_analysis_counts_a_lean_build_and_everything_else_an_ordinary_one(monkeypatch):
    from skimage import data
    spec = load_spec({"backbone": "resnet18", "img_size": 64, "insert": [{"at": "stage3", "module": "se"}]})
    _reports.clear(), _builts.clear()
    static = analyze(spec)
    assert _builts.get("lean|" + spec_key(spec)).lean and _builts.get(spec_key(spec)) is None
    with_images = analyze(spec, images=[data.chelsea()])
    ordinary = cached_build(spec)
    assert not ordinary.lean and not _zero(ordinary.model)  # predictions come from initialised weights
    assert with_images.predictions and static.to_dict() == {**with_images.to_dict(), "predictions": None}
    with pytest.raises(SpecError, match="counting only"):
        analyze(build(spec, lean=True), images=[data.chelsea()])

    _reports.clear(), _builts.clear()
    monkeypatch.setenv("PLAYGROUND_LEAN", "0")  # the old path, for benchmarks
    assert analyze(spec).to_dict() == static.to_dict()
    assert _builts.get("lean|" + spec_key(spec)) is None and _builts.get(spec_key(spec)) is not None


def test_weights_are_loaded_into_ordinary_models(tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "r18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), ckpt)
    built = build({"backbone": "resnet18", "checkpoint": str(ckpt)}, lean=True)
    assert not built.lean and not _zero(built.model)


@pytest.mark.parametrize("backbone", ["resnet18", "swin_tiny_patch4_window7_224"])
def test_the_point_menu_after_a_stem_change_is_the_full_builds(backbone):
    """The page's position menu after a stem change comes from a lean build (`workers.jobs.points`)."""
    from playground.workers.jobs import points
    spec = load_spec({"backbone": backbone, "stem": {"stride": 8}})
    assert points(spec) == [p.to_dict() for p in build(spec).points]
