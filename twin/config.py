"""House configuration: frozen dataclasses, validated on construction, parsed from TOML.

Every numeric field declares its allowed range and unit once, in its metadata (the single
source of truth, like PyPSA's attribute tables); ``__post_init__`` checks them, so a
``HouseConfig`` that exists is a valid one. Thermal parameters are SI (J/K, W/K), powers kW,
energies kWh, fractions 0..1.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twin.errors import ConfigError
from twin.params import bounded, build_table, check_bounds, fail

ROOM_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True, slots=True)
class Location:
    """Where the house stands; ``timezone`` is an IANA name (e.g. ``Europe/Prague``)."""

    latitude_deg: float = bounded(-90.0, 90.0, "deg")
    longitude_deg: float = bounded(-180.0, 180.0, "deg")
    timezone: str = "UTC"
    altitude_m: float = bounded(-500.0, 9000.0, "m", default=0.0)

    def __post_init__(self) -> None:
        check_bounds(self)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            fail("timezone", f"= {self.timezone!r} is not a known IANA time zone")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class ComfortBand:
    """Acceptable air temperature range [°C]. TOML: ``day = [20.5, 24.0]``."""

    lower_c: float = bounded(5.0, 35.0, "°C")
    upper_c: float = bounded(5.0, 40.0, "°C")

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.lower_c >= self.upper_c:
            fail("lower_c", f"= {self.lower_c} must be below upper_c = {self.upper_c}")

    @classmethod
    def _from_toml(cls, value: Any, path: str) -> ComfortBand:
        if isinstance(value, list | tuple) and len(value) == 2:
            band: ComfortBand = build_table(cls, {"lower_c": value[0], "upper_c": value[1]}, path)
            return band
        if isinstance(value, Mapping):
            band = build_table(cls, value, path)
            return band
        raise ConfigError(f"{path} = {value!r} must be [lower_c, upper_c]", path)


class ComfortMode:
    """Occupancy modes a scenario's ``comfort_mode`` column takes (integers, for speed)."""

    DAY = 0
    NIGHT = 1
    AWAY = 2
    NAMES = ("day", "night", "away")


@dataclass(frozen=True, slots=True)
class Comfort:
    """Comfort band per occupancy mode."""

    day: ComfortBand = ComfortBand(20.0, 26.0)
    night: ComfortBand = ComfortBand(18.0, 26.0)
    away: ComfortBand = ComfortBand(16.0, 28.0)

    def bands(self) -> tuple[ComfortBand, ComfortBand, ComfortBand]:
        """Bands indexed by :class:`ComfortMode`."""
        return (self.day, self.night, self.away)


@dataclass(frozen=True, slots=True)
class RoomConfig:
    """One heated room: an air node, optionally a mass node, and an electric heater on a relay.

    Heater and internal gains enter the air node; solar gains enter the mass node when there
    is one (else the air node). ``solar_aperture_m2`` is window area × solar heat gain
    coefficient, facing ``window_azimuth_deg`` (180 = south). ``window_ventilation_w_per_k`` is
    the extra air-to-outdoor conductance while the occupants air the house (see ``OccupantConfig``).
    """

    name: str
    heater_power_kw: float = bounded(0.1, 10.0, "kW")
    air_capacitance_j_per_k: float = bounded(1e4, 1e8, "J/K")
    outdoor_conductance_w_per_k: float = bounded(0.0, 1e4, "W/K")
    mass_capacitance_j_per_k: float | None = bounded(1e5, 1e10, "J/K", default=None)
    air_mass_conductance_w_per_k: float | None = bounded(1.0, 1e5, "W/K", default=None)
    mass_outdoor_conductance_w_per_k: float = bounded(0.0, 1e4, "W/K", default=0.0)
    window_ventilation_w_per_k: float = bounded(0.0, 1e4, "W/K", default=0.0)
    solar_aperture_m2: float = bounded(0.0, 100.0, "m2", default=0.0)
    window_azimuth_deg: float = bounded(0.0, 360.0, "deg", default=180.0)
    floor_area_m2: float = bounded(1.0, 1000.0, "m2", default=15.0)
    internal_gain_share: float | None = bounded(0.0, 1.0, default=None)
    comfort: Comfort = Comfort()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not ROOM_NAME_PATTERN.match(self.name):
            fail("name", f"= {self.name!r} must match {ROOM_NAME_PATTERN.pattern} (used in MQTT topics)")
        check_bounds(self)
        has_mass = self.mass_capacitance_j_per_k is not None
        if has_mass and self.air_mass_conductance_w_per_k is None:
            fail("air_mass_conductance_w_per_k", "is required when mass_capacitance_j_per_k is given")
        if not has_mass and self.air_mass_conductance_w_per_k is not None:
            fail("mass_capacitance_j_per_k", "is required when air_mass_conductance_w_per_k is given")
        if not has_mass and self.mass_outdoor_conductance_w_per_k > 0:
            fail("mass_outdoor_conductance_w_per_k", "needs a mass node (mass_capacitance_j_per_k)")

    @property
    def has_mass(self) -> bool:
        return self.mass_capacitance_j_per_k is not None


@dataclass(frozen=True, slots=True)
class Coupling:
    """Heat conductance between two neighbouring rooms' air nodes."""

    rooms: tuple[str, str]
    conductance_w_per_k: float = bounded(0.0, 1e4, "W/K", lo_open=True)

    def __post_init__(self) -> None:
        if len(self.rooms) != 2:
            fail("rooms", f"= {list(self.rooms)!r} must name exactly two rooms")
        if self.rooms[0] == self.rooms[1]:
            fail("rooms", f"= {list(self.rooms)!r} couples a room with itself")
        check_bounds(self)


@dataclass(frozen=True, slots=True)
class BatteryConfig:
    """Home battery behind a hybrid inverter. Power limits are on the AC side."""

    capacity_kwh: float = bounded(0.1, 500.0, "kWh")
    max_charge_kw: float = bounded(0.1, 200.0, "kW")
    max_discharge_kw: float = bounded(0.1, 200.0, "kW")
    charge_efficiency: float = bounded(0.5, 1.0, default=0.95, lo_open=True)
    discharge_efficiency: float = bounded(0.5, 1.0, default=0.95, lo_open=True)
    soc_min: float = bounded(0.0, 1.0, default=0.1)
    soc_max: float = bounded(0.0, 1.0, default=0.9)
    initial_soc: float = bounded(0.0, 1.0, default=0.5)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.soc_min >= self.soc_max:
            fail("soc_min", f"= {self.soc_min} must be below soc_max = {self.soc_max}")
        if not self.soc_min <= self.initial_soc <= self.soc_max:
            fail("initial_soc", f"= {self.initial_soc} must lie in the SOC window [{self.soc_min}, {self.soc_max}]")


PV_MOUNTS = ("close_mount_glass_glass", "open_rack_glass_glass", "open_rack_glass_polymer",
             "insulated_back_glass_polymer")


@dataclass(frozen=True, slots=True)
class PvArrayConfig:
    """A PV array with its share of inverter, modelled with pvlib's PVWatts chain."""

    name: str
    peak_power_kw: float = bounded(0.01, 10_000.0, "kWp")
    tilt_deg: float = bounded(0.0, 90.0, "deg")
    azimuth_deg: float = bounded(0.0, 360.0, "deg")
    inverter_ac_kw: float = bounded(0.01, 10_000.0, "kW")
    gamma_pdc_per_c: float = bounded(-0.02, 0.0, "1/°C", default=-0.0037)
    system_loss_fraction: float = bounded(0.0, 0.5, default=0.14)
    inverter_nominal_efficiency: float = bounded(0.5, 1.0, default=0.96, lo_open=True)
    albedo: float = bounded(0.0, 1.0, default=0.2)
    mount: str = "close_mount_glass_glass"

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.mount not in PV_MOUNTS:
            fail("mount", f"= {self.mount!r} is not one of {', '.join(PV_MOUNTS)}")


@dataclass(frozen=True, slots=True)
class EvChargerConfig:
    """Wallbox: charging current range per phase; power = phases × voltage × current."""

    phases: int = bounded(1, 3)
    min_current_a: float = bounded(1.0, 80.0, "A", default=6.0)
    max_current_a: float = bounded(1.0, 80.0, "A", default=16.0)
    voltage_v: float = bounded(100.0, 400.0, "V", default=230.0)
    efficiency: float = bounded(0.5, 1.0, default=0.92, lo_open=True)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.phases not in (1, 3):
            fail("phases", f"= {self.phases!r} must be 1 or 3")
        if self.min_current_a > self.max_current_a:
            fail("min_current_a", f"= {self.min_current_a} exceeds max_current_a = {self.max_current_a}")

    @property
    def min_power_kw(self) -> float:
        return self.phases * self.voltage_v * self.min_current_a / 1000.0

    @property
    def max_power_kw(self) -> float:
        return self.phases * self.voltage_v * self.max_current_a / 1000.0

    def current_a(self, power_kw: float) -> float:
        """Per-phase current [A] that draws ``power_kw``."""
        return power_kw * 1000.0 / (self.phases * self.voltage_v)


@dataclass(frozen=True, slots=True)
class GridConfig:
    """Grid connection limits: above them import is a violation and export is curtailed."""

    import_limit_kw: float = bounded(0.5, 10_000.0, "kW")
    export_limit_kw: float = bounded(0.0, 10_000.0, "kW")


@dataclass(frozen=True, slots=True)
class LocalThermostatConfig:
    """Each room's own thermostat, which rules its relay whenever no valid command does.

    It heats when the air falls below ``comfort lower + offset_c - hysteresis_c / 2`` and
    stops above ``comfort lower + offset_c + hysteresis_c / 2``, checked every ``period_s``.
    """

    offset_c: float = bounded(0.0, 5.0, "K", default=0.5)
    hysteresis_c: float = bounded(0.0, 5.0, "K", default=0.5)
    period_s: float = bounded(1.0, 3600.0, "s", default=60.0)


@dataclass(frozen=True, slots=True)
class OccupantConfig:
    """What the family does about overheating, checked at every scenario data point.

    Windows: the house is aired (every room's ``window_ventilation_w_per_k`` added) while the
    mean air temperature is above ``window_open_above_c`` and outdoors is at least
    ``window_min_outdoor_delta_c`` cooler; closed again below ``window_close_below_c`` or when
    outdoors is no longer cooler. Blinds: a room's external blinds go down (solar gain ×
    ``blinds_solar_factor``) when its air is within ``blinds_down_margin_c`` of its comfort
    upper bound, and up again once it is ``blinds_up_margin_c`` below it.
    """

    window_open_above_c: float = bounded(15.0, 40.0, "°C", default=24.5)
    window_close_below_c: float = bounded(10.0, 40.0, "°C", default=22.5)
    window_min_outdoor_delta_c: float = bounded(0.0, 20.0, "K", default=2.0)
    blinds_down_margin_c: float = bounded(-5.0, 10.0, "K", default=1.0)
    blinds_up_margin_c: float = bounded(0.0, 15.0, "K", default=3.0)
    blinds_solar_factor: float = bounded(0.0, 1.0, default=0.25)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.window_close_below_c >= self.window_open_above_c:
            fail("window_close_below_c", f"= {self.window_close_below_c} must be below window_open_above_c "
                                          f"= {self.window_open_above_c}")
        if self.blinds_up_margin_c <= self.blinds_down_margin_c:
            fail("blinds_up_margin_c", f"= {self.blinds_up_margin_c} must exceed blinds_down_margin_c "
                                        f"= {self.blinds_down_margin_c}")


@dataclass(frozen=True, slots=True)
class SafetyConfig:
    """Envelopes no command may leave, enforced by ``twin.safety.SafetyLayer`` (docs/failsafe.md F6, F14)."""

    relay_min_on_s: float = bounded(0.0, 7200.0, "s", default=300.0)
    relay_min_off_s: float = bounded(0.0, 7200.0, "s", default=300.0)
    relay_max_switches_per_hour: int = bounded(1, 120, default=6)
    battery_min_mode_interval_s: float = bounded(0.0, 3600.0, "s", default=300.0)
    ev_min_change_interval_s: float = bounded(0.0, 3600.0, "s", default=30.0)
    max_lease_s: float = bounded(10.0, 86400.0, "s", default=3600.0)

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True, slots=True)
class HouseConfig:
    """Everything physical about a house. Absent devices are ``None`` / empty."""

    name: str
    location: Location
    grid: GridConfig
    rooms: tuple[RoomConfig, ...] = ()
    couplings: tuple[Coupling, ...] = ()
    battery: BatteryConfig | None = None
    pv_arrays: tuple[PvArrayConfig, ...] = ()
    ev_charger: EvChargerConfig | None = None
    thermostat: LocalThermostatConfig = LocalThermostatConfig()
    occupants: OccupantConfig = OccupantConfig()
    safety: SafetyConfig = SafetyConfig()
    description: str = ""

    def __post_init__(self) -> None:
        names = [r.name for r in self.rooms]
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                fail(f"rooms[{i}].name", f"= {name!r} is used by another room")
            seen.add(name)
        pairs: set[frozenset[str]] = set()
        for i, c in enumerate(self.couplings):
            for name in c.rooms:
                if name not in seen:
                    fail(f"couplings[{i}].rooms", f"names unknown room {name!r}; rooms are {names}")
            pair = frozenset(c.rooms)
            if pair in pairs:
                fail(f"couplings[{i}].rooms", f"= {list(c.rooms)!r} duplicates an earlier coupling")
            pairs.add(pair)
        shares = [r.internal_gain_share for r in self.rooms if r.internal_gain_share is not None]
        if sum(shares) > 1.0 + 1e-9:
            fail("rooms[*].internal_gain_share", f"sum to {sum(shares):.3f}, more than 1")
        self._check_heat_paths()
        array_names = [a.name for a in self.pv_arrays]
        if len(set(array_names)) != len(array_names):
            fail("pv_arrays[*].name", f"= {array_names} are not unique")

    def _check_heat_paths(self) -> None:
        """Every room must lose heat to outdoors somehow, or its temperature has no bound."""
        linked = {r.name for r in self.rooms
                  if r.outdoor_conductance_w_per_k > 0 or r.mass_outdoor_conductance_w_per_k > 0}
        changed = True
        while changed:
            changed = False
            for c in self.couplings:
                a, b = c.rooms
                if (a in linked) != (b in linked):
                    linked.update(c.rooms)
                    changed = True
        for i, r in enumerate(self.rooms):
            if r.name not in linked:
                fail(f"rooms[{i}]", f"({r.name!r}) has no heat path to outdoors (all its conductances are 0)")

    @property
    def room_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rooms)

    def room_index(self, name: str) -> int:
        for i, r in enumerate(self.rooms):
            if r.name == name:
                return i
        raise ConfigError(f"unknown room {name!r}; rooms are {list(self.room_names)}", "rooms")

    @property
    def pv_peak_kw(self) -> float:
        return sum(a.peak_power_kw for a in self.pv_arrays)

    def internal_gain_shares(self) -> tuple[float, ...]:
        """Share of the base load dissipated in each room; unset shares split the rest evenly."""
        given = sum(r.internal_gain_share or 0.0 for r in self.rooms)
        unset = [r for r in self.rooms if r.internal_gain_share is None]
        rest = max(0.0, 1.0 - given) / len(unset) if unset else 0.0
        return tuple(r.internal_gain_share if r.internal_gain_share is not None else rest for r in self.rooms)


# --- parsing ---------------------------------------------------------------------------------------

def house_from_dict(data: Mapping[str, Any]) -> HouseConfig:
    """Build a validated :class:`HouseConfig` from a parsed TOML document."""
    house: HouseConfig = build_table(HouseConfig, data, "")
    return house


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed TOML file ``path`` (a ``what``, for the message); unreadable or malformed → ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


def load_house(path: str | Path) -> HouseConfig:
    """Read a house TOML file; every problem is a :class:`ConfigError` naming file and field."""
    path = Path(path)
    data = read_toml(path, "house file")
    try:
        return house_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}", exc.field) from None


def reference_house() -> HouseConfig:
    """The bundled house mirroring the real one (Prague, 16 rooms, 10 kWp, 10 kWh, 11 kW EV)."""
    text = resources.files("twin").joinpath("data/reference_house.toml").read_text(encoding="utf-8")
    return house_from_dict(tomllib.loads(text))
