"""The house's history: day partitions, the safe expression evaluator, history.toml checks, the live writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.historical.mapping import load_mapping, mapping_from_dict
from scenarios.historical.reader import read_historical
from scenarios.history.expression import parse
from scenarios.history.import_config import load_import_config
from scenarios.history.store import partition_days, read_history, write_partitions
from twin.errors import ConfigError, ScenarioError

TZ = "Europe/Prague"
BUILTIN = Path("scenarios/historical/mappings/pems_history.toml")


def _frame(start: str, end: str, freq: str = "5min", seed: int = 0) -> pd.DataFrame:
    index = pd.date_range(start, end, freq=freq, tz=TZ, inclusive="left")
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"base_load_kw": rng.uniform(0.1, 3, len(index)), "pv_power_kw": rng.uniform(0, 5, len(index)),
                         "outdoor_temp_c": rng.uniform(-5, 15, len(index))}, index=index)


def test_partitions_are_local_days_and_read_back_exactly(tmp_path):
    frame = _frame("2026-10-24", "2026-10-27")  # the fall-back day has 25 hours
    write_partitions(tmp_path, frame.iloc[:500], TZ)
    write_partitions(tmp_path, frame.iloc[500:], TZ)  # a second write appends parts, never rewrites
    assert partition_days(tmp_path) == ["2026-10-24", "2026-10-25", "2026-10-26"]
    assert len(list((tmp_path / "date=2026-10-25").glob("part-*.parquet"))) == 2
    back = read_history(tmp_path, TZ)
    pd.testing.assert_frame_equal(back, frame.set_axis(frame.index.as_unit("ns")), check_freq=False, check_names=False)
    day = read_history(tmp_path, TZ, start=pd.Timestamp("2026-10-25", tz=TZ), end=pd.Timestamp("2026-10-26", tz=TZ))
    assert len(day) == 25 * 12


def test_the_historical_reader_reads_the_folder_without_conversion(tmp_path):
    frame = _frame("2026-03-28", "2026-03-31")  # spring-forward day
    write_partitions(tmp_path, frame, TZ)
    read, quality = read_historical(load_mapping(BUILTIN), tmp_path)
    expected = frame.resample("15min").mean()
    np.testing.assert_allclose(read.to_numpy(), expected.to_numpy())


@pytest.mark.parametrize("text", ["__import__('os')", "a.b.c", "x_kw[0]", "x_kw if y_kw else 1", "x_kw ** 2",
                                  "'text' + x_kw", "min(x_kw)", "lambda: 1", "1 + 2"])
def test_expressions_refuse_everything_but_arithmetic_on_columns(text):
    with pytest.raises(ScenarioError, match="expression"):
        parse(text)


def test_expression_household_load_and_nan_stays_a_gap():
    expr = parse("grid_import_kw - grid_export_kw + pv_power_kw - battery_power_kw")
    assert expr.columns == ("grid_import_kw", "grid_export_kw", "pv_power_kw", "battery_power_kw")
    cols = {"grid_import_kw": np.array([1.0, 0.0, np.nan]), "grid_export_kw": np.array([0.0, 2.0, 0.0]),
            "pv_power_kw": np.array([0.5, 3.0, 1.0]), "battery_power_kw": np.array([-0.5, 0.5, 0.0])}
    np.testing.assert_allclose(expr.evaluate(cols), [2.0, 0.5, np.nan])
    assert parse("max(room_temp_c.living, 0) * 2").evaluate({"room_temp_c.living": np.array([-1.0, 3.0])}).tolist() \
        == [0.0, 6.0]
    with pytest.raises(ScenarioError, match="reads column 'battery_power_kw'"):
        expr.evaluate({k: v for k, v in cols.items() if k != "battery_power_kw"})


def test_mapping_derived_expression(tmp_path):
    csv = tmp_path / "d.csv"
    index = pd.date_range("2026-01-01", periods=8, freq="15min", tz="UTC")
    pd.DataFrame({"t": index.strftime("%Y-%m-%dT%H:%M:%SZ"), "imp": [1000.0] * 8, "exp": [0.0] * 8,
                  "pv": [500.0] * 8, "bat": [250.0] * 8}).to_csv(csv, index=False)
    doc = {"historical": {"timezone": "UTC", "step_minutes": 15, "sources": [{"file": str(csv), "time_column": "t",
           "columns": {c + "_kw": {"column": s, "unit": "W"} for c, s in (
               ("grid_import", "imp"), ("grid_export", "exp"), ("pv_power", "pv"), ("battery_power", "bat"))}}],
           "derived": {"base_load_kw": {"expr": "grid_import_kw - grid_export_kw + pv_power_kw - battery_power_kw"}}}}
    frame, quality = read_historical(mapping_from_dict(doc, tmp_path / "m.toml"))
    np.testing.assert_allclose(frame["base_load_kw"], 1.25)
    doc["historical"]["derived"]["base_load_kw"]["expr"] = "grid_import_kw - heat_kw"
    with pytest.raises(ScenarioError, match=r"derived.base_load_kw.expr reads 'heat_kw'"):
        mapping_from_dict(doc, tmp_path / "m.toml")
    doc["historical"]["derived"]["base_load_kw"]["expr"] = "open('x')"
    with pytest.raises(ScenarioError, match="is not allowed"):
        mapping_from_dict(doc, tmp_path / "m.toml")


@pytest.mark.parametrize(("body", "message"), [
    ('[source]\nkind = "influxdb3"\nurl = "http://x"\n', "source.kind = 'influxdb3' is not one of"),
    ('[source]\nkind = "influxdb1"\nurl = "x"\ndatabase = "h"\n', "source.url = 'x' must start with http"),
    ('[source]\nkind = "influxdb1"\nurl = "http://x"\n', "source.database is required"),
    ('[source]\nkind = "influxdb1"\nurl = "http://x"\ndatabase = "h"\npassword = "p"\n', "source.password must not be"),
    ('[source]\nkind = "influxdb1"\nurl = "http://x"\ndatabase = "h"\n[history]\ntimezone = "Europe/Prague"\n'
     '[columns]\npv_power_kw = { measurement = "solar", field = "InputPower", unit = "degC" }\n',
     "columns.pv_power_kw.unit = 'degC' is not a unit"),
    ('[source]\nkind = "influxdb1"\nurl = "http://x"\ndatabase = "h"\n[history]\ntimezone = "Europe/Prague"\n'
     '[columns]\npv_power_kw = { measurement = "solar", feld = "InputPower", unit = "W" }\n',
     "columns.pv_power_kw.feld is not a known key"),
    ('[source]\nkind = "influxdb1"\nurl = "http://x"\ndatabase = "h"\n[history]\ntimezone = "Europe/Prague"\n'
     '[columns]\npv_power_kw = { measurement = "solar", field = "InputPower", unit = "W", aggregation = "avg" }\n',
     "aggregation = 'avg' is not one of"),
    ('[source]\nkind = "influxdb1"\nurl = "http://x"\ndatabase = "h"\n[history]\ntimezone = "Europe/Prague"\n'
     '[columns]\npv_power_kw = { measurement = "solar", field = "InputPower", unit = "W" }\n'
     '[derived]\nbase_load_kw = "pv_power_kw - heat_kw"\n', "derived.base_load_kw reads 'heat_kw'"),
])
def test_bad_history_toml_names_the_key(tmp_path, body, message):
    path = tmp_path / "history.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_import_config(path)


def test_documented_history_toml_is_valid(monkeypatch):
    monkeypatch.setenv("INFLUX_PASSWORD", "x")
    config = load_import_config(Path("docs/examples/history.toml"))
    assert {"pv_power_kw", "battery_soc", "grid_import_kw"} <= {c.name for c in config.columns}
    assert "base_load_kw" in config.derived
