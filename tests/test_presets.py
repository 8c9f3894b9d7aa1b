"""Presets (playground/presets/*.yaml): every one loads, builds and analyzes, and the numbers its description states are the
measured ones.

CLAIMS lists, per preset, phrases quoted from its description and what each one states. A phrase must appear in
the description word for word, and the measured value must match the LAST number in the phrase (so
"ResNet-50: 25,557,032" claims 25,557,032):
    params / base_params / delta_params    Report.params total / base_total / delta, exactly
    macs / base_macs / delta_macs          Report.macs, rounded as written: "69.2 MMACs", "17.58 GMACs", "48 MACs"
    shape:<point>                          the point's map "HxW" (NCHW, NHWC) or "tokens x channels" (NLC)
    stage_maps                             every stage's map in order, "56x56/28x28/14x14/7x7"
    warning / tree                         the phrase appears in a warning / in the printed module tree
    error                                  building fails with a SpecError whose message contains the phrase
So a preset whose numbers change fails here until its description is brought up to date, and a new preset fails
until its claims are listed.

A preset that fails on purpose (seed003_swin_stride3) is an ordinary, valid spec: the Spec stays strict (no
`expect_error` key), listing and loading it work, and picking it in the UI or the CLI shows the one-line SpecError,
which is what it demonstrates. Its description says "Expected to fail" and quotes the message.
"""
import re

import pytest

from playground.analyze import analyze
from playground.cli import main as cli_main
from playground.errors import SpecError
from playground.presets import list_presets, load_preset, preset_files

CLAIMS = {
    # classics
    "se_resnet50": [("params", "seresnet50: 28,088,024"), ("base_params", "ResNet-50: 25,557,032")],
    "eca_resnet50": [("delta_params", "80 parameters more"), ("params", "ResNet-50 (25,557,112)")],
    "efficientnet_lite0": [("params", "4,652,008 parameters"), ("macs", "0.40 GMACs")],
    # seed 000: the CIFAR MetaFormer's embedding stride, and a norm before the head
    "seed000_metaformer_s2": [("params", "270,602 parameters"), ("macs", "69.2 MMACs"),
                              ("shape:stage1", "works on 16x16 maps"), ("shape:final", "works on 16x16 maps")],
    "seed000_metaformer_s4": [("params", "276,938 parameters"), ("delta_params", "kernel adds 6,336"),
                              ("macs", "17.7 MMACs"), ("shape:stage1", "works on 8x8 maps"),
                              ("shape:final", "works on 8x8 maps")],
    "seed000_head_norm_off": [("params", "11,181,642 parameters"), ("macs", "37.1 MMACs"),
                              ("shape:stage1", "works on 8x8 maps")],
    "seed000_head_norm_on": [("params", "11,182,666 parameters"), ("macs", "37.1 MMACs")],
    # seed 001
    "seed001_fasternet_t0": [("params", "3,905,500 parameters"), ("macs", "0.34 GMACs"),
                             ("stage_maps", "56x56/28x28/14x14/7x7"), ("tree", "Conv2d(10, 10"),
                             ("tree", "Conv2d(40, 80"), ("tree", "DropPath(drop_prob=0.008)"),
                             ("tree", "DropPath(drop_prob=0.100)")],
    # seed 002: ViT-B/16
    "seed002_vit_se_input": [("warning", "hidden width 3 x 0.0625 = 0.19 was clamped to 8"),
                             ("delta_params", "adds 59"), ("delta_macs", "59 parameters and 48 MACs"),
                             ("base_params", "86,567,656 parameters"), ("base_macs", "17.58 GMACs")],
    "seed002_vit_se_eca_serial": [("delta_params", "+74,549 parameters"), ("delta_macs", "+77,568 MACs"),
                                  ("base_macs", "17.58 GMACs"), ("shape:final", "197x768 tokens")],
    "seed002_vit_se_eca_add": [("delta_params", "+74,549 parameters"), ("delta_macs", "+77,568 MACs"),
                               ("shape:final", "197x768 tokens")],
    "seed002_vit_se_eca_mul": [("delta_params", "+74,549 parameters"), ("delta_macs", "+77,568 MACs"),
                               ("shape:final", "197x768 tokens")],
    "seed002_vit_se_eca_concat": [("delta_params", "+1,254,965 parameters"), ("delta_macs", "+231,288,576 MACs"),
                                  ("macs", "17.81 GMACs"), ("shape:final", "197x768 tokens")],
    # seed 003: Swin-T
    "seed003_swin_t": [("params", "28,288,354 parameters"), ("macs", "4.51 GMACs"),
                       ("stage_maps", "56x56/28x28/14x14/7x7")],
    "seed003_swin_stride3": [("error", "stem.stride: 3 gives stage maps 74/37/19/10 at img_size 224, "
                                       "which 7x7 Swin windows do not tile")],
    # seed 004
    "seed004_spectformer_s6": [("params", "21,334,316 parameters"), ("base_params", "(22,226,928"),
                               ("macs", "4.09 GMACs"), ("stage_maps", "56x56/28x28/14x14/7x7")],
}

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_MAP = re.compile(r"(\d+)x(\d+)")
_SCALES = {"G": 1e9, "M": 1e6, "K": 1e3, "": 1}
_reports: dict = {}


def report(name: str):
    """Each preset analyzed once per session (analyze's own caches keep only a few built models)."""
    if name not in _reports:
        _reports[name] = analyze(load_preset(name))
    return _reports[name]


def last_number(phrase: str) -> tuple[float, int]:
    """(value, decimals) of the last number in the phrase; a '+' or '-' right before it is its sign."""
    m = list(_NUMBER.finditer(phrase))[-1]
    text = m.group().replace(",", "")
    sign = -1 if phrase[:m.start()].endswith("-") else 1
    return sign * float(text), len(text.partition(".")[2])


def macs_claim(phrase: str, measured: int) -> tuple[float, float]:
    value, decimals = last_number(phrase)
    unit = re.search(r"([GMK]?)MACs", phrase)
    assert unit, f"a MACs claim needs its unit: {phrase!r}"
    return value, round(measured / _SCALES[unit.group(1)], decimals)


def map_of(point) -> tuple[int, int]:
    shape = point.shape
    return {"NCHW": tuple(shape[2:4]), "NHWC": tuple(shape[1:3]), "NLC": tuple(shape[1:3])}[point.layout]


def test_every_preset_is_listed_loads_and_has_claims():
    presets = list_presets()  # loads and validates every file, the one that fails at build time included
    assert set(presets) == set(preset_files()) == set(CLAIMS), "every preset needs its claims listed here"
    for name, spec in presets.items():
        assert spec.title and spec.description, name
        for _kind, phrase in CLAIMS[name]:
            assert phrase in spec.description, f"{name}: the description no longer says {phrase!r}"


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_preset_builds_analyzes_and_its_numbers_hold(name):
    claims = CLAIMS[name]
    errors = [phrase for kind, phrase in claims if kind == "error"]
    if errors:
        with pytest.raises(SpecError) as e:
            report(name)
        assert all(phrase in str(e.value) for phrase in errors), str(e.value)
        return
    r = report(name)
    points = {p.name: p for p in r.points}
    for kind, phrase in claims:
        where = f"{name}: {kind} {phrase!r}"
        if kind in ("params", "base_params", "delta_params"):
            key = {"params": "total", "base_params": "base_total", "delta_params": "delta"}[kind]
            measured = getattr(r.params, key)
            assert measured == last_number(phrase)[0], f"{where}: measured {measured:,}"
        elif kind in ("macs", "base_macs", "delta_macs"):
            key = {"macs": "total", "base_macs": "base_total", "delta_macs": "delta"}[kind]
            claimed, measured = macs_claim(phrase, getattr(r.macs, key))
            assert measured == claimed, f"{where}: measured {getattr(r.macs, key):,}"
            assert r.macs.uncounted_ops == [], f"{name}: MACs claimed but not all ops counted"
        elif kind.startswith("shape:"):
            point = points[kind.partition(":")[2]]
            assert map_of(point) == tuple(map(int, _MAP.findall(phrase)[-1])), f"{where}: {point.shape}"
        elif kind == "stage_maps":
            stages = [p for p in r.points if re.fullmatch(r"stage\d+", p.name)]
            assert [map_of(p) for p in stages] == [tuple(map(int, m)) for m in _MAP.findall(phrase)], where
        elif kind == "warning":
            assert any(phrase in w for w in r.warnings), f"{where}: {r.warnings}"
        elif kind == "tree":
            assert phrase in r.tree, where
        else:
            raise AssertionError(f"{where}: unknown claim kind")


def test_seed000_stride4_embedding_quarters_maps_and_macs():
    """Seed 000, tip 3: stride 4 (k7 s4 p2) gives 8x8 stage-1 maps instead of 16x16, about a quarter of the MACs."""
    s2, s4 = report("seed000_metaformer_s2"), report("seed000_metaformer_s4")
    stage1 = [next(p.shape for p in r.points if p.name == "stage1") for r in (s2, s4)]
    assert stage1 == [[1, 64, 16, 16], [1, 64, 8, 8]]
    assert (s4.stem.after.kernel, s4.stem.after.stride, s4.stem.after.padding) == (7, 4, 2) and s4.stem.path == "stem.conv"
    ratio = s2.macs.total / s4.macs.total
    assert 3.5 < ratio < 4.5, ratio  # 4x fewer positions in every block; the bigger embedding kernel costs a bit
    assert f"{ratio:.1f}x fewer" in load_preset("seed000_metaformer_s4").description


def test_seed000_head_norm_on_and_off():
    off, on = report("seed000_head_norm_off"), report("seed000_head_norm_on")
    assert on.params.total - off.params.total == 2 * 512
    assert "adds 1,024 parameters" in load_preset("seed000_head_norm_on").description
    assert "(fc): Linear(in_features=512, out_features=10" in off.tree and "GroupNorm" not in off.tree
    assert re.search(r"\(fc\): Sequential\(\s+\(norm\): GroupNorm\(1, 512, .*\)\s+"
                     r"\(fc\): Linear\(in_features=512, out_features=10", on.tree)


def test_seed002_se_on_the_3_channel_input_warns():
    r = report("seed002_vit_se_input")
    (ins,) = r.params.by_insert
    assert ins.point == "input" and ins.count == 59  # 3 -> 8 -> 3 with biases: wider than its input
    assert any("se at input has 3 channels" in w and "clamped to 8" in w for w in r.warnings), r.warnings


def test_seed002_merges_cost_what_they_should():
    serial, add, mul, concat = (report(f"seed002_vit_se_eca_{m}") for m in ("serial", "add", "mul", "concat"))
    assert serial.params.delta == add.params.delta == mul.params.delta == 74_544 + 5  # SE 768/48 + ECA k5
    assert concat.params.delta - add.params.delta == 2 * 768 * 768 + 768  # the 1x1 projection 1536 -> 768
    finals = [next(p.shape for p in r.points if p.name == "final") for r in (serial, add, mul, concat)]
    assert finals == [[1, 197, 768]] * 4


def test_classics_match_the_papers():
    se, eca = report("se_resnet50"), report("eca_resnet50")
    assert se.params.total == 28_088_024  # timm's seresnet50
    assert eca.params.base_total == 25_557_032 and eca.params.total == 25_557_032 + 80


def test_preset_that_fails_on_purpose_is_one_line_in_the_cli(capsys):
    assert "Expected to fail" in load_preset("seed003_swin_stride3").description
    assert cli_main(["report", "seed003_swin_stride3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: stem.stride: 3 gives stage maps 74/37/19/10") and err.count("\n") == 1

