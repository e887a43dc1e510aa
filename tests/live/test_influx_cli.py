"""``pems simulate --influxdb-url`` and ``pems bench --influxdb-url`` write to a real InfluxDB."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.timeout(600)

SPEC = Path(__file__).resolve().parents[2] / "scenarios" / "specs" / "winter-week-v1.toml"


@pytest.fixture
def two_day_spec(tmp_path) -> Path:
    text = SPEC.read_text()
    text = re.sub(r'name = "winter-week-v1"', 'name = "winter-2d-v1"', text)
    text = re.sub(r"\ndays = 7\n", "\ndays = 2\n", text)
    path = tmp_path / "winter-2d-v1.toml"
    path.write_text(text)
    return path


def _app():
    from twin.cli import _register_plugins, app

    _register_plugins()
    return app


def _count(influxdb, database, measurement, field, where=""):
    body = influxdb.query(f'SELECT count("{field}") FROM "{measurement}" {where}', database)
    series = body["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def test_simulate_and_bench_write_the_same_measurements(influxdb, tmp_path, two_day_spec):
    influxdb.create_database("cli")
    runner = CliRunner()
    out = tmp_path / "sim"
    result = runner.invoke(_app(), ["simulate", "--scenario", str(two_day_spec), "--controller", "rule-based",
                                    "--out", str(out), "--no-plots", "--influxdb-url", influxdb.url,
                                    "--influxdb-database", "cli"])
    assert result.exit_code == 0, result.output
    import pandas as pd

    log = pd.read_parquet(out / "log.parquet")
    assert _count(influxdb, "cli", "pems_reading", "outdoor_temp_c") == len(log)
    bench_out = tmp_path / "bench"
    result = runner.invoke(_app(), ["bench", "--scenarios", str(two_day_spec), "--controllers", "rule-based",
                                    "--out", str(bench_out), "--no-plots", "--workers", "1",
                                    "--influxdb-url", influxdb.url, "--influxdb-database", "cli"])
    assert result.exit_code == 0, result.output
    where = "WHERE \"source\" = 'bench:winter-2d-v1:rule-based'"
    assert _count(influxdb, "cli", "pems_reading", "outdoor_temp_c", where) == len(log)
    where_sim = "WHERE \"source\" = 'sim:winter-2d-v1:rule-based'"
    sim_cost = influxdb.query(f'SELECT sum("cost") FROM "pems_kpi_day" {where_sim}', "cli")
    bench_cost = influxdb.query(f'SELECT sum("cost") FROM "pems_kpi_day" {where}', "cli")
    assert sim_cost["results"][0]["series"][0]["values"][0][1] == pytest.approx(
        bench_cost["results"][0]["series"][0]["values"][0][1], rel=1e-9)
    assert sim_cost["results"][0]["series"][0]["values"][0][1] == pytest.approx(log["cost"].sum(), rel=1e-9)


def test_bad_influx_url_is_a_one_line_error(tmp_path, two_day_spec):
    result = CliRunner().invoke(_app(), ["simulate", "--scenario", str(two_day_spec), "--controller", "rule-based",
                                         "--out", str(tmp_path / "x"), "--influxdb-url", "ftp://nowhere"])
    assert result.exit_code == 2
    assert "outputs.influxdb.url" in result.output or "not an http" in result.output
