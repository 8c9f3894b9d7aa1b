"""The Report contract (docs/report.md): typed, round-trips through JSON, its committed schema is current, and
`report --json` validates against it; compare in Python and on the command line."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import playground as pg
from playground.cli import main
from playground.compare import Comparison
from playground.report import Report, report_schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "report.schema.json"
SMALL = {"backbone": "resnet18", "img_size": 64}
SE4 = {**SMALL, "insert": [{"at": "stage4", "module": "se"}]}


@pytest.fixture(scope="module")
def chelsea():
    from skimage import data
    return data.chelsea()


def test_committed_schema_is_current():
    assert json.loads(SCHEMA_FILE.read_text()) == report_schema(), \
        "docs/report.schema.json is stale: run `playground schema > docs/report.schema.json`"


def test_report_round_trips_and_validates(chelsea):
    r = pg.analyze({**SE4, "stem": {"stride": 4}}, latency={"min_run_time": 0.1, "max_run_time": 1, "base": True},
                   images=[chelsea], topk=3)
    assert r.latency and r.base_latency and r.predictions and r.stem and r.modified
    data = json.loads(r.to_json())
    jsonschema.validate(data, report_schema())
    again = Report.from_dict(data)
    assert again == r and isinstance(again.params.by_insert[0], type(r.params.by_insert[0]))
    assert again.predictions[0].agreement.rank_changes == r.predictions[0].agreement.rank_changes


def test_from_dict_refuses_a_wrong_type_in_one_line():
    data = pg.analyze(SMALL).to_dict()
    data["params"]["total"] = "many"
    with pytest.raises(pg.SpecError, match=r"^report: params\.total: Input should be a valid integer"):
        Report.from_dict(data)


def test_cli_json_validates(capsys):
    assert main(["report", "se_resnet50", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, report_schema())
    assert data["params"]["total"] == 28_088_024 and data["params"]["by_insert"][0]["count"] == 8_464


def test_compare_two_specs():
    c = pg.compare(SMALL, SE4)
    a, b = c.sides
    assert (a.name, b.name) == ("A", "B") and b.params - a.params == b.params_vs_base == 33_312
    assert [row.part for row in c.stages] == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    stage4 = next(row for row in c.stages if row.part == "stage4")
    assert stage4.params[1] - stage4.params[0] == 33_312 and all(row.same for row in c.shapes)
    assert c.latency == [] and c.predictions == [] and c.caveats == []
    assert Comparison.from_dict(json.loads(c.to_json())) == c


def test_compare_four_specs_latency_predictions_and_caveats(chelsea):
    specs = [SMALL, SE4, {**SMALL, "img_size": 96}, {**SMALL, "stem": {"stride": 4}}]
    c = pg.compare(*specs, latency={"min_run_time": 0.1, "max_run_time": 1}, images=[chelsea], topk=3)
    assert [s.name for s in c.sides] == ["A", "B", "C", "D"]
    assert [d.side for d in c.latency] == ["B", "C", "D"]
    a = c.sides[0].latency
    for d, s in zip(c.latency, c.sides[1:]):
        apart = s.latency.median_ci_ms[0] > a.median_ci_ms[1] or a.median_ci_ms[0] > s.latency.median_ci_ms[1]
        assert d.clear == apart and d.delta_ms == pytest.approx(s.latency.median_ms - a.median_ms)
        assert d.ratio == pytest.approx(s.latency.median_ms / a.median_ms)
    (row,) = c.predictions
    assert row.agrees_with_a[0] and row.topk_overlap_with_a[0] == 1.0
    assert any("random weights" in x for x in c.caveats) and any("image sizes" in x for x in c.caveats)
    stem = next(r for r in c.shapes if r.point == "stage1")
    assert stem.shapes[0] == [1, 64, 16, 16] and stem.shapes[3] == [1, 64, 8, 8] and not stem.same


def test_compare_names_the_bad_spec():
    with pytest.raises(pg.SpecError, match=r"^spec B: backbone: unknown model 'resnet5O'"):
        pg.compare(SMALL, {"backbone": "resnet5O"})
    with pytest.raises(pg.SpecError, match=r"^spec C: stem\.stride"):
        pg.compare(SMALL, SMALL, {**SMALL, "stem": {"stride": 0}})
    with pytest.raises(pg.SpecError, match="compare takes 2 to 4"):
        pg.compare(SMALL)


def test_cli_compare(capsys, tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("backbone: resnet18\nimg_size: 64\n")
    b.write_text("backbone: resnet18\nimg_size: 64\ninsert: [{at: stage4, module: se}]\n")
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "+33,312" in out and "stage4" in out
    assert main(["compare", str(a), str(b), "--json"]) == 0
    c = Comparison.from_dict(json.loads(capsys.readouterr().out))
    assert c.sides[1].params - c.sides[0].params == 33_312

    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone: resnet18\nimg_size: 5000\n")
    assert main(["compare", str(a), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: spec B: img_size: 5000 is out of range") and "\n" not in err
    assert main(["compare", str(a)]) == 2
    assert "compare takes 2 to 4" in capsys.readouterr().err
