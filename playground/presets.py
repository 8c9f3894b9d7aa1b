"""Presets: named specs in `presets/*.yaml` (a title and a description of what each demonstrates)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .errors import SpecError, close_matches
from .spec import Spec, load_spec

__all__ = ["list_presets", "load_preset", "preset_files", "resolve", "preset_name"]

PRESET_DIR = Path(__file__).resolve().parent / "presets"


@lru_cache(maxsize=1)
def preset_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.yaml"))}


def list_presets() -> dict[str, Spec]:
    """Every preset by name, loaded and validated."""
    return {name: load_spec(path) for name, path in preset_files().items()}


def load_preset(name: str) -> Spec:
    files = preset_files()
    if name not in files:
        raise SpecError(f"preset: unknown preset {name!r}{close_matches(name, files)}; "
                        f"allowed: {', '.join(files) or 'none'}")
    return load_spec(files[name])


def resolve(spec_arg: str) -> Spec:
    """A CLI spec argument: a preset name, a .yaml/.json path, or YAML text."""
    if spec_arg in preset_files():
        return load_preset(spec_arg)
    if "\n" not in spec_arg and len(spec_arg) < 1024:
        try:
            if spec_arg.endswith((".yaml", ".yml", ".json")) or Path(spec_arg).is_file():
                return load_spec(Path(spec_arg))
        except OSError:
            pass
    if ":" in spec_arg:
        return load_spec(spec_arg)
    raise SpecError(f"spec: {spec_arg!r} is neither a preset{close_matches(spec_arg, preset_files())} nor a "
                    f"spec file; presets: {', '.join(preset_files())}")


@lru_cache(maxsize=1)
def _loaded() -> tuple[tuple[str, Spec], ...]:
    return tuple(list_presets().items())  # package files: read once per process


def preset_name(spec: Spec | None) -> str | None:
    """The name of the preset this spec is (title included), else None."""
    return next((name for name, s in _loaded() if s == spec), None)
