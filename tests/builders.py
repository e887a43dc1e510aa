"""Small hand-made houses and scenarios for unit tests (independent of the synthetic generator)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from controllers.rl_policy import MlpPolicy
from twin.config import (
    BatteryConfig,
    Comfort,
    ComfortBand,
    Coupling,
    EvChargerConfig,
    GridConfig,
    HouseConfig,
    Location,
    PvArrayConfig,
    RoomConfig,
)
from twin.env import ActionDecoder, EnvConfig, ObservationEncoder
from twin.scenario import EvSession, PerfectForecasts, Scenario

PRAGUE = Location(latitude_deg=50.08, longitude_deg=14.42, timezone="Europe/Prague", altitude_m=250.0)


def one_node_room(name: str = "room", heater_kw: float = 2.0, c_j_per_k: float = 2e6, ua_w_per_k: float = 50.0,
                  band: tuple[float, float] = (20.0, 24.0)) -> RoomConfig:
    comfort = Comfort(day=ComfortBand(*band), night=ComfortBand(*band), away=ComfortBand(*band))
    return RoomConfig(name=name, heater_power_kw=heater_kw, air_capacitance_j_per_k=c_j_per_k,
                      outdoor_conductance_w_per_k=ua_w_per_k, comfort=comfort)


def small_house(n_rooms: int = 2, battery: bool = True, pv_kw: float = 5.0, ev: bool = True,
                two_node: bool = False) -> HouseConfig:
    rooms = []
    for j in range(n_rooms):
        if two_node:
            rooms.append(RoomConfig(name=f"r{j}", heater_power_kw=1.5, air_capacitance_j_per_k=3e5,
                                    outdoor_conductance_w_per_k=10.0, mass_capacitance_j_per_k=5e6,
                                    air_mass_conductance_w_per_k=150.0, mass_outdoor_conductance_w_per_k=15.0,
                                    solar_aperture_m2=2.0))
        else:
            rooms.append(one_node_room(f"r{j}"))
    couplings = tuple(Coupling((f"r{j}", f"r{j + 1}"), 20.0) for j in range(n_rooms - 1))
    return HouseConfig(
        name="small", location=PRAGUE, grid=GridConfig(import_limit_kw=20.0, export_limit_kw=5.0),
        rooms=tuple(rooms), couplings=couplings,
        battery=BatteryConfig(capacity_kwh=5.0, max_charge_kw=2.5, max_discharge_kw=2.5) if battery else None,
        pv_arrays=(PvArrayConfig(name="pv", peak_power_kw=pv_kw, tilt_deg=35, azimuth_deg=180,
                                 inverter_ac_kw=pv_kw),) if pv_kw > 0 else (),
        ev_charger=EvChargerConfig(phases=3) if ev else None,
    )


def simple_scenario(start: str = "2024-01-15", days: float = 2, step_min: int = 15, tz: str = "Europe/Prague",
                    seed: int = 0, outdoor_c: float = 0.0, sessions: bool = True, name: str = "simple",
                    negative_export: bool = False) -> Scenario:
    """Deterministic-shape weather with seeded noise; prices with a daily cycle."""
    rng = np.random.default_rng(seed)
    periods = int(days * 24 * 60 / step_min)
    idx = pd.date_range(pd.Timestamp(start, tz=tz), periods=periods, freq=f"{step_min}min")
    local_h = (idx.hour + idx.minute / 60).to_numpy()
    sun = np.clip(np.sin(np.pi * (local_h - 7) / 10), 0, None)
    ghi = 500 * sun * rng.uniform(0.5, 1.0, periods)
    data = pd.DataFrame({
        "outdoor_temp_c": outdoor_c + 4 * np.sin(2 * np.pi * (local_h - 9) / 24) + rng.normal(0, 0.5, periods),
        "ghi_w_m2": ghi, "dni_w_m2": ghi * 0.6, "dhi_w_m2": ghi * 0.4,
        "base_load_kw": 0.3 + 0.4 * rng.uniform(0, 1, periods),
        "import_price_per_kwh": 0.25 + 0.1 * np.sin(2 * np.pi * local_h / 24),
        "export_price_per_kwh": (-0.05 if negative_export else 0.05) + 0 * local_h,
        "comfort_mode": np.where((local_h >= 22) | (local_h < 6), 1, 0),
    }, index=idx)
    data.index.freq = idx.freq
    evs: tuple[EvSession, ...] = ()
    if sessions:
        t0 = idx[0]
        end = idx[-1] + idx.freq
        candidates = (EvSession(t0, t0 + pd.Timedelta(hours=7), 60.0, 0.3, 0.8),
                      EvSession(t0 + pd.Timedelta(hours=18), t0 + pd.Timedelta(hours=31), 60.0, 0.5, 0.8))
        evs = tuple(s for s in candidates if s.departure <= end)
    return Scenario(name, data, PerfectForecasts(), evs)


def random_policy(house: HouseConfig, config: EnvConfig, seed: int = 0,
                  hidden: int = 8) -> tuple[MlpPolicy, tuple, tuple]:
    """A random MLP policy for ``house`` with its feature and action names (for adapter and bench tests)."""
    features = ObservationEncoder(house, config.forecast_hours, config.normalize).names
    actions = ActionDecoder(house, config.decision_interval_s, config.heating).names
    rng = np.random.default_rng(seed)
    policy = MlpPolicy((rng.normal(0, 0.3, (hidden, len(features))).astype(np.float32),
                        rng.normal(0, 1.0, (len(actions), hidden)).astype(np.float32)),
                       (rng.normal(0, 0.1, hidden).astype(np.float32), rng.normal(0, 0.3, len(actions)).astype(
                           np.float32)))
    return policy, features, actions
