"""Predictions of the bundled efficientnet_lite0 on real photos, agreement with a base model, labels, warnings."""
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from skimage import data

from playground.errors import SpecError
from playground.predict import data_config, predict
from playground.weights import create_with_weights, resolve_source

CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lite0():
    model, _ = create_with_weights("efficientnet_lite0", resolve_source("efficientnet_lite0", pretrained=True))
    return model.eval()


@pytest.fixture(scope="module")
def photos():
    return [data.chelsea(), data.coffee()]


def test_bundled_model_sees_a_cat_and_an_espresso(lite0, photos):
    predictions, warnings = predict(lite0, photos, names=["chelsea", "coffee"], topk=5, img_size=224)
    cat, coffee = predictions
    assert warnings == []
    assert cat.image == "chelsea" and cat.top[0].index in CATS and cat.top[0].label == "tabby, tabby cat"
    assert coffee.top[0].index == ESPRESSO and coffee.top[0].label == "espresso"
    assert coffee.top[0].prob > 0.5 and len(cat.top) == 5
    assert all(a.prob >= b.prob for a, b in zip(cat.top, cat.top[1:]))
    assert cat.base_top is None and cat.agreement is None
    json.dumps([asdict(p) for p in predictions])


def test_agreement_with_the_base_model(lite0, photos):
    same, _ = predict(lite0, photos, base_model=lite0, topk=3)
    agreement = same[0].agreement
    assert agreement.top1_agree and agreement.kl_divergence < 1e-6
    assert [(r.base_rank, r.rank) for r in agreement.rank_changes] == [(1, 1), (2, 2), (3, 3)]

    modified, _ = create_with_weights("efficientnet_lite0", resolve_source("efficientnet_lite0", True))
    with torch.no_grad():
        modified.conv_head.weight.mul_(0.5)  # a model that still works, only less sure of itself
    changed, warnings = predict(modified, photos, base_model=lite0, topk=3)
    assert warnings == [] and changed[1].base_top == same[1].top
    agreement = changed[1].agreement
    assert agreement.kl_divergence > 1e-4 and agreement.rank_changes[0].index == ESPRESSO
    json.dumps([asdict(p) for p in changed])


def test_other_head_gets_generic_labels_and_warnings(lite0, photos):
    ten, _ = create_with_weights("efficientnet_lite0", resolve_source("efficientnet_lite0", True), num_classes=10)
    predictions, warnings = predict(ten, photos[:1], base_model=lite0, topk=20)
    assert len(predictions[0].top) == 10 and predictions[0].top[0].label.startswith("class ")
    assert predictions[0].agreement is None and predictions[0].base_top[0].index in CATS
    assert any("not ImageNet" in w for w in warnings) and any("no agreement" in w for w in warnings)
    named, warnings = predict(ten, photos[:1], labels=[f"c{i}" for i in range(10)])
    assert named[0].top[0].label.startswith("c") and warnings == []


def test_awkward_images_in_one_batch_and_img_size(lite0):
    tiny = np.zeros((1, 1), np.uint8)
    predictions, _ = predict(lite0, [tiny, data.coffee()], img_size=160)
    assert [p.image for p in predictions] == ["array", "array"]
    assert predictions[1].top[0].index == ESPRESSO
    assert data_config(lite0, 160)["input_size"] == (3, 160, 160)


def test_bad_arguments(lite0, photos):
    with pytest.raises(SpecError, match="topk"):
        predict(lite0, photos, topk=0)
    with pytest.raises(SpecError, match="labels"):
        predict(lite0, photos, labels=["a", "b"])
    with pytest.raises(SpecError, match="image 'nope.jpg'"):
        predict(lite0, ["nope.jpg"])
    assert predict(lite0, []) == ([], [])
