"""The builder: stitching SE/ECA and composites into real timm backbones, exact parameter deltas, gate, stem stride."""
import math

import pytest
import timm
import torch

import playground as pg
from playground.build import base_model

# (backbone, a glob the seeds would use on it)
BACKBONES = {
    "resnet50": "layer*.*.bn3",
    "vit_tiny_patch16_224": "blocks.*.norm1",
    "swin_tiny_patch4_window7_224": "layers.*.blocks.*.norm1",
    "fasternet_t0": "stages.*.blocks.*.spatial_mixing",
    "poolformer_s12": "stages.*.blocks.*.token_mixer",
    "efficientnet_lite0": "blocks.*.*.bn1",
    "convnext_atto": "stages.*.blocks.*.conv_dw",
    "mobilenetv3_small_100": "blocks.*.*.bn1",
}
MODULES = {
    "se": "se",
    "eca": "eca",
    "serial": {"serial": ["se", "eca"]},
    "parallel": {"parallel": ["se", "eca"], "merge": "concat"},
}


def n_params(m):
    return sum(p.numel() for p in m.parameters())


# Parameter counts written from the papers / timm's definitions, independent of the builder.
def se_params(c):  # SE: C -> rd -> C 1x1 convs with bias; rd = C/16 rounded to a multiple of 8, at least 8
    rd = max(8, int(c / 16 + 4) // 8 * 8)
    return c * rd + rd + rd * c + c


def eca_params(c):  # ECA-Net: one 1-D conv, no bias, adaptive kernel k = |log2(C) + 1| / 2 made odd, at least 3
    t = int(abs(math.log2(c) + 1) / 2)
    return max(t if t % 2 else t + 1, 3)


EXPECTED = {
    "se": se_params,
    "eca": eca_params,
    "serial": lambda c: se_params(c) + eca_params(c),
    "parallel": lambda c: se_params(c) + eca_params(c) + 2 * c * c + c,  # concat -> 1x1 conv 2C -> C
}


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("module", list(MODULES))
def test_stitch_everywhere(backbone, module):
    base, _ = base_model(backbone, 224)
    n_stages = len([p for p in pg.points(backbone) if p.name.startswith("stage") and ".block" not in p.name])
    ats = ["stem"] + [f"stage{i}" for i in range(1, n_stages + 1)] + ["final", BACKBONES[backbone]]
    built = pg.build({"backbone": backbone, "insert": [{"at": a, "module": MODULES[module]} for a in ats]})

    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert built.model(x).shape == base(x).shape == (2, 1000)
    channels = [i.point.channels for i in built.insertions]
    assert len(channels) >= len(ats)
    assert {i.point.name for i in built.insertions} >= {"stem", "final", "stage1"}
    assert n_params(built.model) - n_params(base) == sum(EXPECTED[module](c) for c in channels)
    assert built.delta_params == sum(i.params for i in built.insertions)


def test_se_resnet50_equals_timm_seresnet50():
    built = pg.build({"backbone": "resnet50", "insert": [{"at": "layer*.*.bn3", "module": "se"}]})
    assert n_params(built.model) == 28_088_024 == n_params(timm.create_model("seresnet50"))
    assert len(built.insertions) == 16


def test_eca_resnet50_adds_80_parameters():
    """ECA-Net (Wang et al. 2020), Table: ECA-Net50 adds 80 parameters with kernels 3, 5, 5, 7 per stage."""
    insert = [{"at": f"layer{i}.*.bn3", "module": "eca", "args": {"kernel_size": k}}
              for i, k in zip(range(1, 5), (3, 5, 5, 7))]
    built = pg.build({"backbone": "resnet50", "insert": insert})
    assert built.delta_params == 80
    assert [i.params for i in built.insertions] == [3] * 3 + [5] * 4 + [5] * 6 + [7] * 3


def test_gate_keeps_a_loaded_model_identical(tmp_path, cat_photo):
    """gate: true on a model loaded from a saved state dict: logits equal the base model's on a real photo."""
    from safetensors.torch import save_file
    torch.manual_seed(0)
    source = timm.create_model("resnet18").eval()
    path = tmp_path / "resnet18.safetensors"
    save_file(source.state_dict(), str(path))
    spec = {"backbone": "resnet18", "checkpoint": str(path), "gate": True,
            "insert": [{"at": "layer*.*.bn2", "module": "se"}, {"at": "stage2", "module": {"serial": ["se", "eca"]}},
                       {"at": "final", "module": {"parallel": ["se", "eca"], "merge": "concat"}}]}
    built = pg.build(spec)
    x = cat_photo(224)
    with torch.no_grad():
        expected = source(x)
        assert (built.base(x) - expected).abs().max() <= 1e-6
        assert (built.model(x) - expected).abs().max() <= 1e-6
        ungated = pg.build({**spec, "gate": False})
        assert (ungated.model(x) - expected).abs().max() > 1e-3


def classifies(built, img_size: int = 224) -> bool:
    """The built model runs on an image of that size and gives ImageNet's 1000 logits."""
    with torch.no_grad():
        return built.model(torch.randn(1, 3, img_size, img_size)).shape == (1, 1000)


def stage_sizes(built):
    return [p.shape for p in built.points if p.name.startswith("stage") and ".block" not in p.name]


def test_resnet50_stem_stride_4_halves_every_stage():
    s2 = pg.build({"backbone": "resnet50"})
    s4 = pg.build({"backbone": "resnet50", "stem": {"stride": 4}})
    assert s4.stem.path == "conv1" and s4.stem.after.stride == 4
    for a, b in zip(stage_sizes(s2), stage_sizes(s4)):
        assert b[2] == -(-a[2] // 2) and b[3] == -(-a[3] // 2) and a[1] == b[1]  # halved (7 -> 4 by conv padding)
    assert [s[2] for s in stage_sizes(s4)] == [28, 14, 7, 4]


def test_vit_overlapping_patches_resample_position_embeddings():
    built = pg.build({"backbone": "vit_tiny_patch16_224", "stem": {"stride": 8},
                      "insert": [{"at": "stage6", "module": "cbam"}]})
    assert built.model.pos_embed.shape[1] == 1 + 27 * 27
    assert built.insertions[0].point.grid == (27, 27) and built.insertions[0].point.num_prefix_tokens == 1
    assert any("position embeddings resampled" in w for w in built.warnings)
    assert classifies(built)


def test_swin_stride_that_breaks_windows_is_a_spec_error():
    with pytest.raises(pg.SpecError, match=r"stem.stride: 3 gives stage maps 74/37/19/10 .* strides that fit with "
                                           r"kernel 4, padding 0: 4, 8, 16$"):
        pg.build({"backbone": "swin_tiny_patch4_window7_224", "stem": {"stride": 3}})
    built = pg.build({"backbone": "swin_tiny_patch4_window7_224", "stem": {"stride": 8}})
    assert [s[1] for s in stage_sizes(built)] == [28, 14, 7, 4]
    assert classifies(built)


def test_equivalent_image_size_makes_exactly_the_new_grid():
    """Grid-dependent parts are rebuilt for the image size at which the unchanged model makes the new grid: PiT's
    16-pixel patches at stride 8 make 27x27 from 224 px; at stride 16, 14x14, which the unchanged model makes from
    120 px (the proportional 224 x 14 / 27 = 116 px would make 13x13)."""
    from playground.stem import StemPlan
    assert StemPlan("patch_embed.conv", (16, 8, 0), (16, 16, 0), 224, 27, 14, 224).equivalent_img_size == 120
    assert StemPlan("conv1", (7, 2, 3), (7, 4, 3), 224, 112, 56, 224).equivalent_img_size == 112
    assert StemPlan("conv_stem", (3, 2, 0), (3, 4, 0), 224, 112, 56, 224, "same").equivalent_img_size == 112
    built = pg.build({"backbone": "pit_ti_224", "stem": {"stride": 16}})
    assert built.stem.description == "patch_embed.conv: stride 8 -> 16; stage 1 sees 14x14 (total stride 16, " \
                                     "was about 8.3)"


def test_hybrid_vit_restrides_its_cnn_stem_and_resamples_to_the_token_grid():
    """R-ViT: the first strided conv is its ResNet's stem; the tokens are what the whole CNN makes of it (224 px,
    stem stride 4, then /2 by the pool and 8-pixel patches: 3x3, was 7x7), not the stem conv's 56x56 map."""
    built = pg.build({"backbone": "vit_tiny_r_s16_p8_224", "stem": {"stride": 4}})
    assert built.stem.path == "patch_embed.backbone.conv"
    assert built.model.patch_embed.grid_size == (3, 3) and built.model.pos_embed.shape[1] == 1 + 3 * 3
    assert "position embeddings resampled from a 7x7 to a 3x3 patch grid" in " ".join(built.warnings)
    assert classifies(built)


def test_a_linear_patch_embedding_has_no_stride_and_says_why():
    with pytest.raises(pg.SpecError, match=r"no strided conv or pool to change: embeds \(NaFlexEmbeds\) cuts 16x16 "
                                           r"patches and projects them with a Linear layer of 768 inputs"):
        pg.build({"backbone": "naflexvit_base_patch16_parfac_gap", "stem": {"stride": 32}})


def test_a_stride_that_leaves_odd_maps_names_the_image_size_where_it_works():
    """DLA at 224 px with a stride-4 stem: 224 / 64 leaves 3.5 at the last level, where a tree joins maps of 4
    and 3 positions; 256 px halves evenly down to 4x4."""
    from playground.errors import StemRefusal
    with pytest.raises(StemRefusal, match=r"DlaBottleneck \(level5.tree1\) cannot take: it joins two maps of 4 and 3 "
                                          r".*; strides that fit: 1, 2; stride 4 fits at img_size 256$") as e:
        pg.build({"backbone": "dla46x_c", "stem": {"stride": 4}})
    assert e.value.fits.img_size == 256 and e.value.fits.strides == [1, 2]
    assert pg.build({"backbone": "dla46x_c", "img_size": 256, "stem": {"stride": 4}}).stem.grid == 64


@pytest.mark.parametrize("backbone,path", [("efficientnet_lite0", "conv_stem"), ("fasternet_t0", "patch_embed.proj"),
                                           ("poolformer_s12", "stem.conv"), ("convnext_atto", "stem.0")])
def test_stem_conv_found_and_changed(backbone, path):
    built = pg.build({"backbone": backbone, "stem": {"stride": 2, "kernel": 5}})
    assert built.stem.path == path
    conv = built.model.get_submodule(path)
    assert conv.stride == (2, 2) and conv.kernel_size == (5, 5)
    assert not any("re-initialises" in w for w in built.warnings)  # nothing pretrained to lose


@pytest.mark.parametrize("backbone,path", [("vgg11", "features.2"), ("darknetaa53", "stages.0.conv_down.0")])
def test_a_net_that_downsamples_by_pooling_first_changes_that_pool(backbone, path):
    """VGG (max pool) and anti-aliased DarkNet (avg pool) have no strided conv before their first pool: the pool is
    the embedding's downsampling, and only its stride can change."""
    s2 = pg.build({"backbone": backbone, "img_size": 128})
    s4 = pg.build({"backbone": backbone, "img_size": 128, "stem": {"stride": 4}})
    assert s4.stem.path == path and (s4.stem.before.stride, s4.stem.after.stride) == (2, 4)
    assert [a[-1] // 2 for a in stage_sizes(s2)] == [b[-1] for b in stage_sizes(s4)]  # every map halved
    assert any(f"{path} has kernel 2 < stride 4" in w for w in s4.warnings)
    assert classifies(s4, 128)
    with pytest.raises(pg.SpecError, match=rf"a (Max|Avg)Pool2d \({path}\): only its stride can change"):
        pg.build({"backbone": backbone, "img_size": 128, "stem": {"stride": 4, "kernel": 3}})


def test_kernel_change_on_pretrained_weights_warns_and_reports():
    built = pg.build({"backbone": "efficientnet_lite0", "pretrained": True, "stem": {"stride": 1, "kernel": 5}})
    assert any("conv_stem kernel 3 -> 5 re-initialises that conv" in w for w in built.warnings)
    assert "conv_stem.weight" in built.weights.reinitialised
    assert [p.shape for p in built.points if p.name == "stage1"] == [[1, 16, 224, 224]]


def test_se_on_the_input_warns_about_its_clamped_width():
    """Seed 002 put an SE on the 3-channel input; its hand-written bottleneck became Linear(3, 0)."""
    built = pg.build({"backbone": "vit_tiny_patch16_224", "insert": [{"at": "input", "module": "se"}]})
    assert any("clamped to 8" in w and "3 channels" in w for w in built.warnings)
    assert built.insertions[0].point.shape == [1, 3, 224, 224]


def test_second_residual_inside_a_residual_block_warns():
    built = pg.build({"backbone": "resnet50", "insert": [
        {"at": "layer1.0.bn3", "module": {"parallel": ["identity", "se"], "merge": "add"}}]})
    assert any("second residual inside the residual block layer1.0" in w for w in built.warnings)
    gated = pg.build({"backbone": "resnet50", "gate": True, "insert": [{"at": "stage1", "module": "se"}]})
    assert not any("second residual" in w for w in gated.warnings)  # after a stage is outside every block


def test_head_options():
    built = pg.build({"backbone": "resnet50", "num_classes": 6, "head_norm": "layernorm", "drop_path_rate": 0.1})
    assert not any("head_norm" in w for w in built.warnings)
    vit = pg.build({"backbone": "vit_tiny_patch16_224", "head_norm": "layernorm"})
    assert any("head_norm: norm already normalises the features before the classifier head" in w
               for w in vit.warnings)
    assert built.model.fc.fc.out_features == 6 and isinstance(built.model.fc.norm, torch.nn.LayerNorm)
    with torch.no_grad():
        assert built.model(torch.randn(2, 3, 224, 224)).shape == (2, 6)
    with pytest.raises(pg.SpecError, match="drop_path_rate: backbone 'vgg11' does not support"):
        pg.build({"backbone": "vgg11", "drop_path_rate": 0.1})


def test_grid_modules_need_a_grid_and_tokens_keep_prefix():
    built = pg.build({"backbone": "vit_tiny_patch16_224", "insert": [{"at": "final", "module": "coord"}]})
    p = built.insertions[0].point
    assert (p.layout, p.num_prefix_tokens, p.grid, p.channels) == ("NLC", 1, (14, 14), 192)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feats = built.model.forward_features(x)
        assert torch.equal(feats[:, 0], built.base.forward_features(x)[:, 0])  # the cls token passes through


def test_points_describe_layout_channels_and_shape():
    pts = {p.name: p for p in pg.points("swin_tiny_patch4_window7_224")}
    assert pts["stage2"].layout == "NHWC" and pts["stage2"].channels == 192 and pts["stage2"].shape == [1, 28, 28, 192]
    assert pts["stage1.block2"].path == "layers.0.blocks.1"
    pts = {p.name: p for p in pg.points("resnet50")}
    assert pts["stem"].path == "maxpool" and pts["stem"].shape == [1, 64, 56, 56] and pts["stem"].reduction == 4
    assert pts["input"].shape == [1, 3, 224, 224] and pts["final"].channels == 2048


def test_blocks_star_expands_and_same_target_chains():
    built = pg.build({"backbone": "resnet50", "insert": [{"at": "stage2.block*", "module": "eca"},
                                                          {"at": "stage4", "module": "se"},
                                                          {"at": "final", "module": "eca"}]})
    assert [i.point.name for i in built.insertions[:4]] == [f"stage2.block{j}" for j in range(1, 5)]
    assert built.insertions[-2].path == "layer4_after.0" and built.insertions[-1].path == "layer4_after.1"


def test_an_unmodified_backbone_at_a_size_it_cannot_take_is_refused_at_build():
    """Found by the property test: ConvNeXt's last 2x2 downsampling gets a 1x1 map at 16 px. Refused by build, in one
    line naming the module and the real reason (not torchinfo's wrapper text), before a forward can fail raw."""
    with pytest.raises(pg.SpecError) as e:
        pg.build({"backbone": "convnext_atto", "img_size": 16})
    message = str(e.value)
    assert "img_size 16 in stages.3.downsample.1 (Conv2d)" in message and "\n" not in message, message
    assert "its input map is 1x1, smaller than its 2x2 kernel" in message and "larger img_size" in message, message
    assert "Calculated padded" not in message  # torch's arithmetic, said in this domain's words
    with pytest.raises(pg.SpecError) as e:
        pg.analyze({"backbone": "convnext_atto", "img_size": 16})
    assert "torchinfo" not in str(e.value), str(e.value)


@pytest.mark.parametrize("fails, words", [
    (lambda: torch.nn.functional.conv2d(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 2, 2)),
     "its input map is 1x1, smaller than its 2x2 kernel"),
    (lambda: torch.nn.functional.max_pool2d(torch.zeros(1, 8, 1, 1), 3, 2), "its 1x1 input map is too small"),
    (lambda: torch.zeros(1, 3, 4) + torch.zeros(1, 4, 4), "two maps of 3 and 4 positions"),
    (lambda: torch.nn.functional.linear(torch.zeros(1, 196), torch.zeros(10, 49)),
     "a linear layer takes 49 features and receives 196"),
    (lambda: torch.zeros(1, 50).reshape(1, 7, 7), "it reshapes 50 values into [1, 7, 7]"),
])
def test_torch_size_errors_are_said_in_domain_words(fails, words):
    """The table of `errors.TORCH_SAYINGS` against the text this torch really raises: a change of torch's wording
    fails here, not in front of a user."""
    with pytest.raises(RuntimeError) as e:
        fails()
    assert words in (pg.errors.in_domain_words(str(e.value)) or ""), str(e.value)


def test_an_unknown_pretrained_tag_is_one_line_with_the_tags_there_are():
    with pytest.raises(pg.SpecError, match=r"resnet50 has no pretrained tag 'a1_in1kk' \(did you mean 'a1_in1k'"):
        pg.build({"backbone": "resnet50.a1_in1kk"})
    with pytest.raises(pg.SpecError, match="no pretrained tag 'bogus'"):
        pg.points("resnet50.bogus")


def test_a_first_downsampling_layer_without_a_stride_is_refused_by_name():
    """TResNet downsamples first by space-to-depth: that is its embedding, not a later pool on a shortcut."""
    with pytest.raises(pg.SpecError, match=r"first downsampling layer here is a SpaceToDepth \(body.s2d\)"):
        pg.build({"backbone": "tresnet_m", "img_size": 128, "stem": {"stride": 8}})


def test_head_norm_remove_takes_out_the_backbones_own_norm_before_the_classifier():
    """Seed 000's tip 2, the "without" side, on its MetaFormer, which has GroupNorm(1, 64) built into its head."""
    with_norm = pg.build({"backbone": "cifar_metaformer_pool"})
    without = pg.build({"backbone": "cifar_metaformer_pool", "head_norm": "remove"})
    assert without.delta_params == -2 * 64 and isinstance(without.model.head.norm, torch.nn.Identity)
    assert any("head.norm (GroupNorm1) removed" in w for w in without.warnings)
    assert without.model(torch.randn(2, 3, 32, 32)).shape == with_norm.model(torch.randn(2, 3, 32, 32)).shape
    with pytest.raises(pg.SpecError, match="head_norm: remove: ResNet has no norm right before its classifier fc"):
        pg.build({"backbone": "resnet18", "head_norm": "remove"})
