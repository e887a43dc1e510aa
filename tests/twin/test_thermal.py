"""RC network: analytic 1-node response, 2-node network against solve_ivp, modal form = expm."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from builders import PRAGUE, one_node_room
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.integrate import solve_ivp

from twin.config import Coupling, GridConfig, HouseConfig, RoomConfig
from twin.contracts import Command
from twin.house import SimHouse
from twin.scenario import PerfectForecasts, Scenario
from twin.thermal import ModalThermal, build_matrices, discretize


def constant_scenario(hours: float, outdoor_c: float, start_c: float, step_min: int = 15) -> Scenario:
    periods = int(hours * 60 / step_min)
    idx = pd.date_range(pd.Timestamp("2024-01-10", tz="Europe/Prague"), periods=periods, freq=f"{step_min}min")
    data = pd.DataFrame({"outdoor_temp_c": outdoor_c, "pv_power_kw": 0.0, "base_load_kw": 0.0,
                         "import_price_per_kwh": 0.2, "export_price_per_kwh": 0.0, "comfort_mode": 0}, index=idx)
    data.index.freq = idx.freq
    return Scenario("constant", data, PerfectForecasts(), initial_room_temp_c=start_c)


def test_one_node_step_response_matches_analytic_solution():
    # T(t) = T∞ + (T0 − T∞)·exp(−t / RC), with T∞ = T_out + Q / UA (heater on throughout).
    c, ua, q_w, t_out, t0 = 3e6, 60.0, 2000.0, -5.0, 12.0
    room = one_node_room("solo", heater_kw=q_w / 1000, c_j_per_k=c, ua_w_per_k=ua)
    house = HouseConfig(name="solo", location=PRAGUE, grid=GridConfig(import_limit_kw=50, export_limit_kw=10),
                        rooms=(room,))
    scenario = constant_scenario(hours=48, outdoor_c=t_out, start_c=t0)
    twin = SimHouse(house, scenario)
    twin.apply(Command(until=scenario.end.to_pydatetime() + timedelta(hours=1), relay_on=(True,)))
    t_inf = t_out + q_w / ua
    for hours in (0.25, 1.0, 7.3, 24.0, 47.9):
        twin.advance_to(hours * 3600)
        expected = t_inf + (t0 - t_inf) * np.exp(-hours * 3600 / (c / ua))
        assert twin.node_temps_c()[0] == pytest.approx(expected, abs=1e-9)


def two_room_two_node() -> tuple[RoomConfig, ...]:
    return (
        RoomConfig(name="a", heater_power_kw=2.0, air_capacitance_j_per_k=4e5, outdoor_conductance_w_per_k=12.0,
                   mass_capacitance_j_per_k=6e6, air_mass_conductance_w_per_k=200.0,
                   mass_outdoor_conductance_w_per_k=20.0),
        RoomConfig(name="b", heater_power_kw=1.0, air_capacitance_j_per_k=2e5, outdoor_conductance_w_per_k=6.0,
                   mass_capacitance_j_per_k=3e6, air_mass_conductance_w_per_k=100.0,
                   mass_outdoor_conductance_w_per_k=8.0),
    )


def test_two_node_network_matches_solve_ivp():
    rooms = two_room_two_node()
    couplings = (Coupling(("a", "b"), 25.0),)
    m = build_matrices(rooms, couplings)
    t_out, q = 2.0, np.array([2000.0, 0.0, 0.0, 0.0])  # heater in room a's air node only
    x0 = np.array([18.0, 21.0, 17.0, 19.5])

    def rhs(_t, x):
        return m.a @ x + m.b_out * t_out + m.c_inv * q

    horizon_s = 36 * 3600.0
    ref = solve_ivp(rhs, (0, horizon_s), x0, method="LSODA", rtol=1e-10, atol=1e-10, dense_output=True)
    modal = ModalThermal(m)
    z = modal.to_modes @ x0
    forcing = modal.modal_input(t_out, q)
    t = 0.0
    for dt in (60.0, 300.0, 900.0, 3600.0, 7.5, 12345.0):
        z = modal.step(z, forcing, dt)
        t += dt
        assert_allclose(modal.to_temps @ z, ref.sol(t), atol=1e-6)
    # and through the SimHouse: same network, same inputs
    house = HouseConfig(name="ab", location=PRAGUE, grid=GridConfig(import_limit_kw=50, export_limit_kw=10),
                        rooms=rooms, couplings=couplings)
    scenario = constant_scenario(hours=40, outdoor_c=t_out, start_c=18.0)
    twin = SimHouse(house, scenario)
    twin.apply(Command(until=scenario.end.to_pydatetime(), relay_on=(True, False)))
    ref2 = solve_ivp(rhs, (0, horizon_s), np.full(4, 18.0), method="LSODA", rtol=1e-10, atol=1e-10)
    twin.advance_to(horizon_s)
    assert_allclose(twin.node_temps_c(), ref2.y[:, -1], atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    n_rooms=st.integers(1, 5),
    mass=st.lists(st.booleans(), min_size=5, max_size=5),
    dt=st.floats(1.0, 86400.0),
    seed=st.integers(0, 2**31),
)
def test_modal_step_equals_matrix_exponential(n_rooms, mass, dt, seed):
    rng = np.random.default_rng(seed)
    rooms = []
    for j in range(n_rooms):
        kwargs = {}
        if mass[j]:
            kwargs = {"mass_capacitance_j_per_k": float(rng.uniform(1e6, 2e7)),
                      "air_mass_conductance_w_per_k": float(rng.uniform(20, 500)),
                      "mass_outdoor_conductance_w_per_k": float(rng.uniform(0, 40))}
        rooms.append(RoomConfig(name=f"r{j}", heater_power_kw=1.0, air_capacitance_j_per_k=float(rng.uniform(5e4, 1e6)),
                                outdoor_conductance_w_per_k=float(rng.uniform(0.5, 40)), **kwargs))
    couplings = tuple(Coupling((f"r{j}", f"r{j + 1}"), float(rng.uniform(1, 60))) for j in range(n_rooms - 1))
    m = build_matrices(rooms, couplings)
    x0 = rng.uniform(10, 25, m.n_nodes)
    q = rng.uniform(0, 3000, m.n_nodes)
    phi, gamma_out, gamma = discretize(m, dt)
    expected = phi @ x0 + gamma_out * 3.0 + gamma @ q
    modal = ModalThermal(m)
    got = modal.to_temps @ modal.step(modal.to_modes @ x0, modal.modal_input(3.0, q), dt)
    assert_allclose(got, expected, atol=1e-8 * max(1.0, np.abs(expected).max()))
