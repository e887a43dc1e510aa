"""The run log: one row per control interval, the same schema for simulated and live runs.

Index ``time``: start of the interval (tz-aware). Energies are integrated exactly over the
interval [kWh]; states are at its end; prices, outdoor temperature and comfort bands are as
observed at its start; ``cmd_*`` is what the controller decided at its start. Per-room
columns are named ``<quantity>.<room>``. ``discomfort_kh.<room>`` is the trapezoid of the
distance outside the comfort band between the interval's start and end temperatures —
computed from readings alone, so simulated and live runs are scored the same way.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from twin.contracts import Command, Observation, PlanStatus, plan_label
from twin.house import IntervalRecord

ENERGY_COLUMNS = (
    "pv_kwh", "pv_curtailed_kwh", "base_load_kwh", "heating_kwh", "ev_kwh", "battery_charge_kwh",
    "battery_discharge_kwh", "import_kwh", "export_kwh", "cost", "grid_limit_violation_kwh", "ev_unmet_kwh",
)
ROOM_QUANTITIES = ("temp_c", "comfort_lower_c", "comfort_upper_c", "relay_on", "heating_kwh", "discomfort_kh",
                   "relay_switches")


def room_column(quantity: str, room: str) -> str:
    """The run-log column of a per-room ``quantity``: ``<quantity>.<room>``."""
    return f"{quantity}.{room}"


def room_names_of(log: pd.DataFrame) -> list[str]:
    """Rooms present in a log, in column order."""
    return [c.split(".", 1)[1] for c in log.columns if c.startswith("temp_c.")]


def energy_residual_kwh(log: pd.DataFrame) -> pd.Series:
    """PV + import + discharge − load − heating − EV − charge − export, per interval [kWh]."""
    return (log["pv_kwh"] + log["import_kwh"] + log["battery_discharge_kwh"] - log["base_load_kwh"]
            - log["heating_kwh"] - log["ev_kwh"] - log["battery_charge_kwh"] - log["export_kwh"])


def discomfort_kh(start_temp_c: np.ndarray, end_temp_c: np.ndarray, lower_c: np.ndarray, upper_c: np.ndarray,
                  duration_s: np.ndarray) -> np.ndarray:
    """Per interval and room: trapezoid of the distance outside the band lower..upper [K·h] (BOPTEST)."""
    def outside(temp: np.ndarray) -> np.ndarray:
        distance: np.ndarray = np.maximum(np.maximum(lower_c - temp, temp - upper_c), 0.0)
        return distance

    kh: np.ndarray = (outside(start_temp_c) + outside(end_temp_c)) * (duration_s[:, None] / 7200.0)
    return kh


_energies = operator.attrgetter(*ENERGY_COLUMNS)


class RunLogRow(NamedTuple):
    """The fields of one interval as :class:`RunLogRecorder` keeps it, in order.

    Per-room fields hold one value per room, in the house's room order. The recorder stores each
    interval as a plain tuple in this field order (building the NamedTuple per interval costs
    about twice the tuple) and :meth:`RunLogRecorder.to_frame` reads the transposed rows back
    as a ``RunLogRow`` of columns, by name.
    """

    start_epoch_s: float
    duration_s: float
    energies: tuple[float, ...]  # in ENERGY_COLUMNS order [kWh; cost in currency]
    temp_c: npt.ArrayLike  # at the interval's end
    relay_on: npt.ArrayLike
    battery_soc: float
    ev_connected: bool
    ev_soc: float
    import_price_per_kwh: float
    export_price_per_kwh: float
    outdoor_temp_c: float
    comfort_lower_c: npt.ArrayLike
    comfort_upper_c: npt.ArrayLike
    cmd_battery_mode: str
    cmd_battery_power_kw: float
    cmd_ev_power_kw: float
    cmd_relays: bool
    plan_status: PlanStatus | None
    plan_note: str  # the log's plan_status column is plan_label(plan_status, plan_note)
    decide_time_s: float
    start_temp_c: npt.ArrayLike  # observed at the interval's start
    heating_kwh: npt.ArrayLike
    relay_switches: npt.ArrayLike


class RunLogRecorder:
    """Collects intervals cheaply during a run; :meth:`to_frame` builds the log once at the end."""

    def __init__(self, room_names: Sequence[str]) -> None:
        self.room_names = tuple(room_names)
        self._rows: list[tuple[Any, ...]] = []  # RunLogRow fields, as plain tuples
        self._tz: tzinfo | None = None

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def last_row(self) -> RunLogRow | None:
        """The interval recorded last (a durable log journals it as it comes)."""
        return RunLogRow._make(self._rows[-1]) if self._rows else None

    @property
    def tz(self) -> tzinfo | None:
        return self._tz

    def append_row(self, row: RunLogRow, tz: tzinfo | None) -> None:
        """Add an interval read back from a journal (see ``hardware.live.log``)."""
        self._tz = tz
        self._rows.append(row)

    def record(self, start: datetime, obs: Observation, command: Command | None, decide_time_s: float,
               interval: IntervalRecord) -> None:
        if command is None:
            mode, power, ev, relays, status, note = "", math.nan, math.nan, False, None, "no_command"
        else:
            battery = command.battery
            mode = battery.mode.value if battery is not None else ""
            power = battery.power_kw if battery is not None else math.nan
            ev = command.ev_power_kw if command.ev_power_kw is not None else math.nan
            relays, status, note = command.relay_on is not None, command.plan_status, command.plan_note
        self._tz = start.tzinfo
        start_s = obs.epoch_s if start is obs.time else start.timestamp()  # the twin's observations carry it
        self._rows.append((start_s, interval.end_s - interval.start_s, _energies(interval.meter),
                           interval.room_temp_c,
                           interval.relay_on, interval.battery_soc, interval.ev_connected, interval.ev_soc,
                           obs.import_price_per_kwh, obs.export_price_per_kwh, obs.outdoor_temp_c,
                           obs.comfort_lower_c, obs.comfort_upper_c, mode, power, ev, relays, status, note,
                           decide_time_s, obs.room_temp_c, interval.meter.heating_room_kwh,
                           interval.meter.relay_switches_room))

    def to_frame(self) -> pd.DataFrame:
        rows = self._rows
        n = len(rows)
        # Transposed once: each field of ``col`` holds that field of every row, in order.
        col: Any = RunLogRow._make(zip(*rows, strict=True)) if rows else RunLogRow._make(() for _ in RunLogRow._fields)
        epoch_s = np.array(col.start_epoch_s, dtype=float)
        index = pd.DatetimeIndex(pd.to_datetime(np.round(epoch_s * 1e6).astype(np.int64), unit="us", utc=True),
                                 name="time")
        if rows:
            index = index.tz_convert(self._tz)
        columns: dict[str, np.ndarray] = {"duration_s": np.array(col.duration_s, dtype=float)}
        energies = np.array(col.energies, dtype=float).reshape(n, len(ENERGY_COLUMNS))
        for j, name in enumerate(ENERGY_COLUMNS):
            columns[name] = energies[:, j]
        for name, values in (("battery_soc", col.battery_soc), ("ev_soc", col.ev_soc),
                             ("import_price_per_kwh", col.import_price_per_kwh),
                             ("export_price_per_kwh", col.export_price_per_kwh),
                             ("outdoor_temp_c", col.outdoor_temp_c), ("cmd_battery_power_kw", col.cmd_battery_power_kw),
                             ("cmd_ev_power_kw", col.cmd_ev_power_kw), ("decide_time_s", col.decide_time_s)):
            columns[name] = np.array(values, dtype=float)
        columns["ev_connected"] = np.array(col.ev_connected, dtype=bool)
        columns["cmd_relays"] = np.array(col.cmd_relays, dtype=bool)
        columns["cmd_battery_mode"] = np.array(col.cmd_battery_mode, dtype=object)
        columns["plan_status"] = np.array(list(map(plan_label, col.plan_status, col.plan_note)), dtype=object)
        n_rooms = len(self.room_names)
        per_room: dict[str, tuple[Sequence[npt.ArrayLike], type]] = {
            "temp_c": (col.temp_c, float),
            "comfort_lower_c": (col.comfort_lower_c, float),
            "comfort_upper_c": (col.comfort_upper_c, float),
            "relay_on": (col.relay_on, bool),
            "heating_kwh": (col.heating_kwh, float),
            "relay_switches": (col.relay_switches, np.int64),
            "_start_temp_c": (col.start_temp_c, float),
        }
        matrices: dict[str, np.ndarray] = {quantity: _matrix(values, dtype, n, n_rooms)
                                           for quantity, (values, dtype) in per_room.items()}
        matrices["discomfort_kh"] = discomfort_kh(matrices.pop("_start_temp_c"), matrices["temp_c"],
                                                  matrices["comfort_lower_c"], matrices["comfort_upper_c"],
                                                  columns["duration_s"])
        for quantity in ROOM_QUANTITIES:
            for j, room in enumerate(self.room_names):
                columns[room_column(quantity, room)] = matrices[quantity][:, j]
        frame = pd.DataFrame(columns, index=index)
        frame.insert(len(ENERGY_COLUMNS) + 1, "energy_balance_kwh", energy_residual_kwh(frame))
        for name in ("cmd_battery_mode", "plan_status"):
            frame[name] = frame[name].astype("string")
        return frame


def _matrix(rows: Sequence[npt.ArrayLike], dtype: type, n: int, n_rooms: int) -> np.ndarray:
    """``(n, n_rooms)`` of ``n`` per-room rows; one concatenation is ~3 × faster than ``np.array`` of the rows."""
    if n == 0:
        return np.zeros((0, n_rooms), dtype=dtype)
    flat: np.ndarray = np.concatenate(rows).astype(dtype, copy=False)
    return flat.reshape(n, n_rooms)
