"""The CLI as a user runs it: report on a preset and on a YAML file, --json, points, presets, bad input."""
import json
import subprocess
import sys

import pytest

from playground.cli import main

CONTRACT = ["spec", "backbone", "img_size", "modified", "params", "macs", "activations", "points", "shapes", "tree", "tree_diff",
            "summary", "stem", "weights", "latency", "base_latency", "memory", "predictions",
            "warnings"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_on_a_preset(capsys):
    code, out, err = run(capsys, "report", "se_resnet50")
    assert code == 0 and err == ""
    assert "SE-ResNet-50 — resnet50 @ 224x224" in out
    assert "28.09 M" in out and "GMACs = the 'FLOPs' of papers" in out
    assert "layer4.2.bn3.after.0" in out


def test_report_on_a_yaml_file_as_json(capsys, tmp_path):
    spec = tmp_path / "mine.yaml"
    spec.write_text("backbone: convnext_atto\ninsert:\n  - {at: stage2, module: {serial: [se, eca]}}\n")
    code, out, _ = run(capsys, "report", str(spec), "--json")
    data = json.loads(out)
    assert code == 0 and all(k in data for k in CONTRACT)
    assert data["spec"] == {"backbone": "convnext_atto", "insert": [{"at": "stage2",
                                                                     "module": {"serial": ["se", "eca"]}}]}
    assert data["params"]["delta"] == data["params"]["by_insert"][0]["count"] > 0


def test_points_and_presets(capsys):
    code, out, _ = run(capsys, "points", "vit_tiny_patch16_224", "--img-size", "160")
    assert code == 0 and "stage12" in out and "[1, 101, 192]" in out
    code, out, _ = run(capsys, "presets")
    assert code == 0 and "se_resnet50" in out and "ECA-ResNet-50" in out


@pytest.mark.parametrize("argv,message", [
    (["report", "backbone_typo.yaml"], "spec file 'backbone_typo.yaml' does not exist"),
    (["report", "se_resnet5"], "did you mean 'se_resnet50'"),
    (["points", "resnt50"], "backbone: unknown model 'resnt50'"),
    (["report", "se_resnet50", "--dtype", "fp8"], "invalid choice: 'fp8'"),
    (["report", "se_resnet50", "--image", "missing.jpg"], "missing.jpg"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_bad_spec_in_a_real_process(tmp_path):
    """As a user sees it: exit status 2, one line on stderr, no traceback."""
    spec = tmp_path / "bad.yaml"
    spec.write_text("backbone: resnet50\ninsert: [{at: stage9, module: se}]\n")
    proc = subprocess.run([sys.executable, "-m", "playground", "report", str(spec)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "error: insert[0].at: 'stage9': this backbone has stages 1 to 4\n"


def test_export_round_trips(capsys, tmp_path):
    import torch
    from safetensors.torch import load_file

    import playground as pg
    from playground.presets import load_preset
    code, out, _ = run(capsys, "export", "eca_resnet50", "--format", "yaml", "-o", str(tmp_path / "spec"))
    assert code == 0 and pg.load_spec(tmp_path / "spec.yaml") == load_preset("eca_resnet50")
    code, out, _ = run(capsys, "export", "eca_resnet50", "--format", "safetensors", "-o", str(tmp_path / "m"))
    state = load_file(str(tmp_path / "m.safetensors"))
    built = pg.build(load_preset("eca_resnet50"))
    assert code == 0 and set(state) == set(built.model.state_dict())
    code, out, _ = run(capsys, "export", "eca_resnet50", "--format", "torchscript", "-o", str(tmp_path / "m"))
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(scripted(x), built.model.eval()(x), atol=1e-4)
    code, out, err = run(capsys, "export", "eca_resnet50", "--format", "python", "-o", str(tmp_path / "m"))
    namespace = {}
    exec((tmp_path / "m.py").read_text().replace("print(", "(lambda *a: None)("), namespace)
    assert sum(p.numel() for p in namespace["model"].parameters()) == 25_557_032 + 80


def test_onnx_export_prints_how_it_was_verified(capsys, tmp_path):
    from playground.export import onnx_missing
    if onnx_missing():
        pytest.skip("the `onnx` extra is not installed")
    spec = tmp_path / "atto.yaml"
    spec.write_text("backbone: convnext_atto\nimg_size: 64\ninsert: [{at: stage2, module: eca}]\n")
    code, out, err = run(capsys, "export", str(spec), "--format", "onnx", "-o", str(tmp_path / "atto"))
    path, line = out.splitlines()
    assert code == 0 and err == "" and path == str(tmp_path / "atto.onnx")
    assert line.startswith("ONNX verified: max |diff| ") and " on chelsea, coffee (top-1 " in line
    assert float(line.split()[4]) <= 1e-4  # the tolerance: see tests/test_onnx.py


def test_latency_lines_show_the_interval_and_the_noise_rule():
    import playground as pg
    from playground.cli import format_comparison, format_report
    from playground.compare import Comparison, LatencyDelta, ShapeRow, Side
    from playground.report import Latency

    def lat(median: float, lo: float, hi: float) -> Latency:
        return Latency(device="cpu", batch=1, dtype="fp32", channels_last=False, compiled=False, threads=2,
                       median_ms=median, iqr_ms=2.5, median_ci_ms=(lo, hi), throughput=1e3 / median, tflops=None,
                       times_ms=[median] * 10)
    r = pg.analyze({"backbone": "resnet18", "img_size": 64})
    r.latency = lat(80.0, 78.9, 81.25)
    assert "latency 80.00 ms median (95% CI 78.90-81.25 ms, IQR 2.50 ms, 10 blocks) on cpu" in format_report(r)
    sides = [Side(name=n, title=n, backbone="resnet18", img_size=64, params=1, params_vs_base=0, macs=1,
                  macs_vs_base=0, stitched=0, pretrained=False, latency=x)
             for n, x in (("A", lat(80.0, 78.9, 81.25)), ("B", lat(84.0, 81.0, 86.0)))]
    shapes = [ShapeRow(point="final", shapes=[[1, 512, 2, 2]] * 2, same=True)]
    text = format_comparison(Comparison(sides=sides, stages=[], shapes=shapes, latency=[
        LatencyDelta(side="B", delta_ms=4.0, ratio=1.05, clear=False)]))
    assert "78.90-81.25 ms" in text and "+4.00 ms ~" in text and "within noise" in text


def test_report_with_memory(capsys):
    code, out, err = run(capsys, "report", "se_resnet50", "--memory", "--memory-batch", "2", "--optimizer", "sgd")
    assert code == 0 and err == ""
    assert "activations (M)" in out and "memory  batch 2, fp32" in out and "sgd state" in out
    code, out, _ = run(capsys, "report", "se_resnet50", "--memory", "--json")
    assert json.loads(out)["memory"]["batch"] == 8
