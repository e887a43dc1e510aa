"""Battery inverter modes, SOC limit events, round-trip efficiency; EV charging; grid split."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from builders import PRAGUE

from twin.battery import inverter_power
from twin.config import BatteryConfig, EvChargerConfig, GridConfig, HouseConfig
from twin.contracts import BatteryCommand, BatteryMode, Command
from twin.ev import charger_power_kw
from twin.grid import grid_flows
from twin.house import SimHouse
from twin.scenario import EvSession, PerfectForecasts, Scenario

B = BatteryConfig(capacity_kwh=10.0, max_charge_kw=5.0, max_discharge_kw=4.0, charge_efficiency=0.96,
                  discharge_efficiency=0.94, soc_min=0.1, soc_max=0.9, initial_soc=0.5)


@pytest.mark.parametrize(
    ("cmd", "soc", "net_kw", "expected_kw"),
    [
        (BatteryCommand(BatteryMode.SELF_CONSUMPTION), 0.5, 1.5, -1.5),  # covers a deficit
        (BatteryCommand(BatteryMode.SELF_CONSUMPTION), 0.5, -2.0, 2.0),  # stores a surplus
        (BatteryCommand(BatteryMode.SELF_CONSUMPTION), 0.5, 9.0, -4.0),  # within discharge limit
        (BatteryCommand(BatteryMode.SELF_CONSUMPTION), 0.1, 1.5, 0.0),  # empty: nothing to give
        (BatteryCommand(BatteryMode.SELF_CONSUMPTION), 0.9, -2.0, 0.0),  # full: exports instead
        (BatteryCommand(BatteryMode.CHARGE_FROM_GRID, 3.0), 0.5, 1.0, 3.0),
        (BatteryCommand(BatteryMode.CHARGE_FROM_GRID, 30.0), 0.5, 1.0, 5.0),
        (BatteryCommand(BatteryMode.DISCHARGE_TO_GRID, 3.0), 0.5, -1.0, -3.0),
        (BatteryCommand(BatteryMode.POWER_SETPOINT, -2.5), 0.5, 0.0, -2.5),
        (BatteryCommand(BatteryMode.POWER_SETPOINT, 2.5), 0.9, 0.0, 0.0),
        (BatteryCommand(BatteryMode.BACKUP_RESERVE, reserve_soc=0.6), 0.5, 1.0, 5.0),  # refill the reserve
        (BatteryCommand(BatteryMode.BACKUP_RESERVE, reserve_soc=0.6), 0.6, 1.0, 0.0),  # hold it
        (BatteryCommand(BatteryMode.BACKUP_RESERVE, reserve_soc=0.6), 0.7, 1.0, -1.0),  # above: self-consume
    ],
)
def test_inverter_modes(cmd, soc, net_kw, expected_kw):
    power, _ = inverter_power(cmd, soc, net_kw, B)
    assert power == pytest.approx(expected_kw)


def battery_house(battery: BatteryConfig = B, pv_kw: float = 0.0, ev: bool = False) -> HouseConfig:
    return HouseConfig(name="b", location=PRAGUE, grid=GridConfig(import_limit_kw=30, export_limit_kw=30),
                       battery=battery, ev_charger=EvChargerConfig(phases=3) if ev else None)


def flat_scenario(hours: float, load_kw: float = 0.0, pv_kw: float = 0.0, sessions=()) -> Scenario:
    idx = pd.date_range(pd.Timestamp("2024-03-01", tz="Europe/Prague"), periods=int(hours * 4), freq="15min")
    data = pd.DataFrame({"outdoor_temp_c": 5.0, "pv_power_kw": pv_kw, "base_load_kw": load_kw,
                         "import_price_per_kwh": 0.3, "export_price_per_kwh": 0.1, "comfort_mode": 0}, index=idx)
    data.index.freq = idx.freq
    return Scenario("flat", data, PerfectForecasts(), tuple(sessions))


def command(twin: SimHouse, hours: float, **kwargs) -> Command:
    return Command(until=twin.timestamp(twin.t_s + hours * 3600), **kwargs)


def test_charging_stops_exactly_at_soc_max():
    twin = SimHouse(battery_house(), flat_scenario(24))
    twin.apply(command(twin, 10, battery=BatteryCommand(BatteryMode.CHARGE_FROM_GRID, 2.5)))
    twin.advance_to(8 * 3600)
    hit_h = (0.9 - 0.5) * 10 / (0.96 * 2.5)
    assert twin.state.battery_soc == 0.9
    record = twin.take_interval()
    assert record.meter.battery_charge_kwh == pytest.approx(2.5 * hit_h, rel=1e-12)
    assert record.meter.import_kwh == pytest.approx(2.5 * hit_h, rel=1e-12)


def test_round_trip_efficiency():
    # Charge from 0.2 to 0.8, discharge back to 0.2: AC out / AC in = η_c · η_d.
    battery = BatteryConfig(capacity_kwh=10.0, max_charge_kw=5.0, max_discharge_kw=4.0, charge_efficiency=0.96,
                            discharge_efficiency=0.94, soc_min=0.2, soc_max=0.8, initial_soc=0.2)
    twin = SimHouse(battery_house(battery), flat_scenario(24))
    twin.apply(command(twin, 6, battery=BatteryCommand(BatteryMode.CHARGE_FROM_GRID, 3.0)))
    twin.advance_to(6 * 3600)
    assert twin.state.battery_soc == 0.8
    charged = twin.take_interval().meter.battery_charge_kwh
    twin.apply(command(twin, 8, battery=BatteryCommand(BatteryMode.DISCHARGE_TO_GRID, 2.0)))
    twin.advance_to(14 * 3600)
    assert twin.state.battery_soc == 0.2
    discharged = twin.take_interval().meter.battery_discharge_kwh
    assert discharged / charged == pytest.approx(0.96 * 0.94, rel=1e-12)


def test_lease_expiry_returns_the_battery_to_self_consumption():
    twin = SimHouse(battery_house(), flat_scenario(6, load_kw=1.0))
    twin.apply(command(twin, 1, battery=BatteryCommand(BatteryMode.CHARGE_FROM_GRID, 4.0)))
    twin.advance_to(1800)
    assert twin.observe().battery_power_kw == pytest.approx(4.0)
    twin.advance_to(3600 + 60)
    assert twin.state.battery_cmd.mode is BatteryMode.SELF_CONSUMPTION
    assert twin.observe().battery_power_kw == pytest.approx(-1.0)  # covers the 1 kW load


def test_ev_charges_until_its_charge_limit_and_reports_shortfall():
    t0 = pd.Timestamp("2024-03-01", tz="Europe/Prague")
    sessions = (EvSession(t0 + pd.Timedelta(hours=1), t0 + pd.Timedelta(hours=9), 40.0, 0.5, 0.8),
                EvSession(t0 + pd.Timedelta(hours=10), t0 + pd.Timedelta(hours=11), 40.0, 0.1, 0.9))
    twin = SimHouse(battery_house(ev=True), flat_scenario(12, sessions=sessions))
    charger = EvChargerConfig(phases=3)
    twin.advance_to(9 * 3600)  # no command: the charger runs at full power until the car's limit (its target)
    record = twin.take_interval()
    needed_kwh = (0.8 - 0.5) * 40.0
    assert record.meter.ev_kwh == pytest.approx(needed_kwh / charger.efficiency, rel=1e-12)
    assert record.meter.ev_unmet_kwh == 0.0
    twin.apply(command(twin, 3, ev_power_kw=0.0))  # stopped before it arrives: the second car leaves short
    twin.advance_to(11 * 3600)
    assert twin.take_interval().meter.ev_unmet_kwh == pytest.approx(0.8 * 40.0)


def test_a_commanded_charge_stops_at_the_limit_too_and_a_fuller_car_keeps_its_charge():
    t0 = pd.Timestamp("2024-03-01", tz="Europe/Prague")
    sessions = (EvSession(t0 + pd.Timedelta(hours=1), t0 + pd.Timedelta(hours=5), 40.0, 0.7, 0.8),
                EvSession(t0 + pd.Timedelta(hours=6), t0 + pd.Timedelta(hours=8), 40.0, 0.9, 0.8))
    assert sessions[1].charge_limit_kwh == pytest.approx(0.9 * 40.0)
    twin = SimHouse(battery_house(ev=True), flat_scenario(12, sessions=sessions))
    charger = EvChargerConfig(phases=3)
    twin.apply(command(twin, 8, ev_power_kw=charger.max_power_kw))
    twin.advance_to(2 * 3600)
    obs = twin.observe()
    assert obs.ev_soc == pytest.approx(0.8) and obs.ev_energy_needed_kwh == pytest.approx(0.0, abs=1e-9)
    assert twin.take_interval().meter.ev_kwh == pytest.approx(0.1 * 40.0 / charger.efficiency, rel=1e-12)
    twin.advance_to(7 * 3600)
    assert twin.observe().ev_soc == pytest.approx(0.9)
    assert twin.take_interval().meter.ev_kwh == 0.0


def test_charger_power_rules():
    c = EvChargerConfig(phases=3, min_current_a=6, max_current_a=16)
    assert charger_power_kw(None, 10.0, 60.0, c) == pytest.approx(c.max_power_kw)
    assert charger_power_kw(0.0, 10.0, 60.0, c) == 0.0
    assert charger_power_kw(c.min_power_kw * 0.9, 10.0, 60.0, c) == 0.0  # below the minimum: stop
    assert charger_power_kw(50.0, 10.0, 60.0, c) == pytest.approx(c.max_power_kw)
    assert charger_power_kw(None, 48.0, 48.0, c) == 0.0  # at its charge limit


def test_grid_export_limit_curtails_pv_first():
    imp, exp, curtailed = grid_flows(-8.0, pv_kw=9.0, export_limit_kw=5.0)
    assert (imp, exp, curtailed) == (0.0, 5.0, 3.0)
    imp, exp, curtailed = grid_flows(-8.0, pv_kw=1.0, export_limit_kw=5.0)  # PV cannot explain it
    assert (imp, exp, curtailed) == (0.0, 7.0, 1.0)
    assert grid_flows(2.0, pv_kw=1.0, export_limit_kw=5.0) == (2.0, 0.0, 0.0)


def test_no_battery_no_soc():
    house = HouseConfig(name="nob", location=PRAGUE, grid=GridConfig(import_limit_kw=30, export_limit_kw=30))
    obs = SimHouse(house, flat_scenario(2, load_kw=0.5)).observe()
    assert math.isnan(obs.battery_soc) and obs.battery_power_kw == 0.0
    assert obs.grid_power_kw == pytest.approx(0.5)
    assert np.asarray(obs.room_temp_c).shape == (0,)


def test_commands_already_expired_change_nothing():
    twin = SimHouse(battery_house(), flat_scenario(6, load_kw=1.0))
    twin.advance_to(3600)
    twin.apply(Command(until=twin.timestamp(3600) - timedelta(seconds=1),
                       battery=BatteryCommand(BatteryMode.CHARGE_FROM_GRID, 4.0)))
    assert twin.state.battery_cmd.mode is BatteryMode.SELF_CONSUMPTION
