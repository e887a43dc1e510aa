"""What crosses the boundary between a plant (simulated or real) and a controller.

Sign conventions (docs/design.md): battery power + charging / − discharging; grid power
+ import / − export. Arrays indexed by room follow ``HouseConfig.rooms`` order.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

#: Exogenous series a forecast may carry, all on the scenario's data grid.
FORECAST_FIELDS = (
    "outdoor_temp_c",
    "ghi_w_m2",
    "dni_w_m2",
    "dhi_w_m2",
    "pv_power_kw",
    "base_load_kw",
    "import_price_per_kwh",
    "export_price_per_kwh",
)


class BatteryMode(enum.Enum):
    """The inverter's own operating modes (values are the MQTT payload strings)."""

    SELF_CONSUMPTION = "self_consumption"  # follow net load within limits
    CHARGE_FROM_GRID = "charge_from_grid"  # charge at ``power_kw`` [kW]
    DISCHARGE_TO_GRID = "discharge_to_grid"  # discharge at ``power_kw`` [kW]
    BACKUP_RESERVE = "backup_reserve"  # self-consumption, but hold ``reserve_soc`` [0..1]
    POWER_SETPOINT = "power_setpoint"  # signed ``power_kw``: + charge, − discharge


@dataclass(frozen=True, slots=True)
class BatteryCommand:
    """A battery inverter mode with its parameter.

    ``power_kw`` is a magnitude for CHARGE_FROM_GRID / DISCHARGE_TO_GRID, signed for
    POWER_SETPOINT, ignored otherwise. ``reserve_soc`` is used by BACKUP_RESERVE only.
    """

    mode: BatteryMode
    power_kw: float = 0.0
    reserve_soc: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.mode, BatteryMode):
            raise TypeError(f"mode must be a BatteryMode, got {self.mode!r}")
        if not math.isfinite(self.power_kw):
            raise ValueError(f"power_kw must be finite, got {self.power_kw!r}")
        if self.mode in (BatteryMode.CHARGE_FROM_GRID, BatteryMode.DISCHARGE_TO_GRID) and self.power_kw < 0:
            raise ValueError(f"power_kw must be >= 0 for {self.mode.name}, got {self.power_kw!r}")
        if self.mode is BatteryMode.BACKUP_RESERVE and (
            self.reserve_soc is None or not 0.0 <= self.reserve_soc <= 1.0
        ):
            raise ValueError(f"reserve_soc must be in [0, 1] for BACKUP_RESERVE, got {self.reserve_soc!r}")


SELF_CONSUMPTION = BatteryCommand(BatteryMode.SELF_CONSUMPTION)


class PlanStatus(enum.StrEnum):
    """The vocabulary of ``Command.plan_status``; str-valued, so the run log and JSON keep the text.

    A planning controller (e.g. an MPC) either executes a *fresh* plan — ``OPTIMAL`` (solved to
    the MIP gap) or ``FEASIBLE`` (the solver's incumbent at its time limit, gap not proven) — or
    has none: ``LAST_PLAN`` (the latest solve failed; the last valid plan is executed while it
    lasts) or ``FALLBACK`` (no valid plan; a simple fallback controller decided). ``FAILED`` is
    a planner admitting that what it returns is no usable plan (infeasible, an error, a time
    limit without an incumbent, a relaxed solution; ``Command.plan_note`` says which): the live
    guard never executes it. ``DEFAULTS`` is the live guard's command that commands nothing.
    The KPI ``cycles_without_plan`` counts the decisions in :data:`WITHOUT_PLAN`. Controllers
    that do not plan leave ``plan_status`` ``None``.
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    LAST_PLAN = "last_plan"
    FALLBACK = "fallback"
    FAILED = "failed"
    DEFAULTS = "defaults"


_STATUS_VALUES = frozenset(s.value for s in PlanStatus)
#: Statuses of decisions taken without a fresh plan.
WITHOUT_PLAN = frozenset({PlanStatus.LAST_PLAN, PlanStatus.FALLBACK})
#: Statuses only a planning controller reports (a log holding none of them is not a planner's).
PLANNING = frozenset({PlanStatus.OPTIMAL, PlanStatus.FEASIBLE, PlanStatus.LAST_PLAN, PlanStatus.FALLBACK})


def plan_label(status: PlanStatus | None, note: str) -> str:
    """The run log's ``plan_status`` text: the status, then the note (``"optimal [forecasts=learned]"``)."""
    if status is None:
        return note
    return f"{status.value} {note}" if note else status.value


def status_of_label(label: str) -> PlanStatus | None:
    """The :class:`PlanStatus` a :func:`plan_label` text starts with (``None`` when it starts with none)."""
    word = label.split(" ", 1)[0]
    return PlanStatus(word) if word in _STATUS_VALUES else None


@dataclass(frozen=True, slots=True)
class Command:
    """What a controller asks of the devices until ``until`` (a lease).

    A field left ``None`` leaves that device as it is: still under an earlier lease, or under
    its own local behaviour once that has run out (relays → local thermostat, battery →
    SELF_CONSUMPTION, charger → full power while a car is connected).
    ``ev_power_kw`` is the charger's AC power: 0 stops charging, otherwise it is brought into
    the charger's [min, max] range. ``plan_status`` (a :class:`PlanStatus`, or its text value) is
    what a planner says of its plan; ``plan_note`` is free text (which solver outcome, a wrapper's
    tag). The run log records both as :func:`plan_label`.
    """

    until: datetime
    relay_on: tuple[bool, ...] | None = None
    battery: BatteryCommand | None = None
    ev_power_kw: float | None = None
    plan_status: PlanStatus | None = None
    plan_note: str = ""

    def __post_init__(self) -> None:
        status = self.plan_status
        if status is not None and type(status) is not PlanStatus:
            if not isinstance(status, str) or status not in _STATUS_VALUES:
                raise ValueError(f"plan_status must be one of {[s.value for s in PlanStatus]} or None, got "
                                 f"{status!r} (free text goes in plan_note)")
            object.__setattr__(self, "plan_status", PlanStatus(status))
        if not isinstance(self.until, datetime) or self.until.tzinfo is None:
            raise TypeError(f"until must be a timezone-aware datetime, got {self.until!r}")
        if self.ev_power_kw is not None and not math.isfinite(self.ev_power_kw):
            raise ValueError(f"ev_power_kw must be finite, got {self.ev_power_kw!r}")

    @property
    def plan_label(self) -> str:
        """``plan_status`` and ``plan_note`` as the run log's text (:func:`plan_label`)."""
        return plan_label(self.plan_status, self.plan_note)

    def with_devices(self, until: datetime, relay_on: tuple[bool, ...] | None, battery: BatteryCommand | None,
                     ev_power_kw: float | None) -> Command:
        """A copy with another lease and device fields (``dataclasses.replace`` at a third of its cost)."""
        return Command(until, relay_on, battery, ev_power_kw, self.plan_status, self.plan_note)


class Forecast:
    """The future as a controller may see it at decision time, on the scenario's data grid.

    Step 0 is the data step that contains the observation time; every series has
    ``horizon_steps`` values. Exogenous series (``FORECAST_FIELDS``) are *issued* forecasts,
    which differ from what will happen (except for an oracle); comfort bands are a known
    schedule, shaped (steps, rooms). Series are computed on first access, so a controller
    that never looks at the future costs nothing.
    """

    __slots__ = ("start", "step_s", "horizon_steps", "_load", "_values", "_comfort_load", "_comfort")

    def __init__(
        self,
        start: datetime,
        step_s: float,
        horizon_steps: int,
        load: Callable[[], Mapping[str, np.ndarray]],
        comfort: Callable[[], tuple[np.ndarray, np.ndarray]],
    ) -> None:
        self.start = start
        self.step_s = step_s
        self.horizon_steps = horizon_steps
        self._load = load
        self._values: Mapping[str, np.ndarray] | None = None
        self._comfort_load = comfort
        self._comfort: tuple[np.ndarray, np.ndarray] | None = None

    def _series(self, name: str) -> np.ndarray:
        if self._values is None:
            self._values = self._load()
        return self._values[name]

    @property
    def times(self) -> pd.DatetimeIndex:
        """Start of each forecast step (tz-aware)."""
        return pd.date_range(pd.Timestamp(self.start), periods=self.horizon_steps, freq=pd.Timedelta(
            seconds=self.step_s))

    def as_frame(self) -> pd.DataFrame:
        """All exogenous series as one DataFrame indexed by :attr:`times`."""
        return pd.DataFrame({name: self._series(name) for name in FORECAST_FIELDS}, index=self.times)

    outdoor_temp_c = property(lambda self: self._series("outdoor_temp_c"), doc="[°C]")
    ghi_w_m2 = property(lambda self: self._series("ghi_w_m2"), doc="Global horizontal irradiance [W/m²]")
    dni_w_m2 = property(lambda self: self._series("dni_w_m2"), doc="Direct normal irradiance [W/m²]")
    dhi_w_m2 = property(lambda self: self._series("dhi_w_m2"), doc="Diffuse horizontal irradiance [W/m²]")
    pv_power_kw = property(lambda self: self._series("pv_power_kw"), doc="PV AC power, all arrays [kW]")
    base_load_kw = property(lambda self: self._series("base_load_kw"), doc="Non-controllable load [kW]")
    import_price_per_kwh = property(lambda self: self._series("import_price_per_kwh"), doc="[currency/kWh]")
    export_price_per_kwh = property(lambda self: self._series("export_price_per_kwh"), doc="[currency/kWh]")

    @property
    def comfort_lower_c(self) -> np.ndarray:
        """Lower comfort bound per step and room [°C], shape (steps, rooms)."""
        if self._comfort is None:
            self._comfort = self._comfort_load()
        return self._comfort[0]

    @property
    def comfort_upper_c(self) -> np.ndarray:
        """Upper comfort bound per step and room [°C], shape (steps, rooms)."""
        if self._comfort is None:
            self._comfort = self._comfort_load()
        return self._comfort[1]

    def __repr__(self) -> str:
        return f"Forecast(start={self.start.isoformat()}, step_s={self.step_s}, steps={self.horizon_steps})"


@dataclass(frozen=True, slots=True)
class Observation:
    """What a controller may know at decision time.

    Per-room arrays follow ``HouseConfig.rooms``. ``battery_soc`` is NaN without a battery;
    ``ev_soc`` is NaN and ``ev_departure`` None while no car is connected. ``stale`` names
    inputs whose readings are too old to trust (live mode); a controller must then be more
    conservative, never read them as zero. ``epoch_time`` is ``(time, its epoch seconds)`` when the
    plant knows them (the twin does): :attr:`epoch_s` then skips converting ``time`` again, and a copy
    given another ``time`` (``dataclasses.replace``) is still right, as the pair no longer matches it.
    """

    time: datetime
    room_temp_c: np.ndarray
    comfort_lower_c: np.ndarray
    comfort_upper_c: np.ndarray
    relay_on: np.ndarray
    outdoor_temp_c: float
    pv_power_kw: float
    base_load_kw: float
    grid_power_kw: float
    battery_soc: float
    battery_power_kw: float
    ev_connected: bool
    ev_soc: float
    ev_energy_needed_kwh: float
    ev_departure: datetime | None
    import_price_per_kwh: float
    export_price_per_kwh: float
    forecast: Forecast
    stale: frozenset[str] = field(default_factory=frozenset)
    epoch_time: tuple[datetime, float] | None = field(default=None, repr=False, compare=False)

    @property
    def epoch_s(self) -> float:
        """:attr:`time` as epoch seconds (from ``epoch_time`` when it is of this ``time``)."""
        pair = self.epoch_time
        if pair is not None and pair[0] is self.time:
            return pair[1]
        return self.time.timestamp()

    def after(self, seconds: float) -> datetime:
        """The time ``seconds`` after :attr:`time`, correct across DST changes."""
        global _last_after
        epoch_s = self.epoch_s + seconds
        when = datetime.fromtimestamp(epoch_s, self.time.tzinfo)
        if epoch_s.is_integer():  # whole seconds: when.timestamp() gives epoch_s back exactly
            _last_after = (when, epoch_s)
        return when


#: The last whole-second time :meth:`Observation.after` made, with its epoch seconds (see :func:`epoch_seconds`).
_last_after: tuple[datetime, float] | None = None


def epoch_seconds(when: datetime) -> float:
    """``when.timestamp()``, without converting again the time the last :meth:`Observation.after` made.

    A command's lease end is usually ``obs.after(lease_s)``; the safety layer and the plant each read
    it as epoch seconds, and a tz-aware ``datetime.timestamp()`` costs about 0.5 µs. The cached pair
    is only used for that very object (datetimes are immutable), so a stale entry is never wrong.
    """
    pair = _last_after
    if pair is not None and pair[0] is when:
        return pair[1]
    return when.timestamp()


#: The slot setters of every :class:`Observation` field, in field order.
_OBSERVATION_SETTERS = tuple(getattr(Observation, f.name).__set__ for f in fields(Observation))


def observation_of(*values: Any) -> Observation:
    """``Observation(*values)`` with every field given, in field order, for a plant's hot loop.

    The frozen dataclass's ``__init__`` sets each of its 20 fields through ``object.__setattr__``
    (≈ 3 µs, a few per cent of a simulated decision); setting the slots directly takes about half.
    Observation has no ``__post_init__``, so the result is the same object ``Observation(*values)`` builds.
    """
    if len(values) != len(_OBSERVATION_SETTERS):
        raise TypeError(f"observation_of() takes all {len(_OBSERVATION_SETTERS)} fields, got {len(values)}")
    obs: Observation = object.__new__(Observation)
    for set_slot, value in zip(_OBSERVATION_SETTERS, values, strict=True):
        set_slot(obs, value)
    return obs


@runtime_checkable
class Controller(Protocol):
    """Anything that turns an observation into a command. ``reset()`` is optional."""

    def decide(self, obs: Observation) -> Command: ...


@runtime_checkable
class Plant(Protocol):
    """A house that can be observed and commanded: ``SimHouse`` or ``MqttHouse``."""

    def observe(self) -> Observation: ...

    def apply(self, command: Command) -> None: ...
