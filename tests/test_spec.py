"""The spec: round trips, one-line errors for every kind of bad input, and generated specs that build or SpecError."""
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import playground as pg
from playground.modules import catalog
from playground.spec import Spec, load_spec

FULL = """
title: everything
backbone: resnet50
pretrained: false
num_classes: 10
img_size: 160
stem: {stride: 4, kernel: 7, padding: 3}
insert:
  - at: "layer*.*.bn3"
    module: se
    args: {rd_ratio: 0.25}
  - at: stage3
    module: {serial: [se, {name: eca, args: {kernel_size: 5}}]}
  - at: final
    module: {parallel: [se, eca], merge: concat}
gate: true
head_norm: layernorm
drop_path_rate: 0.1
"""


def test_yaml_round_trip():
    spec = load_spec(FULL)
    assert load_spec(spec.to_yaml()) == spec
    assert Spec.from_dict(yaml.safe_load(spec.to_yaml())) == spec
    assert load_spec(spec.to_dict()) == spec
    assert spec.insert[1].module.items[1].args == {"kernel_size": 5}


def test_json_and_file(tmp_path):
    import json
    spec = load_spec(FULL)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(spec.to_dict()))
    assert load_spec(path) == spec
    with pytest.raises(pg.SpecError, match=r"is text, not a spec; to load a file pass pathlib.Path"):
        load_spec(str(path))  # a str is text: the UI and the API can never make the server read a file


@pytest.mark.parametrize("bad,message", [
    ("backbone: resnet50\nfoo: 1", r"spec: unknown key 'foo'"),
    ("backbone: resnet50\nimg_size: big", r"img_size: 'big' is not an integer"),
    ("backbone: resnet50\nimg_size: 4", r"img_size: 4 is out of range"),
    ("backbone: resnet50\npretrained: yes please", r"pretrained: 'yes please' is not true or false"),
    ("backbone: resnet50\ninsert: [{at: stage1, module: sse}]", r"insert\[0\].module: unknown module 'sse' \(did you mean 'se'"),
    ("backbone: resnet50\ninsert: [{at: stage1, module: se, args: {ratio: 2}}]", r"se takes no argument 'ratio' \(did you mean 'rd_ratio'"),
    ("backbone: resnet50\ninsert: [{at: stage1, module: eca, args: {kernel_size: 4}}]", r"kernel_size: 4 must be an odd number"),
    ("backbone: resnet50\ninsert: [{at: stage1, module: {parallel: [se], merge: max}}]", r"merge: 'max' is not one of add, mul, concat"),
    ("backbone: resnet50\ninsert: [{at: stage1}]", r"insert\[0\]: needs `at`"),
    ("backbone: resnet50\nstem: {strid: 2}", r"stem: unknown key 'strid' \(did you mean 'stride'"),
    ("backbone: resnet50\nhead_norm: rmsnorm", r"head_norm: 'rmsnorm' is not one of"),
    ("backbone: resnet50\ndrop_path_rate: 1.5", r"drop_path_rate: 1.5 is not a number in \[0, 1\)"),
    ("backbone: [resnet50", r"spec: not valid YAML at line"),
    ("backbone: !!python/object/apply:os.system ['echo pwned']", r"spec: not valid YAML"),
    ("", r"spec: empty"),
    ("- resnet50", r"spec: expected a mapping"),
])
def test_bad_specs_give_one_line(bad, message):
    with pytest.raises(pg.SpecError, match=message) as e:
        load_spec(bad)
    assert "\n" not in str(e.value)


def test_unknown_backbone_is_one_line_when_built():
    """Parsing a spec imports no torch, so timm's registry is asked when the spec is built."""
    spec = load_spec("backbone: resnt50")
    with pytest.raises(pg.SpecError, match=r"backbone: unknown model 'resnt50' \(did you mean 'resnet50'") as e:
        pg.build(spec)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("insert,message", [
    ({"at": "stage9", "module": "se"}, r"insert\[0\].at: 'stage9': this backbone has stages 1 to 4"),
    ({"at": "stage2.block9", "module": "se"}, r"stage 2 has blocks 1 to 4"),
    ({"at": "layer9.*", "module": "se"}, r"'layer9.\*' matches no module"),
    ({"at": "fc", "module": "se"}, r"outputs \[1, 1000\], which has no spatial or token axis"),
])
def test_bad_points_give_one_line(insert, message):
    with pytest.raises(pg.SpecError, match=message):
        pg.build({"backbone": "resnet50", "insert": [insert]})


# ---- generated specs: build and run, or SpecError; never another exception

BACKBONES = ["resnet18", "convnext_atto", "vit_tiny_patch16_224", "mobilenetv3_small_100", "cifar_metaformer_pool"]
NAMES = list(catalog()) + ["bogus"]
AT = st.sampled_from(["input", "stem", "final", "stage1", "stage2", "stage3", "stage4", "stage5", "stage1.block1",
                      "stage2.block*", "stage0", "*.conv1", "blocks.*.norm1", "layer*", "nothing*", "stages.*"])
ARGS = st.dictionaries(st.sampled_from(["rd_ratio", "kernel_size", "gamma", "rd_channels", "bogus", "act_layer"]),
                       st.one_of(st.integers(-3, 9), st.floats(-1, 2, allow_nan=False), st.sampled_from(["relu", "x"])),
                       max_size=2)
LEAF = st.one_of(st.sampled_from(NAMES), st.builds(lambda n, a: {"name": n, "args": a}, st.sampled_from(NAMES), ARGS))
MODULE = st.recursive(LEAF, lambda inner: st.one_of(
    st.builds(lambda xs: {"serial": xs}, st.lists(inner, min_size=0, max_size=3)),
    st.builds(lambda xs, m: {"parallel": xs, "merge": m}, st.lists(inner, min_size=1, max_size=3),
              st.sampled_from(["add", "mul", "concat", "max"]))), max_leaves=4)
SPECS = st.fixed_dictionaries(
    {"backbone": st.sampled_from(BACKBONES),
     "insert": st.lists(st.fixed_dictionaries({"at": AT, "module": MODULE}), max_size=3)},
    optional={"img_size": st.sampled_from([16, 32, 64, 96, 7, None]),
              "stem": st.fixed_dictionaries({}, optional={"stride": st.integers(0, 9), "kernel": st.integers(0, 9),
                                                          "padding": st.integers(-1, 4)}),
              "gate": st.booleans(), "num_classes": st.sampled_from([None, 0, 1, 7]),
              "head_norm": st.sampled_from([None, "layernorm", "groupnorm", "rmsnorm"]),
              "drop_path_rate": st.sampled_from([None, 0.0, 0.2, 2.0])})


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(SPECS)
def test_generated_specs_build_and_run_or_raise_spec_error(data):
    try:
        built = pg.build(data)
    except pg.SpecError as e:
        assert "\n" not in str(e) and str(e)
        return
    n = built.img_size
    with torch.no_grad():
        out = built.model.eval()(torch.randn(1, 3, n, n))
    assert out.shape[0] == 1 and out.shape[-1] == (data.get("num_classes") or built.base.num_classes)
