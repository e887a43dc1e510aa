"""The specification of a synthetic scenario: frozen, validated parameter dataclasses.

:class:`SyntheticSpec` (read from a ``[synthetic_scenario]`` TOML table by
``scenarios.catalog``) holds one parameter set per component: :class:`ClimateParams`,
:class:`LoadParams`, :class:`EvParams`, :class:`ComfortScheduleParams` and the tariff and
forecast errors. ``scenarios.synthetic.generate`` turns it into a scenario.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np

from scenarios.forecast_errors import ForecastErrorParams
from scenarios.prices import Tariff
from twin.config import Location
from twin.params import bounded, check_bounds, fail

PRAGUE = Location(latitude_deg=50.08, longitude_deg=14.42, timezone="Europe/Prague", altitude_m=250.0)
#: Prague monthly mean air temperature [°C], Jan..Dec (climate normal, rounded).
PRAGUE_MONTHLY_MEAN_TEMP_C = (-0.5, 1.0, 4.5, 9.5, 14.0, 17.5, 19.5, 19.0, 14.5, 9.5, 4.5, 1.0)
#: Linke turbidity for central Europe, Jan..Dec (hazier in summer); explicit, so no h5py lookup.
CENTRAL_EUROPE_LINKE_TURBIDITY = (3.0, 3.2, 3.5, 3.9, 4.1, 4.3, 4.4, 4.3, 3.9, 3.5, 3.2, 3.0)
ALLOWED_STEP_MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)
REGIMES = ("clear", "mixed", "overcast")


def _row_stochastic(name: str, values: tuple[float, ...]) -> None:
    rows = np.reshape(values, (3, 3))
    sums = rows.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        fail(name, f"= {list(values)} must hold 3 rows (from clear, mixed, overcast) each summing to 1; "
                   f"row sums are {np.round(sums, 6).tolist()}")


@dataclasses.dataclass(frozen=True, slots=True)
class ClimateParams:
    """Outdoor temperature, sky and wind.

    ``*_winter``/``*_summer`` pairs hold mid-winter and mid-summer values (mid-January and
    mid-July in the northern hemisphere).

    Regime tuples are ordered (clear, mixed, overcast); transition matrices are row-major
    3×3, row = today's regime, column = tomorrow's.
    """

    monthly_mean_temp_c: tuple[float, ...] = bounded(-50.0, 50.0, "°C", default=PRAGUE_MONTHLY_MEAN_TEMP_C,
                                                   length=12)
    diurnal_amplitude_winter_k: float = bounded(0.0, 15.0, "K", default=2.0)
    diurnal_amplitude_summer_k: float = bounded(0.0, 15.0, "K", default=5.0)
    temp_max_solar_hour: float = bounded(0.0, 24.0, "h", default=15.0)
    weather_noise_winter_k: float = bounded(0.0, 15.0, "K", default=3.5)
    weather_noise_summer_k: float = bounded(0.0, 15.0, "K", default=2.5)
    weather_correlation_days: float = bounded(0.1, 30.0, "d", default=3.0)
    fast_noise_k: float = bounded(0.0, 5.0, "K", default=0.4)
    cloud_temp_effect_k: float = bounded(0.0, 20.0, "K", default=4.0)
    linke_turbidity: tuple[float, ...] = bounded(1.0, 10.0, default=CENTRAL_EUROPE_LINKE_TURBIDITY, length=12)
    regime_transitions_winter: tuple[float, ...] = bounded(
        0.0, 1.0, default=(0.55, 0.25, 0.20, 0.15, 0.45, 0.40, 0.07, 0.23, 0.70), length=9)
    regime_transitions_summer: tuple[float, ...] = bounded(
        0.0, 1.0, default=(0.60, 0.30, 0.10, 0.30, 0.50, 0.20, 0.20, 0.45, 0.35), length=9)
    regime_clear_sky_index: tuple[float, ...] = bounded(0.0, 1.2, default=(0.95, 0.68, 0.30), length=3)
    regime_daily_std: tuple[float, ...] = bounded(0.0, 0.5, default=(0.03, 0.10, 0.08), length=3)
    regime_intraday_std: tuple[float, ...] = bounded(0.0, 1.0, default=(0.03, 0.22, 0.08), length=3)
    intraday_correlation_minutes: float = bounded(1.0, 600.0, "min", default=30.0)
    max_clear_sky_index: float = bounded(1.0, 1.5, default=1.08)
    wind_mean_winter_m_s: float = bounded(0.0, 30.0, "m/s", default=4.0)
    wind_mean_summer_m_s: float = bounded(0.0, 30.0, "m/s", default=3.0)
    wind_variability: float = bounded(0.0, 2.0, default=0.4)

    def __post_init__(self) -> None:
        check_bounds(self)
        _row_stochastic("regime_transitions_winter", self.regime_transitions_winter)
        _row_stochastic("regime_transitions_summer", self.regime_transitions_summer)


#: Relative household load by local hour (weekday: away 08:30–15:30), normalised on use.
WEEKDAY_LOAD_PROFILE = (0.45, 0.40, 0.38, 0.38, 0.40, 0.55, 1.15, 1.45, 1.05, 0.65, 0.60, 0.60,
                        0.65, 0.60, 0.60, 0.75, 1.10, 1.50, 1.85, 1.90, 1.75, 1.45, 1.05, 0.70)
WEEKEND_LOAD_PROFILE = (0.50, 0.42, 0.40, 0.38, 0.38, 0.40, 0.50, 0.75, 1.15, 1.40, 1.35, 1.40,
                        1.55, 1.30, 1.05, 1.00, 1.10, 1.35, 1.70, 1.75, 1.60, 1.35, 1.05, 0.75)


@dataclasses.dataclass(frozen=True, slots=True)
class LoadParams:
    """Base load: household consumption without space heating and EV charging."""

    annual_energy_kwh: float = bounded(100.0, 50_000.0, "kWh", default=3500.0)
    standby_kw: float = bounded(0.0, 5.0, "kW", default=0.08)
    winter_extra_fraction: float = bounded(0.0, 0.9, default=0.15)
    weekday_profile: tuple[float, ...] = bounded(0.0, 100.0, default=WEEKDAY_LOAD_PROFILE, length=24)
    weekend_profile: tuple[float, ...] = bounded(0.0, 100.0, default=WEEKEND_LOAD_PROFILE, length=24)
    noise_std: float = bounded(0.0, 2.0, default=0.35)
    noise_correlation_minutes: float = bounded(1.0, 1440.0, "min", default=45.0)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.standby_kw * 8766.0 >= self.annual_energy_kwh:
            fail("standby_kw", f"= {self.standby_kw} alone exceeds annual_energy_kwh = "
                               f"{self.annual_energy_kwh}")
        if sum(self.weekday_profile) <= 0 or sum(self.weekend_profile) <= 0:
            fail("weekday_profile", "and weekend_profile must not be all zero")


@dataclasses.dataclass(frozen=True, slots=True)
class EvParams:
    """A commuter electric car. Times are local wall-clock hours; energies per trip [kWh]."""

    enabled: bool = True
    capacity_kwh: float = bounded(1.0, 300.0, "kWh", default=60.0)
    target_soc: float = bounded(0.05, 1.0, default=0.8)
    initial_soc: float = bounded(0.0, 1.0, default=0.6)
    min_arrival_soc: float = bounded(0.0, 1.0, default=0.05)
    departure_hour: float = bounded(0.0, 24.0, "h", default=7.25)
    departure_std_minutes: float = bounded(0.0, 180.0, "min", default=10.0)
    return_hour: float = bounded(0.0, 24.0, "h", default=17.5)
    return_std_minutes: float = bounded(0.0, 180.0, "min", default=30.0)
    commute_energy_summer_kwh: float = bounded(0.0, 200.0, "kWh", default=7.0)
    commute_energy_winter_kwh: float = bounded(0.0, 200.0, "kWh", default=14.0)
    commute_energy_std_kwh: float = bounded(0.0, 50.0, "kWh", default=2.0)
    commute_energy_min_kwh: float = bounded(0.0, 200.0, "kWh", default=6.0)
    commute_energy_max_kwh: float = bounded(0.0, 200.0, "kWh", default=18.0)
    weekend_trip_probability: float = bounded(0.0, 1.0, default=0.5)
    weekend_trip_start_hour: float = bounded(0.0, 24.0, "h", default=10.0)
    weekend_trip_start_std_minutes: float = bounded(0.0, 300.0, "min", default=90.0)
    weekend_trip_hours: float = bounded(0.5, 16.0, "h", default=4.0)
    weekend_trip_energy_kwh: float = bounded(0.0, 200.0, "kWh", default=8.0)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.departure_hour + 0.5 >= self.return_hour:
            fail("return_hour", f"= {self.return_hour} must be at least 30 min after departure_hour = "
                                f"{self.departure_hour}")
        if self.commute_energy_min_kwh > self.commute_energy_max_kwh:
            fail("commute_energy_min_kwh", f"= {self.commute_energy_min_kwh} exceeds "
                                           f"commute_energy_max_kwh = {self.commute_energy_max_kwh}")
        if self.commute_energy_max_kwh > self.capacity_kwh:
            fail("commute_energy_max_kwh", f"= {self.commute_energy_max_kwh} exceeds capacity_kwh = "
                                           f"{self.capacity_kwh}")


@dataclasses.dataclass(frozen=True, slots=True)
class ComfortScheduleParams:
    """Occupancy in local wall-clock hours. Friday and Saturday nights start ``weekend_night_hour``."""

    weekday_wake_hour: float = bounded(0.0, 24.0, "h", default=6.0)
    weekday_night_hour: float = bounded(0.0, 24.0, "h", default=22.0)
    weekend_wake_hour: float = bounded(0.0, 24.0, "h", default=8.0)
    weekend_night_hour: float = bounded(0.0, 24.0, "h", default=23.0)
    away_on_weekdays: bool = True
    away_start_hour: float = bounded(0.0, 24.0, "h", default=8.5)
    away_end_hour: float = bounded(0.0, 24.0, "h", default=15.5)

    def __post_init__(self) -> None:
        check_bounds(self)
        if not self.weekday_wake_hour < self.weekday_night_hour:
            fail("weekday_wake_hour", f"= {self.weekday_wake_hour} must be before weekday_night_hour = "
                                      f"{self.weekday_night_hour}")
        if not self.weekend_wake_hour < self.weekend_night_hour:
            fail("weekend_wake_hour", f"= {self.weekend_wake_hour} must be before weekend_night_hour = "
                                      f"{self.weekend_night_hour}")
        away = (self.away_start_hour, self.away_end_hour)
        if self.away_on_weekdays and not (
                self.weekday_wake_hour <= away[0] < away[1] <= self.weekday_night_hour):
            fail("away_start_hour", f"= {away[0]} .. away_end_hour = {away[1]} must lie within the weekday "
                                    f"waking hours [{self.weekday_wake_hour}, {self.weekday_night_hour}]")


@dataclasses.dataclass(frozen=True, slots=True)
class SyntheticSpec:
    """Everything that defines a synthetic scenario; same spec (and seed) → same scenario.

    The scenario runs from local midnight of ``start`` for ``days`` local calendar days
    (23/25-hour days included), on a ``step_minutes`` grid in absolute time.
    """

    name: str
    version: int = bounded(1, 1000, default=1)
    start: dt.date = dt.date(2024, 1, 15)
    days: int = bounded(1, 3660, "d", default=7)
    description: str = ""
    step_minutes: int = 15
    seed: int = bounded(0, 2**63 - 1, default=0)
    location: Location = PRAGUE
    tariff: Tariff = Tariff()
    climate: ClimateParams = ClimateParams()
    load: LoadParams = LoadParams()
    ev: EvParams = EvParams()
    comfort: ComfortScheduleParams = ComfortScheduleParams()
    forecast_errors: ForecastErrorParams = ForecastErrorParams()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            fail("name", f"= {self.name!r} must be a non-empty string")
        for name in ("version", "days", "seed", "step_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                fail(name, f"= {value!r} must be an integer")
        check_bounds(self)
        if not isinstance(self.start, dt.date) or isinstance(self.start, dt.datetime):
            fail("start", f"= {self.start!r} must be a date")
        if self.step_minutes not in ALLOWED_STEP_MINUTES:
            fail("step_minutes", f"= {self.step_minutes} is not one of {list(ALLOWED_STEP_MINUTES)}")

    @property
    def end(self) -> dt.date:
        """The local date at whose midnight the scenario ends (exclusive)."""
        return self.start + dt.timedelta(days=self.days)

    def to_dict(self) -> dict:
        """The spec as plain data (dates as ISO strings), e.g. for metadata."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))
