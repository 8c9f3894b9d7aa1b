"""Budgets: the web app's limits from the environment, and estimates from the meta device that refuse a giant
before anything real is allocated."""
from __future__ import annotations

import pytest

from playground.budgets import DEFAULTS, ENV, Budgets, estimate, published_estimate
from playground.cli import main
from playground.errors import SpecError
from playground.spec import load_spec


def test_limits_come_from_the_environment_with_defaults():
    assert Budgets.from_env({}) == Budgets(**DEFAULTS, from_environment=True)
    b = Budgets.from_env({ENV["max_params_m"]: "50", ENV["max_gmacs"]: "none", ENV["max_img_size"]: "512"})
    assert (b.max_params_m, b.max_gmacs, b.max_img_size) == (50.0, None, 512)
    assert Budgets().limited is False and b.limited
    with pytest.raises(SpecError, match="PLAYGROUND_MAX_GMACS: 'lots' is not a number"):
        Budgets.from_env({ENV["max_gmacs"]: "lots"})
    with pytest.raises(SpecError, match="must be positive"):
        Budgets.from_env({ENV["max_seconds"]: "-3"})


def test_estimates_match_timms_table_and_scale_with_the_stem():
    """resnet50 and ViT-H/14 at 224 px: parameters exact, MACs as timm's table (4.11 G, 167.4 G) to 0.1%."""
    r50 = estimate({"backbone": "resnet50"})
    assert r50.params == 25_557_032 and abs(r50.macs / 4.11e9 - 1) < 0.01
    huge = estimate({"backbone": "vit_huge_patch14_224"})
    assert huge.params == 630_764_800 and abs(huge.macs / 167.4e9 - 1) < 0.01
    swin = estimate({"backbone": "swin_tiny_patch4_window7_224"}).macs
    # stride 4 -> 2: a 4x larger first grid, so about 4x the MACs (attention grows faster, the head slower)
    assert 3.5 < estimate({"backbone": "swin_tiny_patch4_window7_224", "stem": {"stride": 2}}).macs / swin < 4.5


@pytest.mark.parametrize("spec, batch, budgets, words", [
    ({"backbone": "eva02_enormous_patch14_clip_224"}, 1, Budgets(max_params_m=700),
     ["4,350.6 M parameters", "limit here of 700 M", "--max-params-m"]),
    ({"backbone": "resnet50", "img_size": 448}, 1, Budgets(max_gmacs=10),  # far over: from timm's table
     ["about 16.5 GMACs per image", "10 GMACs per forward pass", "smaller img_size"]),
    ({"backbone": "resnet50"}, 1, Budgets(max_gmacs=4),  # just over: counted on the meta device
     ["needs 4.1 GMACs per image", "4 GMACs per forward pass"]),
    ({"backbone": "resnet50"}, 8, Budgets(max_gmacs=10), ["x batch 8", "img_size or batch"]),
    ({"backbone": "resnet18", "img_size": 900}, 1, Budgets.from_env({}),
     ["900 px", "768 px", "PLAYGROUND_MAX_IMG_SIZE", "run it locally with the CLI"]),
])
def test_a_request_over_a_limit_gets_one_line(spec, batch, budgets, words):
    with pytest.raises(SpecError) as e:
        budgets.check(spec, batch)
    assert all(w in str(e.value) for w in words) and "\n" not in str(e.value), str(e.value)


def test_within_limits_passes_and_unlimited_builds_nothing():
    assert Budgets(max_params_m=30, max_gmacs=5).check({"backbone": "resnet50"}).params == 25_557_032
    assert Budgets().check({"backbone": "vit_giant_patch14_dinov2", "img_size": 518}) is None


def test_the_cli_takes_the_same_limits(capsys):
    assert main(["report", "se_resnet50", "--max-gmacs", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "over the limit here of 2 GMACs" in err and "--max-gmacs" in err


def test_a_giant_timm_has_published_is_refused_without_building_it():
    est = published_estimate(load_spec({"backbone": "vit_giant_patch14_dinov2", "img_size": 518}))
    assert (est.params, est.macs, est.published) == (1_136_480_000, 1_784_200_000_000, True)  # the table's row
    assert published_estimate(load_spec({"backbone": "eva02_enormous_patch14_clip_224"})) is None  # not in it

    def no_worker(spec, max_params):
        raise AssertionError("a giant in timm's table needs no estimate")
    with pytest.raises(SpecError, match="has about 1,136.5 M parameters"):
        Budgets(max_params_m=700).check({"backbone": "vit_giant_patch14_dinov2"}, estimator=no_worker)
