"""Across the timm zoo (issue 10): a fixed, diverse sample of families from timm's own published table, each at
its smallest model and the table's image size, through what a user does with a backbone (`playground.zoo.check`).

The families: ViTs with a cls token (vit, deit, cait, convit, beit, eva, xcit) and without (relpos, mixer), windows
(swin, swinv2, maxvit, coatnet, gcvit), hybrids (levit, efficientvit, mobilevit, edgenext, coat, twins, mvitv2,
nest, botnet, halonet), reparameterisable (repvgg, mobileone, fastvit, repvit), spectral (fasternet's partial conv,
poolformer), tuple outputs (crossvit, hrnet, pit, tnt) and plain convnets. `bench/bench_zoo.py` runs every family.
"""
import pytest

from playground import zoo

SAMPLE = [
    "vision_transformer:vit", "vision_transformer_relpos:vit", "deit:deit", "cait:cait", "convit:convit",
    "beit:beit", "eva:eva", "xcit:xcit", "mlp_mixer:mixer", "swin_transformer:swin", "swin_transformer_v2_cr:swinv2",
    "maxxvit:maxvit", "maxxvit:coatnet", "gcvit:gcvit", "levit:levit", "efficientvit_msra:efficientvit",
    "mobilevit:mobilevit", "edgenext:edgenext", "coat:coat", "twins:twins", "mvitv2:mvitv2", "nest:nest",
    "byoanet:halonet", "byoanet:sehalonet33ts", "byobnet:repvgg", "byobnet:mobileone",
    "fastvit:fastvit", "repvit:repvit", "fasternet:fasternet", "metaformer:poolformer", "crossvit:crossvit",
    "hrnet:hrnet", "pit:pit", "tnt:tnt", "tresnet:tresnet", "xception_aligned:xception", "resnet:resnet",
    "efficientnet:efficientnet", "mobilenetv3:mobilenetv3", "convnext:convnext", "regnet:regnetx", "densenet:densenet",
    "ghostnet:ghostnet", "dla:dla", "inception_v3:inception", "vgg:vgg", "cspnet:cspresnet",
]


@pytest.fixture(scope="module")
def families():
    return zoo.families(zoo.reference_table())


def test_the_sample_is_diverse_and_in_the_table(families):
    missing = [f for f in SAMPLE if f not in families]
    assert not missing, f"not families of the reference table: {missing}"
    assert len(set(SAMPLE)) >= 40


@pytest.mark.parametrize("family", SAMPLE)
def test_family(family, families, one_thread):
    ref = families[family]
    res = zoo.check(ref, fvcore=False)
    assert res.analysed, res.error
    # timm's table: params (M) and GMACs rounded to two decimals; 0.5% / 1% on top of half a unit
    assert res.params_ok, f"{ref.model}: {res.params / 1e6:.3f} M vs {ref.params_m} M"
    assert res.macs_ok, f"{ref.model}: {res.macs / 1e9:.4f} G vs {ref.gmacs} G (uncounted {res.uncounted_ops})"
    # activations (M), fvcore's ActivationCountAnalysis as timm's table: 1% on top of half a unit
    assert res.activations_ok, f"{ref.model}: {res.activations / 1e6:.3f} M vs {ref.macts_m} M activations"
    assert res.stitched, res.stitch_error
    assert res.gated_identical  # gated: the logits equal the base's bit for bit, on any CPU
    assert res.checkpoint_loads  # the base state dict loads; only the stitched parameters are missing
    assert res.stride_ok or (res.stride_refusal and not res.stride_raw), res.stride_refusal


def test_gate_is_bit_identical_through_analyze():
    from skimage import data

    from playground.analyze import analyze
    r = analyze({"backbone": "pit_ti_224", "gate": True, "insert": [{"at": "stage2", "module": "se"},
                                                                     {"at": "final", "module": "eca"}]},
                images=[data.chelsea()])
    assert r.predictions[0].agreement.max_abs_logit_diff == 0.0


def test_stem_change_is_described():
    from playground.build import build
    b = build({"backbone": "resnet50", "stem": {"stride": 4}})
    assert b.stem.description == "conv1: stride 2 -> 4; stage 1 sees 28x28 (total stride 8, was 4)"
