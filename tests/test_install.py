"""`pip install .` into a fresh venv gives a working `playground` console script (with its package data).

Reinstalling torch, gradio, ... into a new venv would take minutes and GBs, so the fresh venv is made
`--without-pip` and a `.pth` file appends this interpreter's site-packages to its `sys.path`: pip, setuptools
and the runtime dependencies come from there, after the fresh site-packages. A plain path line in a `.pth` does
not run the `.pth` files of the directory it names, so the repo's editable install (an `__editable__...pth`
hook in this venv) stays inactive there; `__file__` checks below make sure the installed copy is what runs.
The package itself is a real, non-editable wheel built (`--no-build-isolation`) from a copy of the source tree,
so the build writes nothing into the checkout and the checkout is never on the fresh venv's path.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.version(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


# Looked up as distributions, not with importlib.util.find_spec: setuptools' distutils hook treats a find_spec of
# "pip" as "pip is running" and switches itself off for the rest of the process (torch.utils.benchmark then fails).
MISSING = [m for m in ("pip", "setuptools") if not _installed(m)] + \
    ([] if importlib.util.find_spec("venv") else ["venv"])
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"installing needs {', '.join(MISSING)} in the test env")

# What a checkout may hold that is no part of the source: environments, VCS, caches, build outputs.
IGNORE = shutil.ignore_patterns(".venv", "venv", ".git", "__pycache__", "*.pyc", "*.egg-info", "build", "dist",
                                ".pytest_cache", ".hypothesis", ".ruff_cache", "out")
DATA_CSV = "data/timm-benchmark-infer-pt291-5090.csv"


def _run(args, cwd, timeout=120, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONNOUSERSITE="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin dir, fresh site-packages, cwd outside the checkout) of a venv with the package `pip install`ed."""
    tmp = tmp_path_factory.mktemp("install")
    src, fresh, cwd = tmp / "src", tmp / "fresh", tmp / "cwd"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    cwd.mkdir()
    r = _run([sys.executable, "-m", "venv", "--without-pip", fresh], cwd)
    if r.returncode:
        pytest.skip(f"python -m venv failed: {r.stderr.strip()[-500:]}")
    bindir = fresh / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    r = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd)
    assert r.returncode == 0, r.stderr
    site = Path(r.stdout.strip())
    site.mkdir(parents=True, exist_ok=True)
    (site / "_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    r = _run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--ignore-installed",
              src], cwd, timeout=300)
    assert r.returncode == 0, f"pip install failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return bindir, site, cwd


def test_installed_copy_is_the_one_imported(installed):
    bindir, site, cwd = installed
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    r = _run([python, "-c", "import playground, playground.cli, torch; print(playground.__file__); "
                            "print(playground.cli.__file__); print(torch.__file__)"], cwd)
    assert r.returncode == 0, r.stderr
    pkg, cli, torch_file = (Path(line) for line in r.stdout.split())
    assert pkg.parent == site / "playground", f"imported {pkg}, not the installed copy under {site}"
    assert cli.parent == site / "playground"
    assert not torch_file.is_relative_to(site), "dependencies should come from the test env, not be reinstalled"
    assert (site / "playground" / DATA_CSV).is_file(), f"package data {DATA_CSV} not installed"
    assert (bindir / ("playground.exe" if os.name == "nt" else "playground")).is_file()


def test_presets(installed):
    from playground.presets import preset_files  # the checkout's presets: the installed script must list the same

    expected = set(preset_files())
    assert expected, "no presets in the checkout"
    bindir, _, cwd = installed
    r = _run([bindir / "playground", "presets"], cwd)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    r = _run([bindir / "playground", "presets", "--json"], cwd)
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)) == expected, ("the installed package lists other presets than the checkout: "
                                                   "are the preset YAMLs inside the package and in its package data?")


def test_sweep_presets(installed):
    from playground.sweep import sweep_preset_files  # the checkout's: the installed package must carry the same

    expected = set(sweep_preset_files())
    assert expected, "no sweep presets in the checkout"
    bindir, _, cwd = installed
    r = _run([bindir / "playground", "sweep", "--list"], cwd)
    assert r.returncode == 0, r.stderr
    listed = {line.split()[0] for line in r.stdout.splitlines() if line.strip() and not line.startswith(" ")}
    assert listed == expected, "are the sweep presets in the package data (sweep_presets/*.yaml)?"


def test_points_json(installed):
    bindir, _, cwd = installed
    r = _run([bindir / "playground", "points", "resnet18", "--img-size", "64", "--json"], cwd)
    assert r.returncode == 0, r.stderr
    pts = json.loads(r.stdout)
    assert pts and pts[0]["shape"] == [1, 3, 64, 64]
    assert {"name", "path", "channels", "shape"} <= set(pts[0])


def test_bad_input_is_one_line_and_exit_2(installed):
    bindir, _, cwd = installed
    r = _run([bindir / "playground", "report", "no_such_preset_xyz"], cwd)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_preset_xyz" in lines[0], r.stderr
