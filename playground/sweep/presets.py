"""Sweep presets: named sweeps in `sweep_presets/*.yaml` (a title and a description of what each explores)."""
from __future__ import annotations

from pathlib import Path

from ..presets import PresetFolder
from .spec import SweepSpec, load_sweep

__all__ = ["SWEEP_PRESETS", "sweep_preset_files", "list_sweep_presets", "load_sweep_preset", "resolve_sweep",
           "SWEEP_PRESET_DIR"]

SWEEP_PRESET_DIR = Path(__file__).resolve().parent.parent / "sweep_presets"
SWEEP_PRESETS: PresetFolder[SweepSpec] = PresetFolder(SWEEP_PRESET_DIR, load_sweep, "sweep preset", "sweep")

sweep_preset_files = SWEEP_PRESETS.files
list_sweep_presets = SWEEP_PRESETS.all
load_sweep_preset = SWEEP_PRESETS.get
resolve_sweep = SWEEP_PRESETS.resolve
