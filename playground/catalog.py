"""The module catalog as data: each insertable module's name, paper, the arguments it accepts (with their JSON
types) and where it works. No torch: the spec validator, the page and the CLI's argument checks read it, and the
web server never imports torch.

The factories (timm's classes) are in `playground.modules`. The argument types declared here are what
`modules.introspected_arg_types` reads from timm's constructors; a test holds the two equal, so this table cannot
go stale silently when timm changes a signature.

    >>> MODULES["eca"].needs_grid, sorted(MODULES["ese"].args)
    (False, ['add_maxpool', 'gate_layer'])
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError, close_matches

__all__ = ["ModuleInfo", "MODULES", "ACT_LAYERS", "LAYER_ARGS", "catalog", "get_info", "check_args"]

ArgTypes = Mapping[str, tuple[type, ...]]

INT: tuple[type, ...] = (int,)
FLOAT: tuple[type, ...] = (float, int)  # a real number may be written as 2 in YAML
BOOL: tuple[type, ...] = (bool,)
STR: tuple[type, ...] = (str,)

# Argument groups that timm's attention modules share.
SE_ARGS: ArgTypes = {"rd_ratio": FLOAT, "rd_channels": INT, "rd_divisor": INT}  # the SE bottleneck's width
LAYERS: ArgTypes = {"act_layer": STR, "gate_layer": STR}  # activations, by timm name
ECA_ARGS: ArgTypes = {"kernel_size": INT, "gamma": FLOAT, "beta": FLOAT, **LAYERS}
CBAM_ARGS: ArgTypes = {**SE_ARGS, "spatial_kernel_size": INT, **LAYERS, "mlp_bias": BOOL}
COORD_ARGS: ArgTypes = {**SE_ARGS, "se_factor": FLOAT, "bias": BOOL, **LAYERS, "has_skip": BOOL}

LAYER_ARGS = frozenset(LAYERS)
# timm's activation layer names, as `timm.layers.get_act_layer` takes them (in any case); a test holds this equal to
# timm's registry.
ACT_LAYERS = ("celu", "elu", "gelu", "gelu_tanh", "hard_mish", "hard_sigmoid", "hard_swish", "hardsigmoid",
              "hardswish", "identity", "leaky_relu", "mish", "prelu", "quick_gelu", "relu", "relu6", "selu",
              "sigmoid", "silu", "swish", "tanh")


@dataclass(frozen=True)
class ModuleInfo:
    """One insertable module as a spec sees it: the arguments it takes and where it works."""
    name: str
    paper: str
    args: ArgTypes = field(default_factory=dict)  # argument name -> accepted JSON types
    needs_grid: bool = False  # needs a 2-D map; channel-only modules also run on token sequences with no grid
    residual: bool = False  # adds its own skip connection


MODULES: dict[str, ModuleInfo] = {m.name: m for m in (
    ModuleInfo("identity", "no-op; a skip branch in composites (parallel [identity, se] with add is a residual SE)"),
    ModuleInfo("se", "Hu et al., Squeeze-and-Excitation Networks, CVPR 2018 (timm SEModule)",
               {**SE_ARGS, "add_maxpool": BOOL, "bias": BOOL, **LAYERS}),
    ModuleInfo("ese", "Lee & Park, CenterMask (VoVNetV2 effective SE), CVPR 2020 (timm EffectiveSEModule)",
               {"add_maxpool": BOOL, "gate_layer": STR}),
    ModuleInfo("eca", "Wang et al., ECA-Net: Efficient Channel Attention, CVPR 2020 (timm EcaModule)", ECA_ARGS),
    ModuleInfo("ceca", "ECA-Net with circular padding (timm CecaModule)", ECA_ARGS),
    ModuleInfo("ecam", "ECA with an MLP instead of the 1-D conv, a timm experiment", {**ECA_ARGS, **SE_ARGS}),
    ModuleInfo("gc", "Cao et al., GCNet: Non-local Networks Meet Squeeze-Excitation Networks, 2019",
               {"use_attn": BOOL, "fuse_add": BOOL, "fuse_scale": BOOL, "init_last_zero": BOOL, **SE_ARGS, **LAYERS}),
    ModuleInfo("gca", "GCNet with additive fusion (timm GlobalContext fuse_add)",
               {"use_attn": BOOL, "init_last_zero": BOOL, **SE_ARGS, **LAYERS}),
    ModuleInfo("cbam", "Woo et al., CBAM: Convolutional Block Attention Module, ECCV 2018", CBAM_ARGS,
               needs_grid=True),
    ModuleInfo("lcbam", "CBAM, light variant (timm LightCbamModule)", CBAM_ARGS, needs_grid=True),
    ModuleInfo("coord", "Hou et al., Coordinate Attention for Efficient Mobile Network Design, CVPR 2021",
               COORD_ARGS, needs_grid=True),
    ModuleInfo("scoord", "Coordinate Attention, simplified (timm SimpleCoordAttn)", COORD_ARGS, needs_grid=True),
    ModuleInfo("ela", "Xu & Wan, ELA: Efficient Local Attention for Deep CNNs, 2024",
               {"kernel_size": INT, "bias": BOOL, **LAYERS, "has_skip": BOOL}, needs_grid=True),
    ModuleInfo("strip", "Strip attention, a coordinate-attention variant (timm StripAttn)",
               {"use_conv": BOOL, "kernel_size": INT, "bias": BOOL, "gate_layer": STR, "has_skip": BOOL},
               needs_grid=True),
    ModuleInfo("nl", "Wang et al., Non-local Neural Networks, CVPR 2018 (timm NonLocalAttn)",
               {"use_scale": BOOL, **SE_ARGS}, needs_grid=True, residual=True),
)}


def catalog() -> dict[str, ModuleInfo]:
    return dict(MODULES)


def get_info(name: Any, where: str = "module") -> ModuleInfo:
    if not isinstance(name, str) or name not in MODULES:
        raise SpecError(
            f"{where}: unknown module {name!r}{close_matches(str(name), MODULES)}; "
            f"allowed: {', '.join(MODULES)}, or {{serial: [...]}} / {{parallel: [...], merge: add|mul|concat}}")
    return MODULES[name]


def check_args(info: ModuleInfo, args: dict[str, Any], where: str) -> None:
    """Validate a catalog module's arguments: known names, JSON types, layer names timm knows, sane ranges."""
    for key, value in args.items():
        if key not in info.args:
            raise SpecError(
                f"{where}.{key}: {info.name} takes no argument {key!r}{close_matches(key, info.args)}; "
                f"allowed: {', '.join(info.args) or 'none'}")
        ok = info.args[key]
        if isinstance(value, bool) and bool not in ok or not isinstance(value, ok):
            raise SpecError(
                f"{where}.{key}: {value!r} is not a {' or '.join(t.__name__ for t in ok)}")
        if key in LAYER_ARGS and value.lower() not in ACT_LAYERS:  # timm lowercases the name
            raise SpecError(f"{where}.{key}: unknown layer {value!r}{close_matches(value, ACT_LAYERS)}; use a timm "
                            f"activation name such as 'relu', 'gelu', 'sigmoid', 'hard_sigmoid'")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value < 0 or (key.endswith("ratio") and not 0 < value <= 64):
                raise SpecError(f"{where}.{key}: {value!r} is out of range")
            if key.endswith("kernel_size") and (value < 1 or value % 2 == 0 or value > 63):
                raise SpecError(f"{where}.{key}: {value!r} must be an odd number from 1 to 63")
