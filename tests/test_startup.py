"""The web server imports no torch (its models run in worker processes), so the page is served within seconds;
the CLI and the Python API import it when they run a model. Each check runs in a fresh interpreter."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "torchvision")


def imported_after(code: str) -> set[str]:
    """Which of HEAVY a fresh interpreter holds after running `code`."""
    out = subprocess.run([sys.executable, "-c", f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
                              "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    return set(out.stdout.split()) & set(HEAVY)


def test_the_app_builds_its_page_without_torch():
    assert imported_after("import app") == set()  # app.py builds the demo at import


def test_specs_parse_and_results_unpickle_without_torch():
    code = ("import pathlib, pickle, playground as pg\n"
            "from playground.report import Report\n"
            "spec = pg.load_spec('backbone: resnet50\\ninsert: [{at: stage3, module: {serial: [se, eca]}}]')\n"
            "pickle.loads(pickle.dumps(spec))\n"
            "from playground.export import ExportResult, OnnxCheck\n"  # an export's result, from a worker
            "check = OnnxCheck(1e-6, 1e-4, ('chelsea',), 'tabby', True, 20, '1.32.0', ('CPUExecutionProvider',), True)\n"
            "pickle.loads(pickle.dumps(ExportResult(pathlib.Path('m.onnx'), 'onnx', (), check)))\n"
            "pg.load_spec('backbone: resnet50\\nhead_norm: layernorm')\n"
            "from playground.errors import StemRefusal, WhatFits\n"  # a refused stride, from a worker
            "e = pickle.loads(pickle.dumps(StemRefusal('stem.stride: 4 ...', WhatFits([1, 2], 256))))\n"
            "assert e.fits.img_size == 256")
    assert imported_after(code) == set()


def test_the_api_imports_torch_when_it_builds():
    assert imported_after("import playground as pg\npg.build") >= {"torch", "timm"}
