"""How well an identified model predicts room temperatures: Kalman estimate, then open loop."""

from __future__ import annotations

import numpy as np
import pandas as pd

from controllers.estimation.identify import ThermalData, node_heat_w, simulate_rc
from controllers.estimation.kalman import KalmanSettings, ThermalStateEstimator
from twin.config import HouseConfig


def prediction_errors(house: HouseConfig, data: ThermalData, horizons_h: tuple[float, ...] = (1.0, 6.0, 24.0),
                      origin_every_h: float = 1.0, warmup_h: float = 24.0,
                      settings: KalmanSettings | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Room-temperature errors ``horizons_h`` ahead on ``data`` (a test window).

    A Kalman filter runs through the window on the measured air temperatures (it is never
    shown anything after the forecast origin). From every origin after ``warmup_h``
    (every ``origin_every_h``), the model runs open loop from the filter's estimate with the
    measured inputs (heater power, weather) and is compared with the measured air temperature
    ``h`` hours later. Returns ``(summary, rows)``: MAE/RMSE/bias per horizon for the model
    and for persistence (the temperature stays as it is), and every prediction.
    """
    rooms = list(house.rooms)
    couplings = list(house.couplings)
    estimator = ThermalStateEstimator(house, settings)
    mass_node = estimator.matrices.mass_node
    heat = node_heat_w(rooms, mass_node, data.heater_w, data.facade_w_m2)
    steps_per_h = 3600.0 / data.step_s
    horizon_steps = [max(1, round(h * steps_per_h)) for h in horizons_h]
    longest = max(horizon_steps)
    every = max(1, round(origin_every_h * steps_per_h))
    first = round(warmup_h * steps_per_h)
    estimator.reset(data.air_c[0])
    rows = []
    n = len(data.times)
    for k in range(n):
        if k > 0:
            estimator.predict(data.step_s, data.outdoor_c[k - 1], heat[k - 1])
            estimator.correct(data.air_c[k])
        if k < first or (k - first) % every or k + longest >= n:
            continue
        window = ThermalData(data.times[k:k + longest + 1], data.step_s, data.rooms, data.air_c[k:k + longest + 1],
                             data.heater_w[k:k + longest + 1], data.outdoor_c[k:k + longest + 1],
                             data.facade_w_m2[k:k + longest + 1], data.has_heater, data.max_heater_kw)
        predicted = simulate_rc(rooms, couplings, window, estimator.nodes_c)[:, : len(rooms)]
        for h, s in zip(horizons_h, horizon_steps, strict=True):
            for j, room in enumerate(data.rooms):
                rows.append((data.times[k], h, room, predicted[s, j], data.air_c[k + s, j], data.air_c[k, j]))
    frame = pd.DataFrame(rows, columns=["origin", "horizon_h", "room", "predicted_c", "measured_c", "persistence_c"])
    frame["error_c"] = frame["predicted_c"] - frame["measured_c"]
    frame["persistence_error_c"] = frame["persistence_c"] - frame["measured_c"]
    grouped = frame.groupby("horizon_h")
    summary = pd.DataFrame({
        "origins": grouped["origin"].nunique(),
        "mae_c": grouped["error_c"].apply(lambda e: e.abs().mean()),
        "rmse_c": grouped["error_c"].apply(lambda e: float(np.sqrt((e ** 2).mean()))),
        "bias_c": grouped["error_c"].mean(),
        "max_abs_c": grouped["error_c"].apply(lambda e: e.abs().max()),
        "persistence_mae_c": grouped["persistence_error_c"].apply(lambda e: e.abs().mean()),
    })
    return summary, frame
