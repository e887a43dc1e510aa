"""``pems history import`` against a real InfluxDB 1.x (Debian's influxd): what was written comes back.

The seed's stack: measurement ``solar`` with Growatt fields, ``relay`` with ``tag1=heating`` and a
``room`` tag, ``temperature`` with a ``room`` tag. Written at 5-min resolution over three local days
(chunked by one day), imported onto a 15-min grid.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scenarios.history.import_config import load_import_config
from scenarios.history.importer import import_history
from scenarios.history.influx import InfluxError
from scenarios.history.store import read_history

TZ = "Europe/Prague"
FIELDS = ("InputPower", "PV1InputPower", "PV2InputPower", "SOC", "ChargePower", "DischargePower", "ACPowerToUser",
          "ACPowerToGrid")


def _written(seed: int) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2026-03-28", "2026-03-31", freq="5min", tz=TZ, inclusive="left")  # spans the DST change
    n = len(index)
    solar = {f: np.round(rng.uniform(0, 4000, n), 1) for f in FIELDS}
    solar["SOC"] = np.round(rng.uniform(10, 100, n), 0)
    rooms = {"living": rng.integers(0, 2, n).astype(float), "bedroom": rng.integers(0, 2, n).astype(float),
             "temp_living": np.round(rng.uniform(18, 23, n), 2), "temp_outdoor": np.round(rng.uniform(-5, 10, n), 2)}
    return index, solar, rooms


def _lines(index: pd.DatetimeIndex, solar: dict, rooms: dict) -> str:
    ns = index.tz_convert("UTC").as_unit("ns").asi8
    out = []
    for i, t in enumerate(ns):
        out.append("solar " + ",".join(f"{f}={float(solar[f][i])!r}" for f in FIELDS) + f" {t}")
        out.append(f"relay,tag1=heating,room=living state={float(rooms['living'][i])!r} {t}")
        out.append(f"relay,tag1=heating,room=bedroom state={float(rooms['bedroom'][i])!r} {t}")
        out.append(f"relay,tag1=lights,room=living state=1.0 {t}")  # another relay on the same room: not heating
        out.append(f"temperature,room=living value={float(rooms['temp_living'][i])!r} {t}")
        out.append(f"temperature,room=outdoor value={float(rooms['temp_outdoor'][i])!r} {t}")
    return "\n".join(out)


def _config(tmp_path: Path, url: str, database: str, columns: str = "") -> Path:
    path = tmp_path / "history.toml"
    path.write_text(f'''
[source]
kind = "influxdb1"
url = "{url}"
database = "{database}"
chunk_days = 1

[history]
timezone = "{TZ}"
step_minutes = 15

[columns]
pv_power_kw = {{ measurement = "solar", field = "InputPower", unit = "W" }}
pv1_power_kw = {{ measurement = "solar", field = "PV1InputPower", unit = "W" }}
battery_soc = {{ measurement = "solar", field = "SOC", unit = "%" }}
battery_charge_kw = {{ measurement = "solar", field = "ChargePower", unit = "W" }}
battery_discharge_kw = {{ measurement = "solar", field = "DischargePower", unit = "W" }}
grid_import_kw = {{ measurement = "solar", field = "ACPowerToUser", unit = "W" }}
grid_export_kw = {{ measurement = "solar", field = "ACPowerToGrid", unit = "W" }}
"relay_on.living" = {{ measurement = "relay", field = "state", tags = {{ tag1 = "heating", room = "living" }} }}
"relay_on.bedroom" = {{ measurement = "relay", field = "state", tags = {{ tag1 = "heating", room = "bedroom" }} }}
"room_temp_c.living" = {{ measurement = "temperature", field = "value", tags = {{ room = "living" }}, unit = "degC" }}
outdoor_temp_c = {{ measurement = "temperature", field = "value", tags = {{ room = "outdoor" }}, unit = "degC" }}
{columns}
[derived]
base_load_kw = "grid_import_kw - grid_export_kw + pv_power_kw - (battery_charge_kw - battery_discharge_kw)"
''', encoding="utf-8")
    return path


@pytest.fixture
def loaded(influxdb, tmp_path):
    database = f"home_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(database)
    index, solar, rooms = _written(7)
    influxdb.write(database, _lines(index, solar, rooms))
    return database, index, solar, rooms


def test_round_trip_per_field_and_sum(influxdb, loaded, tmp_path):
    database, index, solar, rooms = loaded
    config = load_import_config(_config(tmp_path, influxdb.url, database))
    out = tmp_path / "history"
    calls = []
    result = import_history(config, index[0], index[-1] + pd.Timedelta(minutes=5), out,
                            progress=lambda done, total: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1] == 3 * len(config.columns)  # 3 one-day chunks × columns
    assert result.days == 3
    back = read_history(out, TZ)
    written = pd.DataFrame({"pv_power_kw": solar["InputPower"] / 1e3, "pv1_power_kw": solar["PV1InputPower"] / 1e3,
                            "battery_soc": solar["SOC"] / 100, "battery_charge_kw": solar["ChargePower"] / 1e3,
                            "battery_discharge_kw": solar["DischargePower"] / 1e3,
                            "grid_import_kw": solar["ACPowerToUser"] / 1e3,
                            "grid_export_kw": solar["ACPowerToGrid"] / 1e3,
                            "relay_on.living": rooms["living"], "relay_on.bedroom": rooms["bedroom"],
                            "room_temp_c.living": rooms["temp_living"],
                            "outdoor_temp_c": rooms["temp_outdoor"]}, index=index)
    expected = written.resample("15min").mean()
    assert back.index.equals(expected.index)
    for column in written.columns:  # per field: every 15-min mean, and the sum of what was written
        np.testing.assert_allclose(back[column].to_numpy(), expected[column].to_numpy(), rtol=1e-9, err_msg=column)
        np.testing.assert_allclose(back[column].sum() * 3, written[column].sum(), rtol=1e-9, err_msg=column)
    load = (expected["grid_import_kw"] - expected["grid_export_kw"] + expected["pv_power_kw"]
            - (expected["battery_charge_kw"] - expected["battery_discharge_kw"]))
    np.testing.assert_allclose(back["base_load_kw"].to_numpy(), load.to_numpy(), rtol=1e-9)


def test_cli_import_and_the_folder_reads_in_the_historical_reader(influxdb, loaded, tmp_path):
    import typer

    from scenarios.historical.cli import register
    from scenarios.historical.mapping import load_mapping
    from scenarios.historical.reader import read_historical

    app = typer.Typer()
    register(app)
    database, index, solar, _ = loaded
    out = tmp_path / "history"
    answer = CliRunner().invoke(app, ["history", "import", "--config", str(_config(tmp_path, influxdb.url, database)),
                                      "--from", "2026-03-28", "--to", "2026-03-31", "--out", str(out), "--json"])
    assert answer.exit_code == 0, answer.output
    assert '"days": 3' in answer.output
    mapping = load_mapping(Path("scenarios/historical/mappings/pems_history.toml"))
    frame, _ = read_historical(mapping, out)  # no conversion: the built-in mapping reads the folder
    np.testing.assert_allclose(frame["pv_power_kw"].sum() * 3, solar["InputPower"].sum() / 1e3, rtol=1e-9)
    again = CliRunner().invoke(app, ["history", "import", "--config", str(_config(tmp_path, influxdb.url, database)),
                                     "--from", "2026-03-28", "--to", "2026-03-31", "--out", str(out)])
    assert again.exit_code == 2 and "already holds history" in again.output


@pytest.mark.parametrize(("extra", "message"), [
    ('x_kw = { measurement = "nosuch", field = "a", unit = "W" }', "measurement 'nosuch' is not in database"),
    ('x_kw = { measurement = "solar", field = "Nosuch", unit = "W" }', "field 'Nosuch' is not in measurement 'solar'"),
    ('"relay_on.attic" = { measurement = "relay", field = "state", tags = { room = "attic" } }',
     "relay_on.attic: no data for measurement 'relay' field 'state' tags {'room': 'attic'}"),
])
def test_unknown_names_are_named_and_nothing_is_written(influxdb, loaded, tmp_path, extra, message):
    database, index, _, _ = loaded
    config = load_import_config(_config(tmp_path, influxdb.url, database, extra))
    out = tmp_path / "history"
    with pytest.raises(InfluxError, match=message.replace("{", r"\{").replace("}", r"\}")):
        import_history(config, index[0], index[0] + pd.Timedelta(days=1), out)
    assert not out.exists() and not list(tmp_path.glob(".history*"))


def test_unknown_database_and_unreachable_server(influxdb, tmp_path):
    config = load_import_config(_config(tmp_path, influxdb.url, "nosuchdb"))
    start = pd.Timestamp("2026-03-28", tz=TZ)
    with pytest.raises(InfluxError, match="database not found"):
        import_history(config, start, start + pd.Timedelta(days=1), tmp_path / "h")
    config = load_import_config(_config(tmp_path, "http://127.0.0.1:9", "home"))
    with pytest.raises(InfluxError, match="cannot reach the server"):
        import_history(config, start, start + pd.Timedelta(days=1), tmp_path / "h")
