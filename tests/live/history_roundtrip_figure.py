"""The InfluxDB 1.x round trip of ``test_history_influx.py``, printed per field (a figure for the docs, not a test).

Usage, from the repository root: ``PYTHONPATH=. python tests/live/history_roundtrip_figure.py``
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import test_history_influx as case  # noqa: E402
from influxdb_server import InfluxServer  # noqa: E402 - after the path set-up

from scenarios.history.import_config import load_import_config  # noqa: E402
from scenarios.history.importer import import_history  # noqa: E402
from scenarios.history.store import read_history  # noqa: E402


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    server = InfluxServer(tmp / "influx").start()
    try:
        database = "home_" + uuid.uuid4().hex[:6]
        server.create_database(database)
        index, solar, rooms = case._written(7)
        server.write(database, case._lines(index, solar, rooms))
        config = load_import_config(case._config(tmp, server.url, database))
        result = import_history(config, index[0], index[-1] + pd.Timedelta(minutes=5), tmp / "history")
        back = read_history(tmp / "history", case.TZ)
        written = {"pv_power_kw": solar["InputPower"] / 1e3, "battery_soc": solar["SOC"] / 100,
                   "grid_import_kw": solar["ACPowerToUser"] / 1e3, "relay_on.living": rooms["living"],
                   "room_temp_c.living": rooms["temp_living"], "outdoor_temp_c": rooms["temp_outdoor"]}
        print(f"written: {len(index)} points per series (5 min, {index[0]} .. {index[-1]}); "
              f"imported: {result.rows} rows (15 min) over {result.days} days")
        for name, values in written.items():
            means = pd.Series(values, index=index).resample("15min").mean().to_numpy()
            print(f"{name:20s} sum written {values.sum():12.6f}  sum back ×3 {back[name].sum() * 3:12.6f}  "
                  f"max |15-min mean diff| {np.abs(back[name].to_numpy() - means).max():.1e}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
