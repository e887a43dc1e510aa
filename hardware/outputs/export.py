"""A finished run's log (simulated, benchmarked or live) into InfluxDB, as the observer would have written it.

Used by ``pems bench --influxdb-url`` (runs happen on Dask workers, so their logs are exported
afterwards) and by ``pems simulate --influxdb-url``, which wires the live observer instead.
Writes ``reading``, ``room``, ``command``, ``energy`` and ``kpi_day`` — the measurements a
dashboard needs to show a simulated day next to a live one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hardware.outputs.config import InfluxOutputConfig, influx_config_from_dict
from hardware.outputs.influx import InfluxWriter
from hardware.outputs.line_protocol import Point, time_ns
from hardware.outputs.observer import ENERGY_FIELDS, InfluxObserver
from twin.runlog import room_names_of


def _finite(value: Any) -> bool:
    return not (isinstance(value, float) and not math.isfinite(value))


def log_points(log: pd.DataFrame, source: str, prefix: str = "pems_") -> list[Point]:
    """Points for every interval of a run log (see :mod:`hardware.outputs.observer` for the schema)."""
    tags = {"source": source}
    rooms = room_names_of(log)
    stamps = [time_ns(t) for t in log.index]
    out: list[Point] = []
    reading_cols = [c for c in ("outdoor_temp_c", "battery_soc", "ev_soc", "import_price_per_kwh",
                                "export_price_per_kwh") if c in log]
    for i, t_ns in enumerate(stamps):
        row = log.iloc[i]
        out.append(Point(prefix + "reading", t_ns, {c: float(row[c]) for c in reading_cols} | {
            "ev_connected": bool(row["ev_connected"])}, tags))
        energy = {c: float(row[c]) for c in ENERGY_FIELDS if c in log}
        energy["battery_soc"] = float(row["battery_soc"])
        out.append(Point(prefix + "energy", t_ns, energy, tags))
        command: dict[str, Any] = {"decide_time_s": float(row["decide_time_s"]),
                                   "plan_status": str(row["plan_status"] or ""),
                                   "battery_mode": str(row["cmd_battery_mode"] or "")}
        for c in ("cmd_battery_power_kw", "cmd_ev_power_kw"):
            command[c.removeprefix("cmd_")] = float(row[c])
        out.append(Point(prefix + "command", t_ns, command, tags))
        for room in rooms:
            out.append(Point(prefix + "room", t_ns, {
                "temp_c": float(row[f"temp_c.{room}"]), "comfort_lower_c": float(row[f"comfort_lower_c.{room}"]),
                "comfort_upper_c": float(row[f"comfort_upper_c.{room}"]),
                "relay_on": bool(row[f"relay_on.{room}"])}, {**tags, "room": room}))
    days = log.groupby(log.index.normalize())
    for day, part in days:
        pv = float(part["pv_kwh"].sum())
        export = float(part["export_kwh"].sum())
        complete = float(part["duration_s"].sum()) >= 86400.0 - 1.0 or (
            len(days) > 1 and day not in (log.index[0].normalize(), log.index[-1].normalize()))
        out.append(Point(prefix + "kpi_day", time_ns(day), {
            "cost": float(part["cost"].sum()), "import_kwh": float(part["import_kwh"].sum()),
            "export_kwh": export, "pv_kwh": pv, "heating_kwh": float(part["heating_kwh"].sum()),
            "ev_kwh": float(part["ev_kwh"].sum()),
            "self_consumption": (pv - min(export, pv)) / pv if pv > 1e-9 else math.nan,
            "decisions_without_plan": int(np.isin(part["plan_status"].astype(str), ["last_plan", "fallback"]).sum()),
        }, {**tags, "complete": str(bool(complete)).lower()}))
    return out


def export_run_log(log: pd.DataFrame, config: InfluxOutputConfig, spool_dir: str | Path, source: str,
                   timeout_s: float = 120.0) -> int:
    """Write a run log; returns the number of lines submitted (what is not yet written stays spooled)."""
    writer = InfluxWriter(config, spool_dir)
    points = log_points(log, source, config.measurement_prefix)
    for k in range(0, len(points), 5000):
        writer.submit(points[k:k + 5000])
    writer.close(timeout_s)
    return writer.stats.submitted


def cli_config(url: str, database: str, prefix: str = "pems_") -> InfluxOutputConfig:
    """The 1.x config behind ``--influxdb-url`` / ``--influxdb-database`` (2.x: use live.toml's table)."""
    return influx_config_from_dict({"url": url, "database": database, "measurement_prefix": prefix})


def simulation_observer(config: InfluxOutputConfig, spool_dir: str | Path, room_names: tuple[str, ...],
                        heater_kw: list[float], source: str, controller: Any = None
                        ) -> tuple[InfluxObserver, InfluxWriter]:
    """An InfluxDB observer for ``pems simulate`` and its writer (the caller closes it)."""
    writer = InfluxWriter(config, spool_dir)
    return InfluxObserver(writer, room_names, source=source, heater_kw=heater_kw, controller=controller), writer
