"""Sweeps (issue 15): the axes' product and zip, the count limit, invalid variants kept with their reasons, the
on-disk cache (a second run computes nothing, a widened one only the new variants), the Pareto front on a hand-made
table, constraints, the CLI, and Ray in local mode giving the same table as the process pool.

Models are small (ResNet-18 at 64 px) so that a variant takes a second or two; every count asserted is exact
(integer parameter and MAC counts, the same on any CPU).
"""
from __future__ import annotations

import json

import pytest

import playground as pg
from playground.cli import main as cli_main
from playground.errors import SpecError
from playground.sweep import COLUMNS, load_sweep, pareto_front, parse_constraints, sweep
from playground.sweep.pareto import front_of
from playground.sweep.results import SweepRow
from playground.sweep.runners import RUNNERS, ThreadedRunner, inline

SMALL = {"base": {"backbone": "resnet18", "img_size": 64, "insert": [{"at": "stage4", "module": "se"}]},
         "axes": {"insert[0].module": ["se", "eca"], "insert[0].at": ["stage3", "stage4"]}}
# SE with timm's defaults (rd_ratio 1/16, rounded to a multiple of 8): 2 C rd + rd + C parameters; ECA on C channels
# has a kernel of 5 for C = 256 and 512 (ECA-Net's adaptive size), no bias
SE_256, SE_512, ECA = 2 * 256 * 16 + 16 + 256, 2 * 512 * 32 + 32 + 512, 5
RESNET18 = 11_689_512


class Counting:
    """A real in-process runner that counts the variants it was asked to analyse."""

    def __init__(self):
        self.name, self.specs = "counting", []
        self._inner = inline()

    def map(self, specs, latency=None):
        self.specs += list(specs)
        return self._inner.map(specs, latency)

    def close(self):
        pass


class Refusing:
    name = "refusing"

    def map(self, specs, latency=None):
        raise AssertionError("nothing may run")

    def close(self):
        pass


# ---- the sweep spec: product, zip, errors (no torch)

def test_axes_make_the_cartesian_product_in_order():
    s = load_sweep(SMALL)
    assert s.count == 4 and s.describe() == "4 variants: insert[0].module (2) x insert[0].at (2)"
    vs = s.expand()
    assert [v.label for v in vs] == ["module=se · at=stage3", "module=se · at=stage4", "module=eca · at=stage3",
                                     "module=eca · at=stage4"]
    assert vs[2].spec.to_dict() == {"backbone": "resnet18", "img_size": 64,
                                    "insert": [{"at": "stage3", "module": "eca"}]}
    assert all(v.error is None for v in vs)


def test_zipped_axes_take_their_values_together():
    s = load_sweep({"base": {"backbone": "cifar_metaformer_pool"},
                    "axes": {"stem.stride": [2, 4], "head_norm": [None, "layernorm"], "stem.kernel": [4, 7],
                             "stem.padding": [1, 2]},
                    "zip": [["stem.stride", "stem.kernel", "stem.padding"]]})
    assert s.count == 4 and s.dims == (("stem.stride", "stem.kernel", "stem.padding"), ("head_norm",))
    stems = [(v.spec.stem.stride, v.spec.stem.kernel, v.spec.stem.padding, v.spec.head_norm) for v in s.expand()]
    assert stems == [(2, 4, 1, None), (2, 4, 1, "layernorm"), (4, 7, 2, None), (4, 7, 2, "layernorm")]
    repeats = load_sweep({"base": {"backbone": "resnet18"}, "axes": {"img_size": [64, 64], "gate": [False, True]},
                          "zip": [["img_size", "gate"]]})  # a value may repeat in a zipped axis
    assert [(v.spec.img_size, v.spec.gate) for v in repeats.expand()] == [(64, False), (64, True)]
    assert s.expand()[0].label == "stride=2 · head_norm=null · kernel=4 · padding=1"


def test_paths_reach_every_kind_of_field():
    s = load_sweep({"base": {"backbone": "resnet18",
                             "insert": [{"at": "final", "module": {"parallel": ["se", "eca"], "merge": "add"}}]},
                    "axes": {"insert[0].module.merge": ["mul", "concat"], "gate": [True],
                             "insert": [[{"at": "final", "module": {"parallel": ["se", "eca"]}}]]}})
    v = s.expand()[1]
    assert v.spec.insert[0].module.merge == "concat" and v.spec.gate is True


@pytest.mark.parametrize("sweep_data,message", [
    ({"axes": {"img_size": [64]}}, "sweep: `base` is required"),
    ({"base": {"backbone": "resnet18"}, "axis": {}}, "sweep: unknown key 'axis' (did you mean 'axes'?)"),
    ({"base": {"backbone": "resnet18"}, "axes": {"img_sise": [64]}},
     "sweep.axes: 'img_sise' names no spec field (did you mean 'img_size'?)"),
    ({"base": {"backbone": "resnet18"}, "axes": {"insert[0]..at": [1]}}, "is not a field path"),
    ({"base": {"backbone": "resnet18"}, "axes": {"img_size": []}}, "sweep.axes.img_size: expected a non-empty list"),
    ({"base": {"backbone": "resnet18"}, "axes": {"img_size": [64, 64]}}, "sweep.axes.img_size: 64 is listed twice"),
    ({"base": {"backbone": "resnet18"}, "axes": {"img_size": [64, 64], "gate": [True, True]},
      "zip": [["img_size", "gate"]]}, "sweep.axes.img_size + gate: 64, true is listed twice"),
    ({"base": {"backbone": "resnet18"}, "axes": {"img_size": [64, 96], "gate": [True]}, "zip": [["img_size", "gate"]]},
     "sweep.zip[0]: zipped axes take their values together, so they need as many each; img_size has 2, gate has 1"),
    ({"base": {"backbone": "resnet18"}, "axes": {"img_size": [64]}, "zip": [["img_size", "gates"]]},
     "sweep.zip[0]: 'gates' is not an axis"),
    ({"base": {"backbone": "resnet18"}, "limit": 0}, "sweep.limit: 0 is not a number of variants from 1 to 100,000"),
    ({"base": {"backbone": "resnet18"}, "objectives": ["gmacs", "parms"]},
     "sweep.objectives: 'parms' is not a column (did you mean 'params'"),
    ({"base": {"backbone": "resnet18"}, "latency": {"batchsize": 8}}, "sweep.latency: unknown option 'batchsize'"),
    ({"base": "no_such_preset"}, "sweep.base: preset: unknown preset 'no_such_preset'"),
    ("axes: [", "sweep: not valid YAML"),
    ("eca_kernels_resnet50", "sweep: 'eca_kernels_resnet50' is text, not a sweep; a preset by name: "
                             "playground.sweep.load_sweep_preset('eca_kernels_resnet50')"),
])
def test_a_bad_sweep_is_one_line_naming_the_field(sweep_data, message):
    with pytest.raises(SpecError) as e:
        load_sweep(sweep_data)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_over_the_limit_is_refused_before_anything_runs(capsys):
    data = {**SMALL, "axes": {**SMALL["axes"], "img_size": [64, 96, 128]}, "limit": 8}
    with pytest.raises(SpecError, match=r"^sweep: 12 variants: insert\[0\].module \(2\) x insert\[0\].at \(2\) x "
                                        r"img_size \(3\), over the limit of 8; narrow an axis"):
        sweep(data, runner=Refusing(), cache=False)
    with pytest.raises(SpecError, match="over the limit of 3"):
        sweep(SMALL, runner=Refusing(), cache=False, limit=3)
    assert load_sweep(data).count == 12  # counted, not expanded


# ---- running: invalid variants, cache reuse

def test_invalid_variants_are_rows_with_their_reasons(tmp_path):
    data = {"base": {"backbone": "swin_tiny_patch4_window7_224", "img_size": 112},
            "axes": {"stem.stride": [4, 3], "head_norm": [None, "rmsnorm"]}}
    r = sweep(data, cache=tmp_path)
    assert [row.label for row in r.rows] == ["stride=4 · head_norm=null", "stride=4 · head_norm=rmsnorm",
                                             "stride=3 · head_norm=null", "stride=3 · head_norm=rmsnorm"]
    ok, bad_value, bad_stride, both = r.rows
    single = pg.analyze(ok.spec)  # a row holds what one analysis of its spec reports
    assert ok.ok and ok.metrics["params"] == single.params.total and ok.metrics["macs"] == single.macs.total
    assert ok.final_shape == [1, 4, 4, 768] and ok.warnings == single.warnings  # "windows shrink to the whole map"
    assert bad_value.error.startswith("head_norm: 'rmsnorm' is not one of layernorm, batchnorm, groupnorm")
    assert bad_stride.error.startswith("stem.stride: 3 gives stage maps 37/19/10/5 at img_size 112, which 7x7 Swin "
                                       "windows do not tile")
    assert both.error.startswith("head_norm:")  # refused before anything was built
    assert bad_stride.metrics["params"] is None and r.kept == [0] and r.front == [0]
    assert r.stats.invalid == 3 and r.stats.computed == 2  # the stride was found out by building; rmsnorm by parsing


def test_cache_reuse_second_run_computes_nothing_and_a_widened_one_only_the_new(tmp_path):
    first = Counting()
    r1 = sweep(SMALL, runner=first, cache=tmp_path)
    assert len(first.specs) == 4 and r1.stats.computed == 4 and r1.stats.cached == 0
    assert [row.metrics["params_delta"] for row in r1.rows] == [SE_256, SE_512, ECA, ECA]
    assert [row.metrics["params"] for row in r1.rows] == [RESNET18 + d for d in (SE_256, SE_512, ECA, ECA)]

    r2 = sweep(SMALL, runner=Refusing(), cache=tmp_path)  # nothing may run
    assert r2.stats.computed == 0 and r2.stats.cached == 4 and r2.rows == r1.rows

    wider = {**SMALL, "axes": {"insert[0].module": ["se", "eca", "gc"], "insert[0].at": ["stage3", "stage4"]}}
    third = Counting()
    r3 = sweep(wider, runner=third, cache=tmp_path)
    assert [s.insert[0].module.name for s in third.specs] == ["gc", "gc"]
    assert r3.stats.computed == 2 and r3.stats.cached == 4
    assert {row.label: row.metrics for row in r3.rows if "gc" not in row.label} == \
        {row.label: row.metrics for row in r1.rows}
    fresh = Counting()
    sweep(SMALL, runner=fresh, cache=tmp_path, fresh=True)
    assert len(fresh.specs) == 4


def test_a_variant_reached_by_another_sweep_is_the_same_cache_entry(tmp_path):
    sweep(SMALL, cache=tmp_path)
    other = {"base": {"backbone": "resnet18", "insert": [{"at": "stage3", "module": "eca"}]}, "axes": {"img_size": [64]},
             "title": "another sweep"}
    r = sweep(other, runner=Refusing(), cache=tmp_path)
    assert r.stats.cached == 1 and r.rows[0].metrics["params_delta"] == ECA


def test_a_failed_run_is_not_cached(tmp_path):
    def crash(spec, latency):
        raise pg.errors.RunError("this analysis crashed (SIGSEGV, in native code)")
    r = sweep(SMALL, runner=ThreadedRunner("crashing", crash), cache=tmp_path)
    assert all(row.error == "this analysis crashed (SIGSEGV, in native code)" for row in r.rows)
    counting = Counting()
    sweep(SMALL, runner=counting, cache=tmp_path)
    assert len(counting.specs) == 4


def test_latency_is_measured_per_variant_and_cached_apart(tmp_path):
    quick = {"min_run_time": 0.05, "max_run_time": 0.5, "warmup": 1, "threads": 1}
    data = {**SMALL, "axes": {"insert[0].module": ["se", "eca"]}}
    sweep(data, cache=tmp_path)  # the static rows first: a timed run reuses them
    counting = Counting()
    r = sweep(data, runner=counting, cache=tmp_path, latency=quick, objectives=["latency_ms", "params"])
    assert r.stats.cached == 2 and len(counting.specs) == 2  # two timings, no static analysis again
    for row in r.rows:
        m = row.metrics
        assert m["latency_ci_low_ms"] <= m["latency_ms"] <= m["latency_ci_high_ms"] and m["latency_iqr_ms"] >= 0
    again = sweep(data, runner=Refusing(), cache=tmp_path, latency=quick, objectives=["latency_ms", "params"])
    assert again.rows == r.rows
    assert r.latency == quick and r.objectives == ["latency_ms", "params"]


# ---- results: front, constraints, CSV (pure)

def test_pareto_front_on_a_hand_made_table():
    #          params  GMACs
    table = [(25.6, 4.1),   # 0 on the front
             (28.1, 4.1),   # 1 dominated by 0 (more params, same MACs)
             (11.7, 1.8),   # 2 on the front
             (11.7, 1.8),   # 3 equal to 2: neither dominates, both on the front
             (5.3, 2.0),    # 4 on the front (fewest params)
             (6.0, 2.5),    # 5 dominated by 4
             (30.0, 0.9)]   # 6 on the front (fewest MACs)
    assert pareto_front(table) == [2, 3, 4, 6]
    assert pareto_front(table[:2]) == [0] and pareto_front([]) == [] and pareto_front([(1, 1)]) == [0]
    assert pareto_front([(1, 2, 3), (1, 2, 4), (0, 5, 5), (2, 1, 3)]) == [0, 2, 3]


def test_front_of_rows_reads_each_column_in_its_own_sense():
    def row(i, **m):
        return SweepRow(i, f"v{i}", {}, {}, "", metrics=m)
    rows = [row(0, latency_ms=2.0, throughput=500.0), row(1, latency_ms=1.0, throughput=400.0),
            row(2, latency_ms=3.0, throughput=450.0), row(3, latency_ms=None, throughput=None)]
    assert COLUMNS["throughput"].better == "higher"
    assert front_of(rows, ["latency_ms", "throughput"]) == [0, 1]  # 2 is slower and lower throughput than 0


def test_constraints_are_parsed_never_evaluated():
    c = parse_constraints("GMACs <= 4.5, params <= 30 M and latency_ms<2")
    assert c.text == "gmacs <= 4.5, params <= 30000000, latency_ms < 2"
    assert c.admit({"gmacs": 4.5, "params": 25_557_032, "latency_ms": 1.5})
    assert not c.admit({"gmacs": 4.5, "params": 25_557_032, "latency_ms": None})  # not timed: not admitted
    assert parse_constraints("").admit({})
    for bad, message in [("__import__('os') < 1", "is not `column op number`"), ("gmac <= 4", "did you mean 'gmacs'"),
                         ("gmacs => 4", "is not `column op number`"), ("gmacs <= 4.5 ms", "is not `column op number`")]:
        with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_constraints(bad)


def test_refilter_and_csv(tmp_path):
    r = sweep(SMALL, cache=tmp_path).refilter("params_delta <= 10", ["params", "gmacs"])
    assert r.kept == [2, 3] and r.front == [2]  # ECA at stage3 costs fewer MACs than at stage4
    lines = r.to_csv().splitlines()
    assert lines[0].startswith("index,label,kept,front,error,insert[0].module,insert[0].at,params,params_m,")
    assert lines[3].startswith(f"2,module=eca · at=stage3,True,True,,eca,stage3,{RESNET18 + ECA},")


# ---- surfaces: the CLI, Python

def test_cli_sweep_writes_csv_and_json_and_prints_the_front(tmp_path, capsys):
    path = tmp_path / "small.yaml"
    path.write_text(json.dumps(SMALL))
    assert cli_main(["sweep", str(path), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c"),
                     "--where", "params_delta <= 10"]) == 0
    out, err = capsys.readouterr()
    assert "sweep: 4 variants: insert[0].module (2) x insert[0].at (2)" in err
    assert "Pareto front over gmacs, params_m where params_delta <= 10 (*): #2" in out
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [row["metrics"]["params_delta"] for row in data["rows"]] == [SE_256, SE_512, ECA, ECA]
    assert (tmp_path / "out" / "results.csv").read_text().count("\n") == 5
    assert cli_main(["sweep", str(path), "--count"]) == 0 and capsys.readouterr().out.strip() == "4"
    assert cli_main(["sweep", str(path), "--limit", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: sweep: 4 variants") and "over the limit of 2" in err[-1]


def test_python_api_is_the_package_function():
    assert pg.sweep is sweep and callable(pg.sweep)
    import playground.sweep.spec  # noqa: F401  importing the subpackage does not replace the function
    assert pg.sweep is sweep


def test_every_runner_is_registered():
    assert set(RUNNERS) == {"inline", "pool", "ray"}


# ---- beyond this process: worker processes and Ray

def test_ray_in_local_mode_gives_the_same_table_as_the_process_pool(tmp_path):
    ray = pytest.importorskip("ray")
    data = {**SMALL, "axes": {"insert[0].module": ["se", "eca"], "insert[0].at": ["stage3", "stage9"]}}
    pooled = sweep(data, workers=2, cache=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = sweep(data, ray="auto", cache=tmp_path)
        assert sweep(data, ray="auto", cache=tmp_path).stats.computed == 0  # the same cache
    finally:
        ray.shutdown()
    assert (pooled.stats.runner, on_ray.stats.runner) == ("pool", "ray")
    assert on_ray.to_dict()["rows"] == pooled.to_dict()["rows"]
    assert [row.metrics["params_delta"] for row in on_ray.rows] == [SE_256, None, ECA, None]
    assert on_ray.rows[1].error == "insert[0].at: 'stage9': this backbone has stages 1 to 4"
    assert (on_ray.kept, on_ray.front) == (pooled.kept, pooled.front) == ([0, 2], [2])


def test_ray_that_cannot_connect_is_one_line():
    pytest.importorskip("ray")
    with pytest.raises(SpecError, match=r"^ray: cannot connect to 'ray://127.0.0.1:1'"):
        sweep(SMALL, ray="ray://127.0.0.1:1", cache=False)


# ---- presets (issue item 6)

def test_every_sweep_preset_loads_within_its_limit_and_its_variants_are_specs():
    from playground.sweep import list_sweep_presets
    presets = list_sweep_presets()
    assert {"seed002_vit_combinations", "seed000_metaformer_stride_head_norm", "eca_kernels_resnet50"} <= set(presets)
    for name, s in presets.items():
        assert s.title and s.description and s.count <= s.limit, name
        assert all(v.error is None for v in s.expand()), name  # every variant is a valid spec (they may not build)
    assert presets["seed002_vit_combinations"].count == 24 and presets["eca_kernels_resnet50"].count == 16


def test_the_seed000_sweep_measures_what_its_description_says(tmp_path):
    from playground.sweep import load_sweep_preset
    s = load_sweep_preset("seed000_metaformer_stride_head_norm")
    r = sweep(s, cache=tmp_path)
    normed, plain, s4_normed, s4 = (row.metrics for row in r.rows)  # the seed's model has the norm; remove it
    assert "The norm costs 128 parameters and 320 MACs" in s.description
    assert normed["params"] - plain["params"] == s4_normed["params"] - s4["params"] == 128
    assert normed["macs"] - plain["macs"] == 320
    assert "cuts the MACs 3.9x (69.2 to 17.7 MMACs)" in s.description
    assert round(normed["macs"] / s4_normed["macs"], 1) == 3.9
    assert (round(normed["macs"] / 1e6, 1), round(s4_normed["macs"] / 1e6, 1)) == (69.2, 17.7)
    assert [row.final_shape for row in r.rows] == [[1, 64, 16, 16]] * 2 + [[1, 64, 8, 8]] * 2
    assert all("head.norm (GroupNorm1) removed" in row.warnings[0] for row in (r.rows[1], r.rows[3]))
