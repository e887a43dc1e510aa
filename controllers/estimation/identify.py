"""Grey-box identification of a room-level RC network from measurements (SciPy least squares).

The model is the twin's own (``twin.thermal``): per room an air node and, optionally, a mass
node; conductances air–outdoor, air–mass, mass–outdoor and between neighbouring rooms'
air nodes; heater power into the air node; solar gain (aperture × irradiance on the
room's window facade, the twin's transposition) into the mass node. Parameters are found by
``scipy.optimize.least_squares`` on the *multi-step simulation error*: the model is run open
loop over the whole training window from the measured air temperatures (initial mass
temperatures are fitted too) and the residuals are every room's simulated − measured air
temperature at every step. The result is a ``HouseConfig`` whose rooms the twin and the MPC
read like any other house.

Data: a history frame (see ``scenarios.historical``) with ``room_temp_c.<room>``,
``heater_power_kw.<room>`` (rooms without a heater column get none), ``outdoor_temp_c`` and
``ghi_w_m2``/``dni_w_m2``/``dhi_w_m2``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.signal import lfilter

from twin.config import Coupling, GridConfig, HouseConfig, Location, RoomConfig
from twin.errors import TwinError
from twin.pv import window_solar_gains_w
from twin.thermal import ModalThermal, build_matrices

ROOM_PREFIX = "room_temp_c."
HEATER_PREFIX = "heater_power_kw."
WEATHER = ("outdoor_temp_c", "ghi_w_m2", "dni_w_m2", "dhi_w_m2")
#: RoomConfig needs a heater; a room without one in the data gets this placeholder (never switched on).
PLACEHOLDER_HEATER_KW = 0.1


class IdentificationError(TwinError, ValueError):
    """The data or settings do not allow an identification."""


@dataclass(frozen=True)
class IdentifySettings:
    """What to identify. ``couplings`` None couples every pair of rooms (the fit decides how much)."""

    name: str = "identified-house"
    two_node: bool = True
    couplings: tuple[tuple[str, str], ...] | None = None
    window_azimuth_deg: Mapping[str, float] = field(default_factory=dict)
    max_evaluations: int = 60

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> IdentifySettings:
        """From a mapping's ``[historical.identify]`` table (unknown keys are an error)."""
        known = {"name", "two_node", "couplings", "window_azimuth_deg", "max_evaluations"}
        extra = sorted(set(table) - known)
        if extra:
            raise IdentificationError(f"identify.{extra[0]} is not a known key; known: {', '.join(sorted(known))}")
        couplings = table.get("couplings")
        if couplings is not None:
            if not all(isinstance(c, list | tuple) and len(c) == 2 for c in couplings):
                raise IdentificationError("identify.couplings must be a list of [room, room] pairs")
            couplings = tuple((str(a), str(b)) for a, b in couplings)
        return cls(name=str(table.get("name", cls.name)), two_node=bool(table.get("two_node", True)),
                   couplings=couplings, window_azimuth_deg=dict(table.get("window_azimuth_deg", {})),
                   max_evaluations=int(table.get("max_evaluations", 60)))


@dataclass(frozen=True)
class ThermalData:
    """Measurements on a regular grid, arrays (steps, rooms) in ``rooms`` order."""

    times: pd.DatetimeIndex
    step_s: float
    rooms: tuple[str, ...]
    air_c: np.ndarray
    heater_w: np.ndarray
    outdoor_c: np.ndarray
    facade_w_m2: np.ndarray  # irradiance on each room's window facade
    has_heater: np.ndarray  # bool per room
    max_heater_kw: np.ndarray

    def window(self, start: pd.Timestamp, end: pd.Timestamp) -> ThermalData:
        keep = (self.times >= start) & (self.times < end)
        if keep.sum() < 10:
            raise IdentificationError(f"the window {start} .. {end} holds {int(keep.sum())} steps of data")
        return ThermalData(self.times[keep], self.step_s, self.rooms, self.air_c[keep], self.heater_w[keep],
                           self.outdoor_c[keep], self.facade_w_m2[keep], self.has_heater, self.max_heater_kw)


def thermal_data(history: pd.DataFrame, location: Location, settings: IdentifySettings) -> ThermalData:
    """Pick the identification inputs out of a history frame (canonical columns)."""
    rooms = tuple(c[len(ROOM_PREFIX):] for c in history.columns if c.startswith(ROOM_PREFIX))
    if not rooms:
        raise IdentificationError(f"no {ROOM_PREFIX}<room> columns in the data")
    missing = [c for c in WEATHER if c not in history]
    if missing:
        raise IdentificationError(f"the data lack {missing} (outdoor temperature and irradiance)")
    step_s = float((history.index[1] - history.index[0]).total_seconds())
    heater = np.zeros((len(history), len(rooms)))
    has = np.zeros(len(rooms), bool)
    for j, room in enumerate(rooms):
        column = HEATER_PREFIX + room
        if column in history:
            heater[:, j] = history[column].to_numpy(dtype=float) * 1000.0
            has[j] = True
    unknown = [c[len(HEATER_PREFIX):] for c in history.columns if c.startswith(HEATER_PREFIX)
               and c[len(HEATER_PREFIX):] not in rooms]
    if unknown:
        raise IdentificationError(f"heater column(s) for room(s) {unknown} without a {ROOM_PREFIX} column")
    # One vertical window per room, the twin's transposition (unit aperture: the fit scales it).
    probes = [RoomConfig(name=room, heater_power_kw=1.0, air_capacitance_j_per_k=1e6, outdoor_conductance_w_per_k=1.0,
                         solar_aperture_m2=1.0, window_azimuth_deg=float(settings.window_azimuth_deg.get(room, 180.0)))
              for room in rooms]
    times = pd.DatetimeIndex(history.index)
    facade = window_solar_gains_w(times, step_s, history, location, probes)
    return ThermalData(times=times, step_s=step_s, rooms=rooms,
                       air_c=np.column_stack([history[ROOM_PREFIX + r].to_numpy(dtype=float) for r in rooms]),
                       heater_w=heater, outdoor_c=history["outdoor_temp_c"].to_numpy(dtype=float),
                       facade_w_m2=facade, has_heater=has, max_heater_kw=heater.max(axis=0) / 1000.0)


# --- the parameter vector ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layout:
    """Where each parameter sits in the optimiser's vector (log10 for positive ones)."""

    rooms: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    two_node: bool

    @property
    def per_room(self) -> int:
        return 6 if self.two_node else 3

    def size(self) -> int:
        n = len(self.rooms)
        return n * self.per_room + len(self.pairs) + (n if self.two_node else 0)

    def initial_and_bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # log10 C_air, log10 G_out, aperture [, log10 C_mass, log10 G_air_mass, log10 G_mass_out]
        room_x0 = [6.0, 1.3, 0.5] + ([7.5, 2.5, 1.0] if self.two_node else [])
        room_lo = [4.0, -2.0, 0.0] + ([5.0, 0.0, -2.0] if self.two_node else [])
        room_hi = [8.0, 3.5, 20.0] + ([10.0, 5.0, 3.5] if self.two_node else [])
        n = len(self.rooms)
        x0 = room_x0 * n + [1.3] * len(self.pairs) + ([0.0] * n if self.two_node else [])
        lo = room_lo * n + [-2.0] * len(self.pairs) + ([-8.0] * n if self.two_node else [])
        hi = room_hi * n + [3.5] * len(self.pairs) + ([8.0] * n if self.two_node else [])
        return np.array(x0), np.array(lo), np.array(hi)

    def rooms_and_couplings(self, x: np.ndarray, heater_kw: np.ndarray,
                            azimuths: Mapping[str, float]) -> tuple[list[RoomConfig], list[Coupling]]:
        rooms = []
        k = self.per_room
        for j, name in enumerate(self.rooms):
            p = x[j * k:(j + 1) * k]
            mass: dict[str, float] = {}
            if self.two_node:
                mass = {"mass_capacitance_j_per_k": float(10 ** p[3]),
                        "air_mass_conductance_w_per_k": float(10 ** p[4]),
                        "mass_outdoor_conductance_w_per_k": float(10 ** p[5])}
            rooms.append(RoomConfig(name=name, heater_power_kw=float(heater_kw[j]),
                                    air_capacitance_j_per_k=float(10 ** p[0]),
                                    outdoor_conductance_w_per_k=float(10 ** p[1]), solar_aperture_m2=float(p[2]),
                                    window_azimuth_deg=float(azimuths.get(name, 180.0)),
                                    mass_capacitance_j_per_k=mass.get("mass_capacitance_j_per_k"),
                                    air_mass_conductance_w_per_k=mass.get("air_mass_conductance_w_per_k"),
                                    mass_outdoor_conductance_w_per_k=mass.get("mass_outdoor_conductance_w_per_k", 0.0)))
        base = len(self.rooms) * k
        couplings = [Coupling(pair, float(10 ** x[base + i])) for i, pair in enumerate(self.pairs)]
        return rooms, couplings

    def mass_offsets(self, x: np.ndarray) -> np.ndarray:
        if not self.two_node:
            return np.zeros(0)
        return x[len(self.rooms) * self.per_room + len(self.pairs):]


def node_heat_w(rooms: list[RoomConfig], mass_node: np.ndarray, heater_w: np.ndarray,
                facade_w_m2: np.ndarray) -> np.ndarray:
    """Heat into every node [W], (steps, nodes): heaters into air nodes, sun into mass nodes (as the twin)."""
    n_rooms = len(rooms)
    heat = np.zeros((len(heater_w), n_rooms + int((mass_node >= 0).sum())))
    heat[:, :n_rooms] = heater_w
    apertures = np.array([r.solar_aperture_m2 for r in rooms])
    solar_node = np.where(mass_node >= 0, mass_node, np.arange(n_rooms))
    np.add.at(heat.T, solar_node, (facade_w_m2 * apertures).T)
    return heat


def simulate_rc(rooms: list[RoomConfig], couplings: list[Coupling], data: ThermalData,
                initial_nodes_c: np.ndarray) -> np.ndarray:
    """Node temperatures [°C] at every step (row k: at the start of step k), open loop, measured inputs.

    Exact for inputs constant over each step: in the twin's modal coordinates every mode is a
    first-order recursion ``z[k+1] = e^{-λ dt} z[k] + g f[k]``, run by ``scipy.signal.lfilter``.
    """
    m = build_matrices(rooms, couplings)
    modal = ModalThermal(m)
    decay, gain = modal.factors(data.step_s)
    forcing = modal.modal_input(data.outdoor_c, node_heat_w(rooms, m.mass_node, data.heater_w, data.facade_w_m2))
    z0 = modal.to_modes @ np.asarray(initial_nodes_c, dtype=float)
    n = len(data.times)
    z = np.empty((n, m.n_nodes))
    powers = decay[None, :] ** np.arange(n)[:, None]
    for i in range(m.n_nodes):
        # w[k] = decay w[k-1] + gain f[k]  ->  z[k+1] = decay^(k+1) z0 + w[k]
        w = lfilter([gain[i]], [1.0, -decay[i]], forcing[:, i])
        z[0, i] = z0[i]
        z[1:, i] = powers[1:, i] * z0[i] + w[:-1]
    temps: np.ndarray = z @ modal.to_temps.T
    return temps


@dataclass(frozen=True)
class IdentificationResult:
    """An identified house, with the fit's error on the training and test data [°C RMSE]."""

    house: HouseConfig
    train_rmse_c: float
    evaluations: int
    message: str


def identify(data: ThermalData, settings: IdentifySettings, location: Location,
             progress: Any = None) -> IdentificationResult:
    """Fit the RC network to ``data`` (the training window); return it as a ``HouseConfig``."""
    rooms = data.rooms
    pairs = settings.couplings if settings.couplings is not None else tuple(itertools.combinations(rooms, 2))
    for pair in pairs:
        for room in pair:
            if room not in rooms:
                raise IdentificationError(f"identify.couplings names unknown room {room!r}; rooms are {list(rooms)}")
    layout = _Layout(rooms, tuple(pairs), settings.two_node)
    heater_kw = np.where(data.has_heater, np.maximum(np.ceil(data.max_heater_kw * 10) / 10, PLACEHOLDER_HEATER_KW),
                         PLACEHOLDER_HEATER_KW)
    x0, lo, hi = layout.initial_and_bounds()
    n_rooms = len(rooms)
    counter = {"n": 0}

    def residuals(x: np.ndarray) -> np.ndarray:
        counter["n"] += 1
        if progress is not None:
            progress(counter["n"])
        room_cfgs, couplings = layout.rooms_and_couplings(x, heater_kw, settings.window_azimuth_deg)
        start = data.air_c[0]
        initial = np.concatenate([start, start + layout.mass_offsets(x)]) if settings.two_node else start
        simulated = simulate_rc(room_cfgs, couplings, data, initial)[:, :n_rooms]
        residual: np.ndarray = (simulated - data.air_c).ravel()
        return residual

    solution = least_squares(residuals, x0, bounds=(lo, hi), x_scale="jac", method="trf",
                             max_nfev=settings.max_evaluations, diff_step=1e-3)
    room_cfgs, couplings = layout.rooms_and_couplings(solution.x, heater_kw, settings.window_azimuth_deg)
    couplings = [c for c in couplings if c.conductance_w_per_k >= 0.1]  # negligible links only clutter the file
    house = HouseConfig(name=settings.name, location=location,
                        grid=GridConfig(import_limit_kw=max(10.0, float(heater_kw.sum()) * 1.5), export_limit_kw=10.0),
                        rooms=tuple(room_cfgs), couplings=tuple(couplings),
                        description=f"RC network identified from data ({len(rooms)} rooms, "
                                    f"{'air + mass' if settings.two_node else 'air'} nodes)")
    rmse = float(np.sqrt(np.mean(solution.fun ** 2)))
    return IdentificationResult(house, rmse, int(solution.nfev), str(solution.message))


def detect_phases(history: pd.DataFrame, threshold_kw: float = 0.05, smooth_hours: float = 6.0) -> pd.DataFrame:
    """Contiguous phases of an experiment from its heater power: which rooms heat, from when to when.

    A room "heats" while its heater's rolling mean over ``smooth_hours`` exceeds
    ``threshold_kw``. Returns one row per phase: ``start``, ``end``, ``heated`` (room names).
    """
    columns = [c for c in history.columns if c.startswith(HEATER_PREFIX)]
    if not columns:
        raise IdentificationError(f"no {HEATER_PREFIX}<room> columns to find phases from")
    window = max(1, round(smooth_hours * 3600 / (history.index[1] - history.index[0]).total_seconds()))
    on = history[columns].rolling(window, center=True, min_periods=1).mean() > threshold_kw
    labels = on.apply(lambda row: ",".join(c[len(HEATER_PREFIX):] for c in columns if row[c]), axis=1)
    change = labels != labels.shift()
    starts = history.index[change.to_numpy()]
    ends = list(starts[1:]) + [history.index[-1] + (history.index[1] - history.index[0])]
    phases = pd.DataFrame({"start": starts, "end": ends, "heated": labels[change].to_numpy()})
    phases["hours"] = (phases["end"] - phases["start"]).dt.total_seconds() / 3600
    phases["heated"] = phases["heated"].replace("", "(none: free float)")
    return phases
