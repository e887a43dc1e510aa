"""``pems bench``: every pair run on Dask, KPIs and report written atomically, same seed → same KPIs."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
from builders import random_policy, small_house
from typer.testing import CliRunner

from benchmarks.bench import BenchSpec, PairResult, check_spec, kpi_frame, run_pair, write_bench
from benchmarks.cli import register
from controllers.rl_policy import save_mlp_policy
from twin.config import reference_house
from twin.env import EnvConfig
from twin.errors import ConfigError, TwinError
from twin.kpis import KPI_KEYS
from twin.runner import RunResult, RunSettings

PEMS = shutil.which("pems") or str(Path(sys.executable).with_name("pems"))
SPECS = Path(__file__).resolve().parents[2] / "scenarios" / "specs"
LIGHT = ["--option", "replan_interval_s=3600", "--option", "blocks=900:7200,3600:43200"]
WALL_CLOCK = {"decide_time_mean_s", "decide_time_p95_s", "decide_time_max_s"}


def pems(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PEMS, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def day_spec(tmp_path_factory) -> Path:
    """winter-week-v1 cut to its first day (a scenario file, as users pass them)."""
    text = (SPECS / "winter-week-v1.toml").read_text(encoding="utf-8")
    text = text.replace('name = "winter-week-v1"', 'name = "winter-day-v1"').replace("days = 7", "days = 1")
    path = tmp_path_factory.mktemp("specs") / "winter-day-v1.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory) -> Path:
    """A random MLP policy for the reference house, as train_ppo.py writes them."""
    config = EnvConfig(heating="setpoint")
    policy, features, actions = random_policy(reference_house(), config)
    path = tmp_path_factory.mktemp("policies") / "tiny.npz"
    return save_mlp_policy(path, policy, config, features, actions, env_id="pems/House-v0", note="random weights")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, day_spec):
    out = tmp_path_factory.mktemp("bench") / "out"
    proc = pems("bench", "--scenarios", str(day_spec), "--controllers", "rule-based,mpc,oracle", "--out", str(out),
                "--workers", "2", "--no-plots", *LIGHT)
    return proc, out


def test_bench_writes_kpis_report_and_runs(bench_run):
    proc, out = bench_run
    assert proc.returncode == 0, proc.stderr
    kpis = pd.read_csv(out / "kpis.csv")
    assert list(kpis.columns) == ["scenario", "controller", *KPI_KEYS, "oracle_capture", "oracle_gap"]
    assert list(kpis["controller"]) == ["rule-based", "mpc", "oracle"]
    assert (kpis["scenario"] == "winter-day-v1").all()
    rows = kpis.set_index("controller")
    assert rows.loc["oracle", "oracle_capture"] == pytest.approx(1.0)
    assert rows.loc["rule-based", "oracle_capture"] == pytest.approx(0.0)
    expected = (rows.loc["rule-based", "cost"] - rows.loc["mpc", "cost"]) / (
        rows.loc["rule-based", "cost"] - rows.loc["oracle", "cost"])
    assert rows.loc["mpc", "oracle_capture"] == pytest.approx(expected)
    assert rows.loc["mpc", "cycles_without_plan"] == 0
    for name in ("report.md", "report.html", "bench.json", "figures/cost.png", "figures/cost_vs_discomfort.png",
                 "figures/timeseries_winter-day-v1.png"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## winter-day-v1" in report and "oracle capture" in report
    assert "data:image/png;base64," in (out / "report.html").read_text(encoding="utf-8")
    for controller in ("rule-based", "mpc", "oracle"):
        run = out / "runs" / "winter-day-v1" / controller
        assert json.loads((run / "kpis.json").read_text())["cost"] == pytest.approx(rows.loc[controller, "cost"])
        assert len(pd.read_parquet(run / "log.parquet")) == 24 * 12
    assert len(pd.read_csv(out / "runs" / "winter-day-v1" / "mpc" / "plans.csv")) == 24  # hourly re-plans
    assert rows.loc["oracle", "oracle_gap"] == 0.0
    assert rows.loc["mpc", "oracle_gap"] == pytest.approx(rows.loc["mpc", "cost"] - rows.loc["oracle", "cost"])


def test_bench_writes_a_forecast_scorecard_for_every_planning_controller(bench_run):
    """mpc and oracle plan with forecasts: each run directory gets its scorecard; the report summarises them."""
    _, out = bench_run
    runs = out / "runs" / "winter-day-v1"
    assert not (runs / "rule-based" / "forecast_scorecard.csv").exists()
    cards = {c: pd.read_csv(runs / c / "forecast_scorecard.csv") for c in ("mpc", "oracle")}
    for card in cards.values():
        assert list(card.columns) == ["field", "lead", "n", "mae", "rmse", "bias"]
        assert set(card["field"]) >= {"pv_power_kw", "base_load_kw", "import_price_per_kwh"}
        assert card.loc[card["lead"] == "0-6 h", "n"].min() > 0
    assert cards["oracle"]["mae"].max() == pytest.approx(0.0, abs=1e-12), "the oracle sees the actual future"
    mpc = cards["mpc"].set_index(["field", "lead"])
    assert mpc.loc[("base_load_kw", "0-6 h"), "mae"] > 0, "the scenario's issued forecasts are wrong"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Forecast scorecard: winter-day-v1" in report
    assert "runs/winter-day-v1/mpc/forecast_scorecard.csv" in report
    assert "gap to oracle" in report


def test_same_seed_same_kpis(bench_run, day_spec):
    """A second run of a pair, in this process instead of a Dask worker, gives the same KPIs."""
    _, out = bench_run
    spec = BenchSpec(scenarios=(str(day_spec),), controllers=("mpc",),
                     options={"replan_interval_s": "3600", "blocks": "900:7200,3600:43200"})
    again = run_pair(str(day_spec), "mpc", spec).result.kpis
    first = json.loads((out / "runs" / "winter-day-v1" / "mpc" / "kpis.json").read_text())
    for key in KPI_KEYS:
        if key not in WALL_CLOCK:
            assert again[key] == pytest.approx(first[key], rel=1e-12, abs=1e-12), key


def test_a_bench_replaces_an_earlier_bench_but_nothing_else(day_spec, tmp_path):
    out = tmp_path / "out"
    spec = BenchSpec(scenarios=(str(day_spec),), controllers=("rule-based",), out=out, plots=False)
    results = [run_pair(str(day_spec), "rule-based", spec)]
    for _ in range(2):
        check_spec(spec)
        write_bench(spec, results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no temporary directories left behind"
    assert (out / "kpis.csv").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(TwinError, match="not an earlier output directory"):
        check_spec(BenchSpec(scenarios=(str(day_spec),), controllers=("rule-based",), out=other))
    assert sorted(p.name for p in other.iterdir()) == ["precious.txt"]


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # two commands, so that `bench` stays a subcommand
    return app


@pytest.mark.parametrize(("args", "message"), [
    (["--controllers", "rule-based,nope"], "unknown controller 'nope'"),
    (["--scenarios", "winter-week-v1,winter-week-v1"], "names ['winter-week-v1'] more than once"),
    (["--option", "colour=red"], "unknown MPC option 'colour'"),
    (["--option", "nonsense"], "is not key=value"),
    (["--solver", "gurobi"], "solver = 'gurobi' is not one of"),
    (["--workers", "0"], "--workers = 0 is outside [1, 256]"),
    (["--days", "0"], "--days = 0.0 is outside (0, 3660]"),
    (["--start", "someday"], "--start = 'someday' is not a date or time"),
    (["--start", "2031-01-01"], "is outside the scenario"),
    (["--policy", "nowhere/gone.npz"], "gone.npz: policy file not found"),
])
def test_bad_arguments_end_with_one_line(cli, args, message, tmp_path):
    result = CliRunner().invoke(cli, ["bench", "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "out").exists()


def test_oracle_capture_arithmetic():
    def pair(controller: str, cost: float) -> PairResult:
        kpis = dict.fromkeys(KPI_KEYS, 0.0) | {"cost": cost}
        return PairResult("s", controller, RunResult(pd.DataFrame(), kpis, "s", controller, "h", RunSettings()), None)

    frame = kpi_frame([pair("rule-based", 100.0), pair("mpc", 82.0), pair("oracle", 80.0), pair("other", 110.0)])
    capture = frame.set_index("controller")["oracle_capture"]
    assert capture.to_dict() == pytest.approx({"rule-based": 0.0, "mpc": 0.9, "oracle": 1.0, "other": -0.5})
    without_oracle = kpi_frame([pair("rule-based", 100.0), pair("mpc", 82.0)])
    assert without_oracle["oracle_capture"].isna().all()


def test_spec_validation():
    with pytest.raises(ConfigError, match="--controllers names nothing"):
        BenchSpec(controllers=())


def test_runs_on_an_existing_scheduler(day_spec):
    """``--scheduler``: the pairs go to a cluster someone else started."""
    from distributed import LocalCluster

    from benchmarks.bench import run_on_dask

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        spec = BenchSpec(scenarios=(str(day_spec),), controllers=("rule-based",), scheduler=cluster.scheduler_address)
        seen: list[dict[str, float]] = []
        results = run_on_dask(spec, seen.append)
    assert [(r.scenario, r.controller) for r in results] == [("winter-day-v1", "rule-based")]
    assert len(results[0].result.log) == 24 * 12
    assert seen and seen[-1] == {f"{day_spec}|rule-based": 1.0}


def test_bench_runs_a_policy_file(policy_file, day_spec, tmp_path):
    """``--policy FILE`` adds ``rl-<stem>`` beside the named controllers, without ``$PEMS_RL_POLICY``."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "PEMS_RL_POLICY"}
    proc = subprocess.run([PEMS, "bench", "--scenarios", str(day_spec), "--controllers", "rule-based", "--policy",
                           str(policy_file), "--out", str(out), "--workers", "1", "--no-plots"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    kpis = pd.read_csv(out / "kpis.csv")
    assert list(kpis["controller"]) == ["rule-based", "rl-tiny"]
    assert kpis.set_index("controller").loc["rl-tiny", "energy_balance_max_abs_kwh"] < 1e-6
    meta = json.loads((out / "bench.json").read_text())
    assert meta["controllers"] == ["rule-based", "rl-tiny"]
    assert meta["policies"]["rl-tiny"] == {"path": str(policy_file), "env_id": "pems/House-v0",
                                           "note": "random weights"}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert f"`rl-tiny` = `{policy_file}` (random weights)" in report and "| rl-tiny |" in report
    assert len(pd.read_parquet(out / "runs" / "winter-day-v1" / "rl-tiny" / "log.parquet")) == 24 * 12


def test_a_policy_travels_with_the_spec(policy_file, day_spec, tmp_path):
    """Workers build the policy from the spec alone: the file may be gone (a remote worker has no copy)."""
    copy = tmp_path / "agent.npz"
    copy.write_bytes(policy_file.read_bytes())
    spec = BenchSpec(scenarios=(str(day_spec),), controllers=("rl-agent", "rule-based"), policies=(copy,))
    assert spec.controllers == ("rl-agent", "rule-based"), "a policy named in --controllers keeps its place"
    shipped = pickle.loads(pickle.dumps(spec))
    copy.unlink()
    result = run_pair(str(day_spec), "rl-agent", shipped).result
    assert result.controller == "rl-agent" and len(result.log) == 24 * 12
    again = run_pair(str(day_spec), "rl-agent", shipped).result
    assert again.kpis["cost"] == pytest.approx(result.kpis["cost"], rel=1e-12)


def test_policy_names_must_differ(policy_file, tmp_path):
    (tmp_path / "other").mkdir()
    twin_file = tmp_path / "other" / policy_file.name
    twin_file.write_bytes(policy_file.read_bytes())
    with pytest.raises(ConfigError, match=r"controller names \['rl-tiny'\] more than once"):
        BenchSpec(policies=(policy_file, twin_file))


def test_a_policy_for_another_house_is_refused_before_running(day_spec, tmp_path):
    config = EnvConfig()
    policy, features, actions = random_policy(small_house(), config)
    path = save_mlp_policy(tmp_path / "small.npz", policy, config, features, actions)
    spec = BenchSpec(scenarios=(str(day_spec),), controllers=("rule-based",), policies=(path,), out=tmp_path / "out")
    with pytest.raises(ConfigError, match="the policy expects"):
        check_spec(spec)


def test_the_console_summary_shows_counts_as_counts_and_missing_as_a_dash():
    from rich.console import Console

    from benchmarks.cli import summary

    frame = pd.DataFrame({"scenario": ["w", "w"], "controller": ["rule-based", "mpc"], "cost": [182.0, 173.5],
                          "discomfort_kh": [42.6, 5.9], "oracle_capture": [0.0, 0.985],
                          "cycles_without_plan": [float("nan"), 3.0], "decide_time_p95_s": [0.0, 0.26]})
    console = Console(width=200, record=True)
    console.print(summary(frame))
    text = console.export_text()
    mpc_row = next(line for line in text.splitlines() if "mpc" in line)
    assert " 3 │" in mpc_row and "3.000" not in mpc_row and "98.5 %" in mpc_row
    assert "–" in next(line for line in text.splitlines() if "rule-based" in line)
