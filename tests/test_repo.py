"""The checkout itself: no half-finished merge in any tracked text file (one slipped into BENCHMARKS.md once)."""
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.MULTILINE)


def tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / f for f in out.splitlines() if f.endswith((".py", ".md", ".toml", ".yaml", ".yml", ".txt", ".sh",
                                                               ".json", ".css", ".js", "Dockerfile"))]


def test_no_merge_conflict_markers():
    left = [f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}"
            for path in tracked_text_files() if path.is_file()
            for text in [path.read_text(encoding="utf-8", errors="replace")] for m in MARKER.finditer(text)]
    assert not left, left
