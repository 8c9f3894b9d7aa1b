"""The timm zoo against timm's own published table: one check per backbone family.

`REFERENCE` (`published`) is timm's inference benchmark table (results/benchmark-infer-amp-nchw-pt291-cu130-5090.csv in
huggingface/pytorch-image-models): params (M), GMACs and activations (M) from fvcore at batch 1, attention
counted, reparameterisable models in their fused deploy form. Its numbers are rounded to two decimals, so a
comparison allows half a unit of the last digit on top of the relative tolerance.

`check(name)` runs what a user would do with a backbone, each step independently:

1. analyse it (deploy form, as the table) and compare params, MACs and activations with the table, and plain
   fvcore's MACs;
2. stitch SE at `stage2` and `{serial: [se, eca]}` at `final`, gated: the logits must equal the base's bit for
   bit, and the base's state dict must load with only the stitched parameters missing;
3. double the embedding stride (the first strided conv or pool): it builds and runs, or it is refused in domain words.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import torch

from .errors import SpecError, StemRefusal, first_line
from .published import REFERENCE, Reference, reference_table  # noqa: F401  (re-exported)

__all__ = ["Reference", "reference_table", "family", "families", "within", "ZooResult", "check"]

PARAMS_TOLERANCE = 0.005  # relative, plus half a unit of the table's last digit (0.005 M)
MACS_TOLERANCE = 0.01  # relative, plus 0.005 GMACs
ACTIVATIONS_TOLERANCE = 0.01  # relative, plus 0.005 M activations
RAW_MARKERS = ("the forward pass fails", "cannot be built for")  # our wrappers around another library's text


def family(name: str) -> str:
    """A model's family: its timm module and its name's first word without the size (`resnet50` -> resnet)."""
    import timm.models._registry as registry
    word = name.split("_")[0]
    word = re.sub(r"(?<!v)\d+[a-z]?$", "", word) or word
    return f"{registry._model_to_module.get(name, '?')}:{word}"


def families(table: dict[str, Reference]) -> dict[str, Reference]:
    """family -> its smallest model in the table (fewest params, then fewest MACs)."""
    groups: dict[str, list[Reference]] = defaultdict(list)
    for ref in table.values():
        groups[family(ref.model)].append(ref)
    return {f: min(refs, key=lambda r: (r.params_m, r.gmacs, r.model)) for f, refs in sorted(groups.items())}


def within(value: float, ref: float, rel: float) -> bool:
    """`value` agrees with a table figure rounded to two decimals, to `rel` relative."""
    return abs(value - ref) <= rel * ref + 0.005


@dataclass
class ZooResult:
    model: str
    img_size: int
    reference: Reference
    analysed: bool = False
    error: str | None = None
    params: int | None = None
    macs: int | None = None
    activations: int | None = None
    fvcore_macs: int | None = None  # plain FlopCountAnalysis, its default handles
    uncounted_ops: list[str] = field(default_factory=list)
    stitched: bool = False
    stitch_error: str | None = None
    gated_identical: bool = False
    checkpoint_loads: bool = False
    stride: str | None = None  # e.g. 'conv1: 2 -> 4'
    stride_ok: bool = False
    stride_refusal: str | None = None
    stride_fits_at: int | None = None  # the nearest image size where the doubled stride works, as the refusal says

    @property
    def params_ok(self) -> bool:
        return self.params is not None and within(self.params / 1e6, self.reference.params_m, PARAMS_TOLERANCE)

    @property
    def macs_ok(self) -> bool:
        return self.macs is not None and within(self.macs / 1e9, self.reference.gmacs, MACS_TOLERANCE)

    @property
    def activations_ok(self) -> bool:
        return self.activations is not None and within(self.activations / 1e6, self.reference.macts_m,
                                                       ACTIVATIONS_TOLERANCE)

    @property
    def fvcore_macs_ok(self) -> bool:
        return self.fvcore_macs is not None and within(self.fvcore_macs / 1e9, self.reference.gmacs, MACS_TOLERANCE)

    @property
    def stride_raw(self) -> bool:
        """A refusal that passes another library's text through instead of saying why in domain words."""
        return bool(self.stride_refusal) and any(m in self.stride_refusal for m in RAW_MARKERS)


def _plain_fvcore(model: torch.nn.Module, img_size: int) -> int:
    from .counts import FlopCountAnalysis
    analysis = FlopCountAnalysis(model.eval(), torch.zeros(1, 3, img_size, img_size))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with torch.no_grad():
        return int(analysis.total())


STITCH = [{"at": "stage2", "module": "se"}, {"at": "final", "module": {"serial": ["se", "eca"]}}]


def check(ref: Reference, fvcore: bool = True) -> ZooResult:
    """Every step of the module docstring for one model; a step that fails is recorded, the next still runs."""
    from .analyze import analyze
    from .build import build
    from .stem import downsampling_geometry, first_downsampling
    base_spec = {"backbone": ref.model, "img_size": ref.img_size, "reparameterize": True}
    res = ZooResult(ref.model, ref.img_size, ref)
    try:
        report = analyze(base_spec, summary_depth=1)
        res.analysed, res.params, res.macs = True, report.params.total, report.macs.total
        res.activations = report.activations.total
        res.uncounted_ops = list(report.macs.uncounted_ops)
        base = build(base_spec)
        if fvcore:
            res.fvcore_macs = _plain_fvcore(base.model, ref.img_size)
    except Exception as e:  # noqa: BLE001  recorded: the zoo run goes on
        res.error = f"{type(e).__name__}: {first_line(e, 400)}"
        return res

    try:
        built = build({**base_spec, "insert": STITCH, "gate": True})
        x = torch.randn(1, 3, ref.img_size, ref.img_size, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            res.gated_identical = bool(torch.equal(built.model(x), built.base(x)))
        loaded = built.model.load_state_dict(built.base.state_dict(), strict=False)
        stitched = {f"{i.path}.{n}" for i in built.insertions for n, _ in i.module.named_parameters()}
        res.checkpoint_loads = not loaded.unexpected_keys and set(loaded.missing_keys) == stitched
        res.stitched = True
    except Exception as e:  # noqa: BLE001
        res.stitch_error = f"{type(e).__name__}: {first_line(e, 400)}"

    conv = first_downsampling(base.probed())  # None, or a layer without a stride: the build refuses, saying why
    s0 = (downsampling_geometry(base.model.get_submodule(conv)) or (0, 1, 0))[1] if conv else 1
    try:
        changed = build({**base_spec, "stem": {"stride": 2 * s0}})
        with torch.inference_mode():
            changed.model(torch.zeros(1, 3, ref.img_size, ref.img_size))
        res.stride, res.stride_ok = f"{conv}: {s0} -> {2 * s0}", True
    except SpecError as e:
        res.stride_refusal = str(e)
        res.stride_fits_at = e.fits.img_size if isinstance(e, StemRefusal) and e.fits else None
    except Exception as e:  # noqa: BLE001  a crash, not a refusal: counted as raw text
        res.stride_refusal = f"the forward pass fails: {type(e).__name__}: {first_line(e, 400)}"
    return res
