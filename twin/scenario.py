"""Scenario contract: the exogenous world a house lives through, and what may be foreseen of it.

A scenario's ``data`` is a DataFrame on a tz-aware, fixed-frequency index; each row holds
the interval-mean values from its timestamp to the next (piecewise constant). Columns:

=========================  ==========================================================
``outdoor_temp_c``         outdoor air temperature [°C] (required)
``ghi_w_m2`` etc.          ``ghi_w_m2``, ``dni_w_m2``, ``dhi_w_m2`` irradiance [W/m²]
``pv_power_kw``            measured PV AC power [kW]; replaces the pvlib model when given
``base_load_kw``           non-controllable household load [kW] (required)
``import_price_per_kwh``   price paid per imported kWh, all fees included (required)
``export_price_per_kwh``   price received per exported kWh; may be negative (required)
``comfort_mode``           occupancy: 0 day, 1 night, 2 away (``ComfortMode``) (required)
``wind_speed_m_s``         wind speed [m/s] for PV cell temperature (optional, default 1)
=========================  ==========================================================

Either the irradiance trio or ``pv_power_kw`` must be present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from twin.contracts import FORECAST_FIELDS
from twin.errors import ScenarioError

REQUIRED_COLUMNS = ("outdoor_temp_c", "base_load_kw", "import_price_per_kwh", "export_price_per_kwh",
                    "comfort_mode")
IRRADIANCE_COLUMNS = ("ghi_w_m2", "dni_w_m2", "dhi_w_m2")
OPTIONAL_COLUMNS = (*IRRADIANCE_COLUMNS, "pv_power_kw", "wind_speed_m_s")

#: Plausible physical range of each column; a value outside is a data error.
COLUMN_RANGES = {
    "outdoor_temp_c": (-60.0, 60.0),
    "ghi_w_m2": (0.0, 1500.0),
    "dni_w_m2": (0.0, 1500.0),
    "dhi_w_m2": (0.0, 1000.0),
    "pv_power_kw": (0.0, 10_000.0),
    "base_load_kw": (0.0, 1000.0),
    "import_price_per_kwh": (-10.0, 10.0),
    "export_price_per_kwh": (-10.0, 10.0),
    "comfort_mode": (0, 2),
    "wind_speed_m_s": (0.0, 80.0),
}


@dataclass(frozen=True, slots=True)
class EvSession:
    """One stay of the car at home: plugged in from ``arrival`` until ``departure``."""

    arrival: datetime
    departure: datetime
    capacity_kwh: float
    arrival_soc: float
    target_soc: float

    def __post_init__(self) -> None:
        for name in ("arrival", "departure"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise ScenarioError(f"EV session {name} must be a timezone-aware datetime, got {value!r}")
        if self.departure <= self.arrival:
            raise ScenarioError(f"EV session departs ({self.departure}) before it arrives ({self.arrival})")
        if not 1.0 <= self.capacity_kwh <= 300.0:
            raise ScenarioError(f"EV capacity_kwh = {self.capacity_kwh} is outside [1, 300]")
        for name in ("arrival_soc", "target_soc"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ScenarioError(f"EV session {name} = {value} is outside [0, 1]")

    @property
    def charge_limit_kwh(self) -> float:
        """Energy at which the car stops accepting charge [kWh]: its own charge limit.

        Set to the owner's target as owners of EVs usually do (80 %), so that charging to "full"
        — the charger's local rule — and charging to the target both end there; a car that
        arrives above it takes nothing.
        """
        return max(self.target_soc, self.arrival_soc) * self.capacity_kwh

    @property
    def energy_needed_kwh(self) -> float:
        """Energy the car needs at arrival to reach its target [kWh]."""
        return max(0.0, (self.target_soc - self.arrival_soc) * self.capacity_kwh)


@runtime_checkable
class ForecastModel(Protocol):
    """How the issued forecasts of a scenario relate to what actually happens.

    ``issue`` returns every series of ``FORECAST_FIELDS`` for data steps
    ``step .. step + horizon_steps - 1``, as known at the start of ``step``. ``actual`` holds
    the true series (padded past the scenario's end, so any slice of the horizon exists),
    including ``pv_power_kw``, which the twin computes from irradiance when the scenario has
    no measured PV. Implementations must be deterministic functions of their construction
    arguments and ``step`` (same seed → same forecasts), and must not return views a caller
    could write to. ``with_index`` gives the same model for another index (a window of the
    scenario), so that a target time gets the same forecast whichever window it is seen from.
    """

    name: str

    def issue(self, actual: Mapping[str, np.ndarray], step: int, horizon_steps: int) -> dict[str, np.ndarray]: ...

    def with_index(self, index: pd.DatetimeIndex) -> ForecastModel: ...


class PerfectForecasts:
    """The actual future: what the oracle sees."""

    name = "perfect"

    def issue(self, actual: Mapping[str, np.ndarray], step: int, horizon_steps: int) -> dict[str, np.ndarray]:
        return {k: actual[k][step:step + horizon_steps].copy() for k in FORECAST_FIELDS}

    def with_index(self, index: pd.DatetimeIndex) -> PerfectForecasts:
        return self


@dataclass(frozen=True, eq=False)
class Scenario:
    """A named, versioned world: exogenous data, EV sessions and issued forecasts.

    ``initial_room_temp_c`` is one temperature for every node, or ``None`` to start each
    room at its comfort lower bound + 1 K; ``initial_battery_soc`` ``None`` takes the house's.
    """

    name: str
    data: pd.DataFrame
    forecasts: ForecastModel
    ev_sessions: tuple[EvSession, ...] = ()
    initial_room_temp_c: float | None = None
    initial_battery_soc: float | None = None
    description: str = ""
    provenance: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_data(self.data, self.name)
        validate_sessions(self.ev_sessions, self.index, self.name)
        if self.initial_room_temp_c is not None and not -30.0 <= self.initial_room_temp_c <= 50.0:
            raise ScenarioError(f"{self.name}: initial_room_temp_c = {self.initial_room_temp_c} outside [-30, 50]")
        if self.initial_battery_soc is not None and not 0.0 <= self.initial_battery_soc <= 1.0:
            raise ScenarioError(f"{self.name}: initial_battery_soc = {self.initial_battery_soc} outside [0, 1]")
        if not isinstance(self.forecasts, ForecastModel):
            raise ScenarioError(f"{self.name}: forecasts must implement ForecastModel, got {self.forecasts!r}")

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.data.index  # type: ignore[return-value]

    @property
    def step_s(self) -> float:
        return float(self.index.freq.nanos / 1e9) if self.index.freq is not None else float(
            (self.index[1] - self.index[0]).total_seconds())

    @property
    def start(self) -> pd.Timestamp:
        return self.index[0]

    @property
    def end(self) -> pd.Timestamp:
        """End of the last interval."""
        return self.index[-1] + pd.Timedelta(seconds=self.step_s)

    @property
    def duration_s(self) -> float:
        return len(self.index) * self.step_s

    @property
    def tz(self) -> tzinfo:
        zone = self.index.tz
        assert zone is not None, "validate_data requires a tz-aware index"
        return zone

    def with_forecasts(self, forecasts: ForecastModel) -> Scenario:
        """The same world with another forecast model (e.g. ``PerfectForecasts`` for an oracle)."""
        return replace(self, forecasts=forecasts)

    def window(self, start: pd.Timestamp, end: pd.Timestamp, name: str | None = None) -> Scenario:
        """The part of the scenario in [start, end).

        EV sessions overlapping the window are clipped to it: a car already home at ``start``
        is there from the first step (with its arrival SOC), and a car still home at ``end``
        leaves then — its shortfall is measured at the window's end.
        """
        data = self.data.loc[(self.index >= start) & (self.index < end)]
        if len(data) < 2:
            raise ScenarioError(f"{self.name}: window [{start}, {end}) holds fewer than 2 data points")
        data = data.copy()
        freq = self.index.freq
        index = pd.DatetimeIndex(data.index, freq=freq) if freq is not None else pd.DatetimeIndex(data.index)
        data.index = index
        lo = index[0].to_pydatetime()
        hi = (index[-1] + pd.Timedelta(seconds=self.step_s)).to_pydatetime()
        sessions = tuple(replace(s, arrival=max(s.arrival, lo), departure=min(s.departure, hi))
                         for s in self.ev_sessions if min(s.departure, hi) > max(s.arrival, lo))
        return replace(self, name=name or self.name, data=data, ev_sessions=sessions,
                       forecasts=self.forecasts.with_index(index))


def validate_data(data: pd.DataFrame, name: str = "scenario") -> None:
    """Raise :class:`ScenarioError` naming the column and row of the first problem found."""
    if not isinstance(data, pd.DataFrame):
        raise ScenarioError(f"{name}: data must be a DataFrame, got {type(data).__name__}")
    index = data.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ScenarioError(f"{name}: data index must be a timezone-aware DatetimeIndex")
    if len(index) < 2:
        raise ScenarioError(f"{name}: data needs at least 2 rows, has {len(index)}")
    steps = np.diff(index.asi8)
    if (steps <= 0).any():
        row = int(np.argmax(steps <= 0)) + 1
        raise ScenarioError(f"{name}: timestamps not strictly increasing at row {row} ({index[row]})")
    if (steps != steps[0]).any():
        row = int(np.argmax(steps != steps[0])) + 1
        raise ScenarioError(
            f"{name}: timestamps not evenly spaced at row {row} ({index[row]}): step "
            f"{steps[row - 1] / 1e9:.0f} s, expected {steps[0] / 1e9:.0f} s")
    missing = [c for c in REQUIRED_COLUMNS if c not in data.columns]
    if missing:
        raise ScenarioError(f"{name}: missing required column(s) {missing}")
    has_irradiance = all(c in data.columns for c in IRRADIANCE_COLUMNS)
    if not has_irradiance and "pv_power_kw" not in data.columns:
        raise ScenarioError(f"{name}: needs either {list(IRRADIANCE_COLUMNS)} or 'pv_power_kw'")
    unknown = sorted(set(data.columns) - set(REQUIRED_COLUMNS) - set(OPTIONAL_COLUMNS))
    if unknown:
        raise ScenarioError(f"{name}: unknown column(s) {unknown}")
    for column in data.columns:
        values = data[column].to_numpy(dtype=float)
        lo, hi = COLUMN_RANGES[column]
        bad = ~np.isfinite(values) | (values < lo) | (values > hi)
        if bad.any():
            row = int(np.argmax(bad))
            raise ScenarioError(
                f"{name}: column {column!r} row {row} ({index[row]}) = {float(values[row])!r} "
                f"is not a finite value in [{lo}, {hi}]")
    modes = data["comfort_mode"].to_numpy(dtype=float)
    if (modes != np.round(modes)).any():
        row = int(np.argmax(modes != np.round(modes)))
        raise ScenarioError(f"{name}: column 'comfort_mode' row {row} = {float(modes[row])!r} is not 0, 1 or 2")


def validate_sessions(sessions: tuple[EvSession, ...], index: pd.DatetimeIndex, name: str = "scenario") -> None:
    """Sessions must be EvSession objects, in order, not overlapping, inside the scenario."""
    step = index[1] - index[0]
    start, end = index[0], index[-1] + step
    previous: EvSession | None = None
    for i, s in enumerate(sessions):
        if not isinstance(s, EvSession):
            raise ScenarioError(f"{name}: ev_sessions[{i}] is not an EvSession")
        if s.arrival < start or s.departure > end:
            raise ScenarioError(f"{name}: ev_sessions[{i}] ({s.arrival} – {s.departure}) lies outside "
                                f"the scenario [{start}, {end}]")
        if previous is not None and s.arrival < previous.departure:
            raise ScenarioError(f"{name}: ev_sessions[{i}] arrives at {s.arrival} before the previous "
                                f"session departs at {previous.departure}")
        previous = s
