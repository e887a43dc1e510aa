"""The ``pems`` command end to end, in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from twin.kpis import KPI_KEYS

PEMS = shutil.which("pems") or str(Path(sys.executable).with_name("pems"))


def pems(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PEMS, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def winter_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "winter"
    proc = pems("simulate", "--scenario", "winter-week-v1", "--controller", "rule-based", "--out", str(out))
    return proc, out


def test_simulate_writes_log_kpis_and_plots(winter_run):
    proc, out = winter_run
    assert proc.returncode == 0, proc.stderr
    kpis = json.loads((out / "kpis.json").read_text())
    assert tuple(kpis) == KPI_KEYS
    log = pd.read_parquet(out / "log.parquet")
    assert len(log) == 7 * 24 * 12
    assert kpis["import_kwh"] == pytest.approx(log["import_kwh"].sum())
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["battery.png", "ev.png", "grid.png", "pv_load.png",
                                                                   "rooms.png"]
    assert all((out / "plots" / p).stat().st_size > 10_000 for p in ("rooms.png", "grid.png"))
    meta = json.loads((out / "meta.json").read_text())
    assert meta["scenario"] == "winter-week-v1" and meta["controller"] == "rule-based"
    assert "discomfort_kh" in proc.stdout and "cost" in proc.stdout


def test_rerun_replaces_the_run_directory_atomically(winter_run, tmp_path):
    _, out = winter_run
    target = tmp_path / "again"
    shutil.copytree(out, target)
    (target / "stale.txt").write_text("from before")
    proc = pems("simulate", "--scenario", "winter-week-v1", "--controller", "rule-based", "--out", str(target),
                "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert not (target / "stale.txt").exists()
    assert not any(p.name.startswith(".again") for p in tmp_path.iterdir()), "no temporary directory left"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "no-such-scenario", "--controller", "rule-based"], "unknown scenario 'no-such-scenario'"),
        (["--scenario", "winter-week-v1", "--controller", "genius"], "unknown controller 'genius'"),
        (["--scenario", "winter-week-v1", "--controller", "rule-based", "--decision-interval-s", "0"],
         "decision_interval_s = 0.0 is outside"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "run"
    proc = pems("simulate", *args, "--out", str(out))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_malformed_house_file(tmp_path):
    house = tmp_path / "house.toml"
    house.write_text("name = 'x'\n[battery]\ncapacity_kwh = 'lots'\n")
    proc = pems("simulate", "--scenario", "winter-week-v1", "--controller", "rule-based", "--house", str(house),
                "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert "house.toml" in proc.stderr and "Traceback" not in proc.stderr


def test_refuses_to_replace_a_directory_that_is_not_a_run(tmp_path):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    proc = pems("simulate", "--scenario", "winter-week-v1", "--controller", "rule-based", "--out", str(precious))
    assert proc.returncode == 2 and "not an earlier output directory" in proc.stderr
    assert (precious / "chapter1.tex").read_text() == "..."


def test_lists_and_help():
    proc = pems("scenarios", "list")
    assert proc.returncode == 0 and "year-v1" in proc.stdout and "summer-week-v1" in proc.stdout
    proc = pems("controllers", "list")
    assert proc.returncode == 0 and "rule-based" in proc.stdout
    for verb in (["--help"], ["simulate", "--help"], ["scenarios", "--help"], ["scenarios", "list", "--help"],
                 ["controllers", "list", "--help"]):
        proc = pems(*verb)
        assert proc.returncode == 0 and "Usage" in proc.stdout, verb


def test_simulate_runs_a_window_of_the_room_less_citylearn_house_under_the_mpc(tmp_path):
    """The README's example house has no rooms; --start/--days cut a window of its scenario."""
    out = tmp_path / "cl"
    house = Path(__file__).parents[2] / "scenarios" / "historical" / "houses" / "citylearn-fontana-b1.toml"
    proc = pems("simulate", "--scenario", "citylearn-fontana-b1-v1", "--house", str(house), "--controller", "mpc",
                "--start", "2017-01-10", "--days", "1", "--no-plots", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    log = pd.read_parquet(out / "log.parquet")
    assert log.index[0] == pd.Timestamp("2017-01-10", tz=log.index.tz)
    assert (log.index[-1] - log.index[0]) < pd.Timedelta(days=1)
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["cycles_without_plan"] == 0
    assert kpis["daily_cost_cvar95"] == pytest.approx(kpis["cost"])  # one day: its worst day is the day


def test_simulate_names_a_start_outside_the_scenario(tmp_path):
    proc = pems("simulate", "--scenario", "winter-week-v1", "--controller", "rule-based", "--start", "1999-01-01",
                "--days", "1", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2
    assert "--start" in proc.stderr and "outside the scenario" in proc.stderr
