"""Where a solve starts from: the temperature of every thermal node, most of them not measured.

Room air temperatures are observed; the mass temperatures of 2-node rooms are not. A
:class:`StateEstimator` supplies all of them and is called at every decision, so it can follow
the house between solves (``MpcSettings.estimator`` picks one; :func:`make_estimator`):

- :class:`AirAsMass`: each mass node at its room's air temperature (no memory).
- :class:`ModelObserver` (default): runs the MPC's own RC model alongside the house — from one
  decision to the next with the heaters as they were, the observed outdoor temperature and the
  forecast's gains — then resets the air nodes to their readings and corrects each mass node by
  ``gain`` × its room's air prediction error (a Luenberger observer with a diagonal gain).
- :class:`KalmanEstimator`: the filterpy Kalman filter of ``controllers.estimation`` over every node
  of the house's RC network (its own model: sun from the forecast's irradiance, internal gains from
  the base load), with each node's uncertainty; stale room sensors are skipped.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from controllers.mpc.rc_model import RcModel
from twin.config import HouseConfig
from twin.contracts import Observation


@runtime_checkable
class StateEstimator(Protocol):
    """Where each solve starts: node temperatures from the readings (air measured, mass estimated)."""

    def reset(self) -> None: ...

    def update(self, obs: Observation, rc: RcModel, gains_w: np.ndarray) -> np.ndarray:
        """Node temperatures [°C] now.

        ``gains_w`` is the solar + internal heat per node [W] of the interval that just ended
        (the best available estimate).
        """
        ...


def _air_as_mass(obs: Observation, rc: RcModel) -> np.ndarray:
    temps = np.empty(rc.n_nodes)
    temps[: rc.n_rooms] = obs.room_temp_c
    for room, node in enumerate(rc.mass_node):
        if node >= 0:
            temps[node] = obs.room_temp_c[room]
    return temps


class AirAsMass:
    """Every mass node at its room's air temperature."""

    def reset(self) -> None:
        pass

    def update(self, obs: Observation, rc: RcModel, gains_w: np.ndarray) -> np.ndarray:
        return _air_as_mass(obs, rc)


class ModelObserver:
    """The RC model run alongside the house, corrected by the air readings."""

    def __init__(self, gain: float = 0.5) -> None:
        if not 0.0 <= gain <= 1.0:
            raise ValueError(f"observer gain = {gain} is outside [0, 1]")
        self.gain = gain
        self.reset()

    def reset(self) -> None:
        self._temps: np.ndarray | None = None
        self._time_s: float | None = None
        self._outdoor_c = 0.0

    def update(self, obs: Observation, rc: RcModel, gains_w: np.ndarray) -> np.ndarray:
        now = obs.time.timestamp()
        air = np.asarray(obs.room_temp_c, dtype=float)
        if self._temps is None or self._time_s is None or now <= self._time_s:
            temps = _air_as_mass(obs, rc)
        else:
            heat = rc.heater_w(np.asarray(obs.relay_on, dtype=float)) + np.asarray(gains_w, dtype=float)
            predicted = rc.advance(self._temps, now - self._time_s, self._outdoor_c, heat)
            error = air - predicted[: rc.n_rooms]
            temps = predicted
            temps[: rc.n_rooms] = air
            for room, node in enumerate(rc.mass_node):
                if node >= 0:
                    temps[node] += self.gain * error[room]
        self._temps = temps
        self._time_s = now
        self._outdoor_c = float(obs.outdoor_temp_c)
        return temps.copy()


class KalmanEstimator:
    """The Kalman filter of ``controllers.estimation`` behind the MPC's estimator protocol."""

    def __init__(self, house: HouseConfig) -> None:
        self.house = house
        self.reset()

    def reset(self) -> None:
        from controllers.estimation.kalman import ThermalStateEstimator  # filterpy: only when chosen

        self.filter = ThermalStateEstimator(self.house)

    def update(self, obs: Observation, rc: RcModel, gains_w: np.ndarray) -> np.ndarray:
        if rc.n_nodes != self.filter.n_nodes:
            raise ValueError(f"the MPC's model has {rc.n_nodes} nodes, the Kalman filter's {self.filter.n_nodes}")
        return self.filter.update(obs)


def make_estimator(name: str, house: HouseConfig, observer_gain: float) -> StateEstimator:
    """The estimator ``MpcSettings.estimator`` names."""
    if name == "kalman":
        return KalmanEstimator(house)
    if name == "air":
        return AirAsMass()
    return ModelObserver(observer_gain)
