r"""Kalman filter over every thermal node (air and unmeasured mass) from room air sensors (filterpy).

The state is the twin's node vector (air nodes in room order, then mass nodes), the model the
house's RC network discretised exactly over each interval (``twin.thermal.discretize``), the
inputs outdoor temperature and the heat into each node over the interval, the measurements
the rooms' air temperatures. Mass temperatures are never measured; the filter infers them
from how the air responds.

Two ways to drive it:

* :meth:`ThermalStateEstimator.update` with successive :class:`~twin.contracts.Observation`\ s —
  what a controller does (an MPC starts each solve from the estimate):
  ``nodes_c = estimator.update(obs)``;
* :meth:`~ThermalStateEstimator.predict` / :meth:`~ThermalStateEstimator.correct` with explicit
  inputs, e.g. measured heater power (identification, replays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from filterpy.kalman import KalmanFilter

from twin.config import HouseConfig
from twin.contracts import Observation
from twin.errors import TwinError
from twin.pv import window_solar_gains_w
from twin.thermal import ThermalMatrices, build_matrices, discretize


@dataclass(frozen=True, slots=True)
class KalmanSettings:
    """Noise levels: sensor noise, and how much each node may drift from the model per hour."""

    sensor_std_c: float = 0.1
    air_drift_std_c_per_h: float = 0.3
    mass_drift_std_c_per_h: float = 0.05
    initial_mass_std_c: float = 2.0

    def __post_init__(self) -> None:
        for name in ("sensor_std_c", "air_drift_std_c_per_h", "mass_drift_std_c_per_h", "initial_mass_std_c"):
            value = getattr(self, name)
            if not 0.0 < value <= 20.0:
                raise ValueError(f"{name} = {value} is outside (0, 20]")


class ThermalStateEstimator:
    """Node temperatures of ``house``'s RC network from room air sensors. See the module docstring.

    Parameters
    ----------
    house : HouseConfig
        The model (e.g. identified by ``pems identify``).
    settings : KalmanSettings, optional
    """

    def __init__(self, house: HouseConfig, settings: KalmanSettings | None = None) -> None:
        if not house.rooms:
            raise TwinError(f"house {house.name!r} has no rooms to estimate")
        self.house = house
        self.settings = settings or KalmanSettings()
        self.matrices: ThermalMatrices = build_matrices(house.rooms, house.couplings)
        n, r = self.matrices.n_nodes, self.matrices.n_rooms
        self.n_nodes, self.n_rooms = n, r
        self._heater_w = np.array([room.heater_power_kw for room in house.rooms]) * 1000.0
        self._apertures = np.array([room.solar_aperture_m2 for room in house.rooms])
        self._shares = np.asarray(house.internal_gain_shares())
        self._solar_node = np.where(self.matrices.mass_node >= 0, self.matrices.mass_node, np.arange(r))
        self._cache: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.kf = KalmanFilter(dim_x=n, dim_z=r, dim_u=1 + n)
        self.kf.H = np.hstack([np.eye(r), np.zeros((r, n - r))])
        self.kf.R = np.eye(r) * self.settings.sensor_std_c ** 2
        self._initialized = False
        self._last: Observation | None = None

    # --- the filter ------------------------------------------------------------------------------------------

    def reset(self, room_temp_c: np.ndarray, mass_temp_c: np.ndarray | None = None) -> None:
        """Start from measured air temperatures; mass nodes from ``mass_temp_c`` or their room's air."""
        air = np.asarray(room_temp_c, dtype=float)
        x = np.empty(self.n_nodes)
        x[: self.n_rooms] = air
        for j, m in enumerate(self.matrices.mass_node):
            if m >= 0:
                x[m] = air[j] if mass_temp_c is None else mass_temp_c[m - self.n_rooms]
        self.kf.x = x
        p = np.full(self.n_nodes, self.settings.initial_mass_std_c ** 2)
        p[: self.n_rooms] = self.settings.sensor_std_c ** 2
        self.kf.P = np.diag(p)
        self._initialized = True
        self._last = None

    def _model(self, dt_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hit = self._cache.get(dt_s)
        if hit is None:
            phi, gamma_out, gamma = discretize(self.matrices, dt_s)
            hours = dt_s / 3600.0
            q = np.full(self.n_nodes, (self.settings.mass_drift_std_c_per_h ** 2) * hours)
            q[: self.n_rooms] = (self.settings.air_drift_std_c_per_h ** 2) * hours
            hit = (phi, np.column_stack([gamma_out, gamma]), np.diag(q))
            self._cache[dt_s] = hit
        return hit

    def predict(self, dt_s: float, outdoor_temp_c: float, node_heat_w: np.ndarray) -> np.ndarray:
        """Advance the estimate by ``dt_s`` with inputs held constant; returns the prior node temperatures."""
        if not self._initialized:
            raise TwinError("reset() the estimator with measured temperatures first")
        phi, b, q = self._model(float(dt_s))
        self.kf.predict(u=np.concatenate([[outdoor_temp_c], node_heat_w]), B=b, F=phi, Q=q)
        x: np.ndarray = self.kf.x.copy()
        return x

    def correct(self, room_temp_c: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Fold in air temperature readings (``valid`` False: that sensor is skipped); returns the estimate."""
        z = np.asarray(room_temp_c, dtype=float)
        ok = np.isfinite(z) if valid is None else (np.asarray(valid, bool) & np.isfinite(z))
        if ok.all():
            self.kf.update(z)
        elif ok.any():
            h = self.kf.H[ok]
            self.kf.update(z[ok], R=self.kf.R[np.ix_(ok, ok)], H=h)
        x: np.ndarray = self.kf.x.copy()
        return x

    @property
    def nodes_c(self) -> np.ndarray:
        """The current estimate: air nodes in room order, then mass nodes [°C]."""
        x: np.ndarray = self.kf.x.copy()
        return x

    @property
    def std_c(self) -> np.ndarray:
        """Standard deviation of each node's estimate [K]."""
        std: np.ndarray = np.sqrt(np.clip(np.diag(self.kf.P), 0.0, None))
        return std

    # --- driven by observations ----------------------------------------------------------------------------

    def node_heat_w(self, relay_on: np.ndarray, base_load_kw: float, solar_w: np.ndarray) -> np.ndarray:
        """Heat into every node [W]: heaters on, internal gains (base load split by room), sun."""
        heat = np.zeros(self.n_nodes)
        heat[: self.n_rooms] = self._heater_w * np.asarray(relay_on, float) + base_load_kw * 1000.0 * self._shares
        np.add.at(heat, self._solar_node, solar_w)
        return heat

    def _solar_w(self, obs: Observation) -> np.ndarray:
        """Window gains during the interval starting at ``obs``, from its lead-0 irradiance forecast."""
        if not (self._apertures > 0).any():
            return np.zeros(self.n_rooms)
        fc = obs.forecast
        weather = pd.DataFrame({"ghi_w_m2": fc.ghi_w_m2[:1], "dni_w_m2": fc.dni_w_m2[:1], "dhi_w_m2": fc.dhi_w_m2[:1],
                                "outdoor_temp_c": [obs.outdoor_temp_c]}, index=fc.times[:1])
        gains: np.ndarray = window_solar_gains_w(fc.times[:1], fc.step_s, weather, self.house.location,
                                                 self.house.rooms)[0]
        return gains

    def update(self, obs: Observation) -> np.ndarray:
        """Predict from the previous observation to ``obs``, correct with its room sensors.

        Over the interval the relays are taken as ``obs.relay_on`` (what the last command set
        and the plant reports now), outdoor temperature, base load and sun as at the previous
        observation. The first call initialises the filter from ``obs.room_temp_c``. Sensors
        named stale (``"room_temp_c"`` in ``obs.stale``) are not used. Returns every node's
        temperature [°C]: air nodes in room order, then mass nodes (``matrices.mass_node``).
        """
        if len(obs.room_temp_c) != self.n_rooms:
            raise TwinError(f"observation has {len(obs.room_temp_c)} rooms, the model {self.n_rooms}")
        if not self._initialized or self._last is None:
            if not self._initialized:
                self.reset(obs.room_temp_c)
            self._last = obs
            return self.nodes_c
        last = self._last
        dt = obs.time.timestamp() - last.time.timestamp()
        if dt > 0:
            heat = self.node_heat_w(obs.relay_on, last.base_load_kw, self._solar_w(last))
            self.predict(dt, last.outdoor_temp_c, heat)
        valid = None if "room_temp_c" not in obs.stale else np.zeros(self.n_rooms, bool)
        self._last = obs
        return self.correct(obs.room_temp_c, valid)
