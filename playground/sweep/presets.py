"""Sweep presets: named sweeps in `sweep_presets/*.yaml` (a title and a description of what each explores)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import SpecError, close_matches
from .spec import SweepSpec, load_sweep

__all__ = ["sweep_preset_files", "list_sweep_presets", "load_sweep_preset", "resolve_sweep", "SWEEP_PRESET_DIR"]

SWEEP_PRESET_DIR = Path(__file__).resolve().parent.parent / "sweep_presets"


@lru_cache(maxsize=1)
def sweep_preset_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SWEEP_PRESET_DIR.glob("*.yaml"))}


def list_sweep_presets() -> dict[str, SweepSpec]:
    """Every sweep preset by name, loaded and validated."""
    return {name: load_sweep(path) for name, path in sweep_preset_files().items()}


def load_sweep_preset(name: str) -> SweepSpec:
    files = sweep_preset_files()
    if name not in files:
        raise SpecError(f"sweep preset: unknown {name!r}{close_matches(name, files)}; allowed: "
                        f"{', '.join(files) or 'none'}")
    return load_sweep(files[name])


def resolve_sweep(arg: str) -> SweepSpec:
    """A CLI argument: a sweep preset's name, a .yaml / .json file, or YAML text."""
    if arg in sweep_preset_files():
        return load_sweep_preset(arg)
    if "\n" not in arg and len(arg) < 1024:
        try:
            if arg.endswith((".yaml", ".yml", ".json")) or Path(arg).is_file():
                return load_sweep(Path(arg))
        except OSError:
            pass
    if ":" in arg:
        return load_sweep(arg)
    raise SpecError(f"sweep: {arg!r} is neither a sweep preset{close_matches(arg, sweep_preset_files())} nor a "
                    f"file; presets: {', '.join(sweep_preset_files()) or 'none'}")
