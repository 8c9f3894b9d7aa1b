"""timm's published table of its models: params (M), GMACs and activations (M) per model at its benchmark size.

The table is results/benchmark-infer-amp-nchw-pt291-cu130-5090.csv of huggingface/pytorch-image-models (fvcore at
batch 1, attention counted, reparameterisable models in their fused deploy form), shipped in `data/`. The zoo
check compares our counts with it (`zoo`); the app's budgets read it to refuse a giant before any worker builds
anything (`budgets.published_estimate`). No torch here: the web server reads it.

    >>> reference_table()["resnet50"]
    Reference(model='resnet50', img_size=160, params_m=25.56, gmacs=2.1, macts_m=5.67)
"""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REFERENCE", "Reference", "published_rows", "reference_table"]

REFERENCE = Path(__file__).parent / "data" / "timm-benchmark-infer-pt291-5090.csv"


@dataclass(frozen=True)
class Reference:
    """One row of timm's table."""
    model: str
    img_size: int
    params_m: float
    gmacs: float
    macts_m: float


@functools.cache
def published_rows(path: Path = REFERENCE) -> dict[str, tuple[Reference, ...]]:
    """model name (no pretrained tag) -> its rows, one per benchmarked image size (and pretrained tag). Read once."""
    out: dict[str, list[Reference]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            name = row["model"].split(".")[0]
            out.setdefault(name, []).append(Reference(name, int(row["infer_img_size"]), float(row["param_count"]),
                                                      float(row["infer_gmacs"]), float(row["infer_macts"])))
    return {name: tuple(rows) for name, rows in out.items()}


def reference_table(path: Path = REFERENCE) -> dict[str, Reference]:
    """model name -> its first row (the zoo check's reference: rows of one model agree at their sizes)."""
    return {name: rows[0] for name, rows in published_rows(path).items()}
