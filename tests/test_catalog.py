"""The module catalog and the other torch-free tables agree with what timm and the factories declare."""
from __future__ import annotations

import pytest
from timm.layers import create_act, get_act_layer

from playground import backbones, catalog, choices, modules


@pytest.mark.parametrize("name", list(catalog.MODULES))
def test_declared_argument_types_are_timms(name):
    """The catalog's data is what the module's timm constructor takes (read by introspection), so a timm upgrade
    that changes a signature fails here instead of letting the spec validator drift."""
    assert dict(catalog.MODULES[name].args) == dict(modules.introspected_arg_types(name))


def test_every_catalog_module_has_a_factory_and_its_data():
    assert list(modules.catalog()) == list(catalog.MODULES)
    for name, entry in modules.catalog().items():
        info = catalog.MODULES[name]
        assert (entry.paper, entry.needs_grid, entry.residual, entry.arg_types) == \
            (info.paper, info.needs_grid, info.residual, info.args)


def test_activation_names_are_timms():
    assert set(catalog.ACT_LAYERS) == set(create_act._ACT_LAYER_DEFAULT)
    for name in catalog.ACT_LAYERS:
        assert get_act_layer(name) is not None


def test_head_norm_names_are_the_layers_built():
    assert tuple(backbones.HEAD_NORMS) + (choices.REMOVE_HEAD_NORM,) == choices.HEAD_NORMS  # and `remove`


def test_unknown_activation_is_refused_with_a_hint():
    with pytest.raises(catalog.SpecError, match=r"act_layer: unknown layer 'rleu' \(did you mean 'relu'"):
        catalog.check_args(catalog.MODULES["se"], {"act_layer": "rleu"}, "insert[0].module.args")
    catalog.check_args(catalog.MODULES["se"], {"act_layer": "ReLU"}, "insert[0].module.args")  # timm lowercases
