"""The vectorised siblings of the twin's rules equal the scalar rules, element by element (bit for bit)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin import battery as bat
from twin import ev as evm
from twin.config import reference_house
from twin.contracts import BatteryCommand, BatteryMode
from twin.env.action import ActionDecoder
from twin.env.batched_safety import BatchedSafety
from twin.env.reward import interval_discomfort_kh, interval_discomfort_kh_v
from twin.grid import curtailed_pv_kw_v, grid_flows, grid_flows_v, limit_violation_kw, limit_violation_kw_v
from twin.occupants import windows_open_next, windows_open_next_v
from twin.thermal import ModalThermal, build_matrices, modal_factors_v

HOUSE = reference_house()
N = 4000


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_inverter_power_every_mode(rng):
    b = HOUSE.battery
    assert b is not None
    modes = rng.integers(0, len(bat.MODE_CODES), N)
    power = rng.uniform(-8, 8, N)
    reserve = np.where(rng.random(N) < 0.2, np.nan, rng.uniform(-0.1, 1.1, N))
    soc = np.where(rng.random(N) < 0.3, rng.choice([b.soc_min, b.soc_max, 0.5], N), rng.uniform(0, 1, N))
    net = rng.uniform(-12, 12, N)
    commands = []
    for m, p, r in zip(modes.tolist(), power.tolist(), reserve.tolist(), strict=True):
        mode = bat.MODE_CODES[m]
        p = abs(p) if mode in (BatteryMode.CHARGE_FROM_GRID, BatteryMode.DISCHARGE_TO_GRID) else p
        r = (None if math.isnan(r) else min(max(r, 0.0), 1.0)) if mode is BatteryMode.BACKUP_RESERVE else None
        commands.append(BatteryCommand(mode, p, 0.5 if mode is BatteryMode.BACKUP_RESERVE and r is None else r))
    commanded = np.array([bat.commanded_power_kw(c) for c in commands])
    reserves = np.array([np.nan if c.reserve_soc is None else c.reserve_soc for c in commands])
    got_kw, got_limit = bat.inverter_power_v(modes, commanded, reserves, soc, net, b)
    for k, cmd in enumerate(commands):
        kw, limit = bat.inverter_power(cmd, float(soc[k]), float(net[k]), b)
        assert got_kw[k] == kw and _same(got_limit[k], limit), (cmd, soc[k], net[k])
        rate = bat.soc_rate_per_s(kw, b)
        assert bat.soc_rate_per_s_v(got_kw[k:k + 1], b)[0] == rate
        assert bat.time_to_soc_s_v(soc[k:k + 1], got_limit[k:k + 1], got_kw[k:k + 1], b)[0] == bat.time_to_soc_s(
            float(soc[k]), limit, kw, b)


def test_charger_and_car(rng):
    c = HOUSE.ev_charger
    assert c is not None
    request = np.where(rng.random(N) < 0.2, np.nan, rng.uniform(-1, 14, N))
    energy = rng.uniform(0, 60, N)
    limit = np.where(rng.random(N) < 0.2, energy, rng.uniform(0, 60, N))
    got = evm.charger_power_kw_v(request, energy, limit, c)
    full = evm.time_to_full_s_v(energy, limit, got, c)
    for k in range(N):
        req = None if math.isnan(request[k]) else float(request[k])
        kw = evm.charger_power_kw(req, float(energy[k]), float(limit[k]), c)
        assert got[k] == kw
        assert full[k] == evm.time_to_full_s(float(energy[k]), float(limit[k]), kw, c)


def test_grid_and_windows(rng):
    net = np.concatenate([rng.uniform(-20, 20, N), [0.0, -0.0, -10.0, -25.0]])
    pv = np.concatenate([rng.uniform(0, 15, N), [0.0, 1.0, 3.0, 20.0]])
    imp, exp, cur = grid_flows_v(net, pv, 10.0)
    over = limit_violation_kw_v(imp, exp, 17.25, 10.0)
    for k in range(len(net)):
        flows = grid_flows(float(net[k]), float(pv[k]), 10.0)
        assert (imp[k], exp[k], cur[k]) == flows
        assert over[k] == limit_violation_kw(*flows[:2], 17.25, 10.0)
    occ = HOUSE.occupants
    open_now = rng.random(N) < 0.5
    mean_air, outdoor = rng.uniform(18, 28, N), rng.uniform(10, 30, N)
    got = windows_open_next_v(open_now, mean_air, outdoor, occ)
    for k in range(N):
        assert got[k] == windows_open_next(bool(open_now[k]), float(mean_air[k]), float(outdoor[k]), occ)


def test_modal_factors_and_discomfort(rng):
    modal = ModalThermal(build_matrices(HOUSE.rooms, HOUSE.couplings))
    dt = np.concatenate([[0.0, 900.0, 60.0], rng.uniform(0, 3600, 50)])
    decay, gain = modal_factors_v(modal.rates_per_s, dt)
    for k, length in enumerate(dt.tolist()):
        d, g = modal.factors(length)
        np.testing.assert_array_equal(decay[k], d)
        np.testing.assert_array_equal(gain[k], g)
    start, end = rng.uniform(15, 28, (50, 16)), rng.uniform(15, 28, (50, 16))
    lower, upper = np.full((50, 16), 20.0), np.full((50, 16), 24.0)
    duration = rng.uniform(0, 900, 50)
    got = interval_discomfort_kh_v(start, end, lower, upper, duration)
    for k in range(50):
        assert got[k] == interval_discomfort_kh(start[k], end[k], lower[k], upper[k], float(duration[k]))


@pytest.mark.parametrize("heating", ["relay", "setpoint"])
def test_decode_v_equals_decode(rng, heating):
    from datetime import UTC, datetime

    from twin.contracts import Observation

    decoder = ActionDecoder(HOUSE, 900.0, heating)
    actions = rng.uniform(-1.3, 1.3, (300, len(decoder.names)))
    actions[rng.random(actions.shape) < 0.05] = np.nan
    lower, air = rng.uniform(18, 21, (300, 16)), rng.uniform(17, 24, (300, 16))
    got = decoder.decode_v(actions, lower, air)
    for k in range(300):
        obs = Observation(time=datetime(2024, 1, 1, tzinfo=UTC), room_temp_c=air[k], comfort_lower_c=lower[k],
                          comfort_upper_c=lower[k] + 3, relay_on=np.zeros(16, dtype=bool), outdoor_temp_c=0.0,
                          pv_power_kw=0.0, base_load_kw=0.0, grid_power_kw=0.0, battery_soc=0.5,
                          battery_power_kw=0.0, ev_connected=False, ev_soc=math.nan, ev_energy_needed_kwh=0.0,
                          ev_departure=None, import_price_per_kwh=0.2, export_price_per_kwh=0.1,
                          forecast=None)  # type: ignore[arg-type]
        cmd = decoder.decode(actions[k], obs)
        assert got.battery_given[k] == (cmd.battery is not None)
        if cmd.battery is not None:
            assert bat.MODE_CODES[got.battery_mode[k]] is cmd.battery.mode and got.battery_kw[k] == cmd.battery.power_kw
        assert got.ev_given[k] == (cmd.ev_power_kw is not None)
        if cmd.ev_power_kw is not None:
            assert got.ev_kw[k] == cmd.ev_power_kw
        assert got.relays_given[k] == (cmd.relay_on is not None)
        if cmd.relay_on is not None:
            assert tuple(got.relay_on[k].tolist()) == cmd.relay_on


def test_batched_safety_equals_safety_layer_on_random_timings(rng):
    """Random commands at random (short) intervals: minimum on/off times, the switch cap, the battery's
    mode interval and the charger's step interval all bind; every layer must decide as SafetyLayer."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from twin.contracts import Command
    from twin.safety import SafetyLayer

    n, rooms = 6, len(HOUSE.rooms)
    layers = [SafetyLayer(HOUSE) for _ in range(n)]
    batched = BatchedSafety(HOUSE, n)
    now = np.full(n, 1.7e9)
    relays = rng.random((n, rooms)) < 0.5
    everyone = np.ones(n, dtype=bool)
    held_relays = held_ev = kept_mode = 0
    for _ in range(400):
        now = now + rng.choice([10.0, 30.0, 60.0, 200.0, 400.0], n)
        relays = relays ^ (rng.random((n, rooms)) < 0.1)  # the plant (thermostat) switches some itself
        wanted = rng.random((n, rooms)) < 0.5
        mode = rng.choice([bat.MODE_CODE[BatteryMode.SELF_CONSUMPTION], bat.MODE_CODE[BatteryMode.POWER_SETPOINT],
                           bat.MODE_CODE[BatteryMode.CHARGE_FROM_GRID]], n)
        power = np.where(mode == bat.MODE_CODE[BatteryMode.SELF_CONSUMPTION], 0.0, np.abs(rng.uniform(-7, 7, n)))
        ev = rng.choice([0.0, 3.0, 5.0, 9.0, 12.0], n)
        batched.observe_relays(relays, now, everyone)
        got_relays = batched.relays(wanted, everyone, now)
        got_ev = batched.ev(ev, everyone, now)
        got_mode, got_kw, _ = batched.battery(mode, power, np.full(n, np.nan), everyone, now)
        held_relays += int(np.count_nonzero(got_relays != wanted))
        held_ev += int(np.count_nonzero(got_ev != np.where(ev > 0, ev, 0.0)))
        kept_mode += int(np.count_nonzero(got_mode != mode))
        for k, layer in enumerate(layers):
            obs = SimpleNamespace(epoch_s=float(now[k]), relay_on=relays[k], stale=frozenset(),
                                  time=datetime.fromtimestamp(float(now[k]), UTC))
            m = bat.MODE_CODES[mode[k]]
            cmd = Command(until=datetime.fromtimestamp(float(now[k]) + 1800.0, UTC),
                          relay_on=tuple(wanted[k].tolist()), ev_power_kw=float(ev[k]),
                          battery=BatteryCommand(m, float(power[k])))
            out = layer(cmd, obs)  # type: ignore[arg-type]
            assert tuple(got_relays[k].tolist()) == out.relay_on
            assert got_ev[k] == out.ev_power_kw
            assert out.battery is not None
            assert bat.MODE_CODES[got_mode[k]] is out.battery.mode and got_kw[k] == out.battery.power_kw
    assert held_relays and held_ev and kept_mode  # every rule did bind


@pytest.mark.parametrize("export_limit_kw", [0.0, 3.0, -1.0])
def test_grid_flows_v_at_other_export_limits(rng, export_limit_kw):
    net = np.concatenate([rng.uniform(-20, 20, N), [0.0, -0.0, -3.0, -25.0]])
    pv = np.concatenate([rng.uniform(0, 15, N), [0.0, 1.0, 3.0, 20.0]])
    imp, exp, cur = grid_flows_v(net, pv, export_limit_kw)
    alone = curtailed_pv_kw_v(net, pv, export_limit_kw)
    for k in range(len(net)):
        flows = grid_flows(float(net[k]), float(pv[k]), export_limit_kw)
        assert (imp[k], exp[k], cur[k]) == flows
        assert alone[k] == flows[2]
