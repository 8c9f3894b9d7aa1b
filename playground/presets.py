"""Presets: named specs in `presets/*.yaml` (a title and a description of what each demonstrates), and the folder
type that holds them (the sweep presets, `sweep_presets/*.yaml`, are another `PresetFolder`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Generic, TypeVar

from .errors import SpecError, close_matches
from .spec import Spec, load_spec

__all__ = ["PresetFolder", "SPEC_PRESETS", "list_presets", "load_preset", "preset_files", "resolve", "preset_name"]

T = TypeVar("T")


@dataclass(frozen=True)
class PresetFolder(Generic[T]):
    """Named YAML files of one folder, each read by `load` (which validates it): `kind` names a preset in messages,
    `what` the thing a preset is ('spec', 'sweep')."""
    folder: Path
    load: Callable[[Path | str], T]
    kind: str
    what: str

    def files(self) -> dict[str, Path]:
        return _files(self.folder)

    def all(self) -> dict[str, T]:
        """Every preset by name, loaded and validated."""
        return {name: self.load(path) for name, path in self.files().items()}

    def get(self, name: str) -> T:
        files = self.files()
        if name not in files:
            raise SpecError(f"{self.kind}: unknown {self.kind} {name!r}{close_matches(name, files)}; "
                            f"allowed: {', '.join(files) or 'none'}")
        return self.load(files[name])

    def resolve(self, arg: str) -> T:
        """A CLI argument: a preset's name, a .yaml / .json file, or YAML text."""
        if arg in self.files():
            return self.get(arg)
        if "\n" not in arg and len(arg) < 1024:
            try:
                if arg.endswith((".yaml", ".yml", ".json")) or Path(arg).is_file():
                    return self.load(Path(arg))
            except OSError:
                pass
        if ":" in arg:
            return self.load(arg)
        raise SpecError(f"{self.what}: {arg!r} is neither a {self.kind}{close_matches(arg, self.files())} nor a "
                        f"{self.what} file; {self.kind}s: {', '.join(self.files()) or 'none'}")


@lru_cache(maxsize=8)
def _files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}  # package files: listed once per process


PRESET_DIR = Path(__file__).resolve().parent / "presets"
SPEC_PRESETS: PresetFolder[Spec] = PresetFolder(PRESET_DIR, load_spec, "preset", "spec")

preset_files = SPEC_PRESETS.files
list_presets = SPEC_PRESETS.all
load_preset = SPEC_PRESETS.get
resolve = SPEC_PRESETS.resolve


@lru_cache(maxsize=1)
def _loaded() -> tuple[tuple[str, Spec], ...]:
    return tuple(list_presets().items())  # package files: read once per process


def preset_name(spec: Spec | None) -> str | None:
    """The name of the preset this spec is (title included), else None."""
    return next((name for name, s in _loaded() if s == spec), None)
