"""analyze(): the report's figures against published tables, the split by stage and insertion, the contract."""
import json

import pytest
import timm
import torch
from torch import nn

import playground as pg
from playground.analyze import analyze

CONTRACT = ["spec", "backbone", "img_size", "modified", "params", "macs", "activations", "points", "shapes", "tree", "tree_diff",
            "summary", "stem", "weights", "latency", "base_latency", "memory", "predictions", "warnings"]

# (params M, GMACs) from timm's results tables and the papers, at 224
PUBLISHED = {
    "resnet50": (25.56, 4.11),
    "vit_base_patch16_224": (86.57, 17.58),
    "swin_tiny_patch4_window7_224": (28.29, 4.51),
    "fasternet_t0": (3.91, 0.34),
    "poolformer_s12": (11.92, 1.82),
    "efficientnet_lite0": (4.65, 0.40),
}


@pytest.mark.parametrize("backbone", list(PUBLISHED))
def test_report_matches_published_figures(backbone):
    params, gmacs = PUBLISHED[backbone]
    r = analyze({"backbone": backbone})
    assert round(r.params.total / 1e6, 2) == params
    assert r.macs.total / 1e9 == pytest.approx(gmacs, rel=0.01)
    assert r.macs.uncounted_ops == []
    assert sum(r.params.by_stage.values()) == r.params.total
    assert sum(r.macs.by_stage.values()) == r.macs.total
    assert r.params.delta == r.macs.delta == 0


def test_vit_report_counts_attention():
    r = analyze({"backbone": "vit_base_patch16_224"})
    assert not any("attention" in op for op in r.macs.uncounted_ops)
    assert r.macs.by_operator.get("scaled_dot_product_attention", 0) > 0.7e9


@timm.models.register_model
def _uncountable_net(pretrained=False, **kwargs):
    return _Uncountable(**kwargs)


class _Uncountable(nn.Module):
    """A tiny backbone whose feature map goes through an op no MAC counter knows (a cumulative sum)."""

    def __init__(self, num_classes=1000, **_):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, 4)
        self.stages = nn.Sequential(nn.Sequential(nn.Conv2d(16, 16, 3, padding=1)))
        self.head = nn.Linear(16, num_classes)
        self.num_classes = num_classes
        self.feature_info = [dict(module="stages.0", num_chs=16, reduction=4)]

    def forward_features(self, x):
        return torch.cumsum(self.stages(self.stem(x)), dim=-1)

    def forward_head(self, x):
        return self.head(x.mean((2, 3)))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def test_an_op_we_cannot_count_is_listed():
    r = analyze({"backbone": "_uncountable_net", "img_size": 32})
    assert r.macs.uncounted_ops == ["aten::cumsum"]
    assert any("aten::cumsum" in w for w in r.warnings)


def test_insertions_add_up_to_the_delta():
    r = analyze({"backbone": "efficientnet_lite0", "insert": [
        {"at": "input", "module": "eca"}, {"at": "stage3", "module": "se"},
        {"at": "blocks.5.*.bn2", "module": {"serial": ["se", "eca"]}},
        {"at": "final", "module": {"parallel": ["se", "cbam"], "merge": "concat"}}]})
    by_p, by_m = r.params.by_insert, r.macs.by_insert
    assert len(by_p) == len(by_m) == 1 + 1 + 4 + 1
    assert sum(d.count for d in by_p) == r.params.delta > 0
    assert sum(d.count for d in by_m) == r.macs.delta > 0
    assert r.params.total == r.params.base_total + r.params.delta
    assert sum(r.params.by_stage.values()) == r.params.total
    assert sum(r.macs.by_stage.values()) == r.macs.total
    # the stitched modules are identifiable in the tree and its diff
    assert all(path in r.inserted for path in (d.path for d in by_p))
    assert "+" in r.tree_diff and "LayoutAdapter" in r.tree_diff and "SEModule" in r.tree


def test_stem_stride_changes_macs_and_shapes_not_params():
    base = analyze({"backbone": "resnet50"})
    s4 = analyze({"backbone": "resnet50", "stem": {"stride": 4}})
    assert s4.params.delta == 0
    assert s4.macs.base_total == base.macs.total
    assert 0.2 < s4.macs.total / base.macs.total < 0.3  # every stage at a quarter of the pixels
    shapes = {s.point: s.shape for s in s4.shapes}
    assert shapes["stage1"] == [1, 256, 28, 28] and shapes["stage4"] == [1, 2048, 4, 4]


def test_report_is_json_with_every_contract_field_and_is_cached():
    spec = {"backbone": "resnet50", "insert": [{"at": "stage2", "module": "eca"}]}
    r = analyze(spec)
    data = json.loads(r.to_json())
    assert all(k in data for k in CONTRACT)
    assert set(data["params"]) >= {"total", "trainable", "base_total", "delta", "by_stage", "by_insert"}
    assert set(data["macs"]) >= {"total", "base_total", "delta", "by_stage", "by_insert", "uncounted_ops"}
    assert data["points"][0] == {"name": "input", "path": "conv1", "layout": "NCHW", "channels": 3,
                                 "shape": [1, 3, 224, 224], "num_prefix_tokens": 0, "reduction": 1.0,
                                 "output_index": None}
    assert "Conv2d (conv1)" in data["summary"] and "Total params: 25,557," in data["summary"]
    again = analyze(spec)
    assert again.to_dict() == r.to_dict() and again is not r


def test_summary_depth_is_selectable():
    shallow = analyze({"backbone": "resnet18"}, summary_depth=1)
    deep = analyze({"backbone": "resnet18"}, summary_depth=3)
    assert "BasicBlock" not in shallow.summary and "BasicBlock" in deep.summary
    with pytest.raises(pg.SpecError, match="summary_depth"):
        analyze({"backbone": "resnet18"}, summary_depth=0)


def test_latency_and_predictions_in_the_report(cat_photo):
    from skimage import data
    r = analyze({"backbone": "efficientnet_lite0", "pretrained": True, "gate": True,
                 "insert": [{"at": "stage4", "module": "se"}]},
                latency={"batch": 2, "min_run_time": 0.2, "max_run_time": 2}, images=[data.chelsea()], topk=3)
    lt = r.latency
    assert lt.device == "cpu" and lt.batch == 2 and lt.median_ms > 0 and lt.iqr_ms >= 0
    assert lt.throughput == pytest.approx(2 * 1000 / lt.median_ms)
    assert lt.tflops == pytest.approx(2 * r.macs.total * 2 / (lt.median_ms / 1000) / 1e12)
    pred = r.predictions[0]
    assert pred.top[0].index in range(281, 286)  # a cat class
    assert pred.agreement.top1_agree and pred.agreement.kl_divergence == 0.0  # gated: identical
    assert pred.agreement.max_abs_logit_diff == 0.0  # bit for bit, on any CPU
    assert r.weights.source.startswith("bundled:")
    assert "blocks_4_after.0.module.gate" in r.weights.missing  # stitched: not in the checkpoint, gated or not


def test_ungated_se_changes_pretrained_predictions_and_says_so():
    from skimage import data
    spec = {"backbone": "efficientnet_lite0", "pretrained": True, "insert": [{"at": "stage4", "module": "se"}]}
    r = analyze(spec, images=[data.chelsea(), data.coffee()], topk=5)
    for pred in r.predictions:
        assert pred.base_top[0].index in (281, 282, 283, 284, 285, 967)  # the base still sees cat / espresso
        assert pred.agreement.kl_divergence > 1e-4  # a random SE rescales stage-4 channels
        assert [t.prob for t in pred.top] != [t.prob for t in pred.base_top]
        assert {c.index for c in pred.agreement.rank_changes} <= {t.index for t in pred.base_top}
    assert any("start from random weights" in w for w in r.warnings)
    gated = analyze({**spec, "gate": True}, images=[data.chelsea(), data.coffee()], topk=5)
    assert all(p.top == p.base_top and p.agreement.top1_agree for p in gated.predictions)


def test_concurrent_requests_share_cached_models_safely():
    """The app serves requests in threads: the same cached models get probed, counted and run at once."""
    from concurrent.futures import ThreadPoolExecutor

    from skimage import data

    from playground.analyze import _builts, _reports
    spec = {"backbone": "resnet18", "img_size": 96}
    _reports.clear(), _builts.clear()
    jobs = [lambda: analyze(spec).to_dict(), lambda: analyze(spec, images=[data.coffee()]).to_dict(),
            lambda: [p.to_dict() for p in pg.points("resnet18", 96)],
            lambda: analyze({**spec, "insert": [{"at": "stage2", "module": "se"}]}).to_dict()] * 3
    with ThreadPoolExecutor(6) as pool:
        results = [f.result() for f in [pool.submit(j) for j in jobs]]
    plain = [r for r in results[0::4]] + [{k: v for k, v in r.items() if k != "predictions"} | {"predictions": None}
                                           for r in results[1::4]]
    assert all(r == plain[0] for r in plain)
    assert all(r == results[2] for r in results[2::4]) and results[2][0]["name"] == "input"
    assert len({r["params"]["total"] for r in results[3::4]}) == 1


def test_activations_split_by_stage_and_insertion():
    r = analyze({"backbone": "resnet18", "img_size": 64, "insert": [{"at": "stage2", "module": "se"}]})
    a = r.activations
    assert sum(a.by_stage.values()) == a.total and a.by_stage.keys() == r.params.by_stage.keys()
    # SE on 128 channels at 8x8: its two 1x1 convs output 8 and 128 elements (fvcore counts conv outputs only)
    assert a.delta == sum(i.count for i in a.by_insert) == 8 + 128
    base = analyze({"backbone": "resnet18", "img_size": 64})
    assert a.base_total == base.activations.total
