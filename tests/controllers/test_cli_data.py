"""``pems forecast evaluate``, ``pems identify`` and historical mapping files, end to end in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from forecast_data import load_history
from thermal_data import synthetic_measurements

from controllers.forecasting.persistence import load_forecaster
from twin.config import load_house

PEMS = shutil.which("pems") or str(Path(sys.executable).with_name("pems"))


def pems(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PEMS, *map(str, args)], capture_output=True, text=True, timeout=300)


LOAD_MAPPING = """
[historical]
timezone = "Europe/Paris"
country = "FR"
step_minutes = 60

[[historical.sources]]
file = "@data"
time_column = "time"

[historical.sources.columns]
base_load_kw = { column = "load_w", unit = "W" }
"""


@pytest.fixture(scope="module")
def load_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("load")
    history = load_history(days=30)
    frame = pd.DataFrame({"time": history.index.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "load_w": (history["base_load_kw"] * 1000).round(1)})
    frame.to_csv(folder / "home.csv", index=False)
    (folder / "map.toml").write_text(textwrap.dedent(LOAD_MAPPING), encoding="utf-8")
    return folder


def test_forecast_evaluate_writes_metrics_plots_and_a_loadable_model(load_files, tmp_path):
    out = tmp_path / "eval"
    proc = pems("forecast", "evaluate", "--kind", "load", "--data", load_files / "home.csv", "--mapping",
                load_files / "map.toml", "--train-until", "2024-05-22", "--rounds", "20", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "base_load_kw" in proc.stdout and "covered" in proc.stdout  # the data-quality summary
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["hourly"] is True and metrics["issues"] >= 8
    day_ahead = metrics["day_ahead"]
    assert set(day_ahead) >= {"model", "model_p50", "persistence"}
    assert day_ahead["model"]["rmse"] < day_ahead["persistence"]["rmse"]
    assert {"0-6 h", "36-48 h", "day-ahead", "all"} <= set(metrics["tables"]["model"])
    assert (out / "plots" / "error_by_lead.png").stat().st_size > 10_000
    assert (out / "plots" / "sample_days.png").stat().st_size > 10_000
    assert len(pd.read_parquet(out / "forecasts.parquet")) > 100
    model = load_forecaster(out / "model")
    assert model.kind == "load" and model.training["end"].startswith("2024-05-22")


@pytest.mark.parametrize(("args", "message"), [
    (["--kind", "pv", "--train-until", "2024-05-22"], "--kind pv needs [historical.location] and pv_capacity_kw"),
    (["--kind", "load", "--train-until", "someday"], "--train-until 'someday' is not a date"),
    (["--kind", "load", "--train-until", "2024-01-01"], "no history before --train-until"),
])
def test_forecast_evaluate_reports_bad_input_in_one_line(load_files, args, message):
    proc = pems("forecast", "evaluate", "--data", load_files / "home.csv", "--mapping", load_files / "map.toml", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


IDENTIFY_MAPPING = """
[historical]
timezone = "Europe/Prague"
step_minutes = 10

[historical.location]
latitude_deg = 50.08
longitude_deg = 14.42
timezone = "Europe/Prague"

[[historical.sources]]
file = "@data"
time_column = "time"

[historical.sources.columns]
"room_temp_c.south" = { column = "t_south", unit = "degC" }
"room_temp_c.north" = { column = "t_north", unit = "degC" }
"heater_power_kw.south" = { column = "p_south", unit = "W" }
"heater_power_kw.north" = { column = "p_north", unit = "W" }
outdoor_temp_c = { column = "t_out", unit = "degC" }
ghi_w_m2 = { column = "ghi", unit = "W/m2" }
dni_w_m2 = { column = "dni", unit = "W/m2" }
dhi_w_m2 = { column = "dhi", unit = "W/m2" }

[historical.identify]
name = "two-rooms"
max_evaluations = 8
"""


def test_identify_writes_a_house_the_twin_reads(tmp_path):
    data, _ = synthetic_measurements(days=7, seed=2)
    frame = pd.DataFrame({"time": data.times.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "t_south": data.air_c[:, 0], "t_north": data.air_c[:, 1],
                          "p_south": data.heater_w[:, 0], "p_north": data.heater_w[:, 1], "t_out": data.outdoor_c,
                          "ghi": 0.0, "dni": 0.0, "dhi": 0.0})
    frame.to_csv(tmp_path / "rooms.csv", index=False)
    (tmp_path / "map.toml").write_text(textwrap.dedent(IDENTIFY_MAPPING), encoding="utf-8")
    out = tmp_path / "house.toml"
    common = ["--data", tmp_path / "rooms.csv", "--mapping", tmp_path / "map.toml", "--out", out]
    proc = pems("identify", *common, "--train", "2024-02-01:2024-02-05", "--test", "2024-02-05:2024-02-08",
                "--report", tmp_path / "report.json")
    assert proc.returncode == 0, proc.stderr
    house = load_house(out)
    assert house.name == "two-rooms" and [r.name for r in house.rooms] == ["south", "north"]
    assert all(r.has_mass for r in house.rooms)
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["test_errors"]) == {"1.0", "6.0", "24.0"}
    assert np.isfinite(report["test_errors"]["24.0"]["mae_c"])
    proc = pems("identify", *common, "--train", "2024-02-01:2024-02-05", "--test", "2024-02-04:2024-02-07")
    assert proc.returncode == 2 and "overlap" in proc.stderr


def test_a_mapping_file_is_a_scenario_for_pems_simulate(load_files, tmp_path):
    mapping = load_files / "map.toml"
    text = mapping.read_text().replace('file = "@data"', 'file = "home.csv"').replace(
        '[historical]', '[historical]\nname = "home-v1"', 1) + textwrap.dedent("""
        [historical.constants]
        outdoor_temp_c = 10
        import_price_per_kwh = 0.3
        export_price_per_kwh = 0.05
        comfort_mode = 0
        pv_power_kw = 0
        """)
    scenario_file = load_files / "home-v1.toml"
    scenario_file.write_text(text, encoding="utf-8")
    proc = pems("simulate", "--scenario", scenario_file, "--controller", "rule-based", "--out", tmp_path / "run",
                "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["scenario"] == "home-v1"


def test_data_check_prints_the_quality_summary(load_files):
    proc = pems("data", "check", "--mapping", load_files / "map.toml", "--data", load_files / "home.csv", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["columns"][0]["name"] == "base_load_kw" and summary["columns"][0]["coverage"] == 1.0
    proc = pems("data", "check", "--mapping", load_files / "map.toml")
    assert proc.returncode == 2 and "give the data file (--data FILE)" in proc.stderr
