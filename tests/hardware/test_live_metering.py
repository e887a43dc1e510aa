"""Interval metering from counters, and what only a sequence of readings reveals."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone

import numpy as np

from hardware.plant.clock import HouseClock
from hardware.plant.metering import Counters, EventLedger, interval_meter
from hardware.plant.readings import Reading
from hardware.wire.schemas import CarStatus, ChargerStatus, GridStatus, HeatingStatus
from hardware.wire.topics import Route
from twin.config import GridConfig

CET = timezone(timedelta(hours=1))


def counters(pv=0.0, imp=0.0, exp=0.0, charge=0.0, discharge=0.0, ev=0.0, heating=(0.0, 0.0), switches=(0, 0)):
    return Counters(pv, imp, exp, charge, discharge, ev, np.array(heating, dtype=float),
                    np.array(switches, dtype=np.int64))


def test_interval_energies_are_counter_differences_and_the_base_load_balances():
    start = counters(pv=10, imp=100, exp=5, charge=20, discharge=30, ev=40, heating=(1, 2), switches=(3, 4))
    end = counters(pv=11, imp=103, exp=5.5, charge=20.5, discharge=30.25, ev=41, heating=(1.5, 2.25),
                   switches=(4, 6))
    m = interval_meter(start, end, 0.3, 0.05, grid_limit_violation_kwh=0.0, ev_unmet_kwh=0.0,
                       observed_switches=np.zeros(2, dtype=np.int64))
    assert (m.pv_kwh, m.import_kwh, m.export_kwh, m.ev_kwh) == (1.0, 3.0, 0.5, 1.0)
    assert m.heating_kwh == 0.75 and m.heating_room_kwh.tolist() == [0.5, 0.25]
    assert m.relay_switches_room.tolist() == [1, 2]
    # PV + import + discharge − heating − EV − charge − export
    assert m.base_load_kwh == 1 + 3 + 0.25 - 0.75 - 1 - 0.5 - 0.5
    assert m.cost == 3 * 0.3 - 0.5 * 0.05
    assert math.isnan(m.pv_curtailed_kwh), "a PV meter cannot see curtailment: unknown, not zero"


def test_a_counter_that_went_back_makes_its_interval_unknown():
    m = interval_meter(counters(imp=100), counters(imp=2), 0.3, 0.05, 0.0, 0.0, np.zeros(2, dtype=np.int64))
    assert math.isnan(m.import_kwh) and math.isnan(m.base_load_kwh)


def test_missing_switch_counters_fall_back_to_observed_changes():
    m = interval_meter(counters(switches=(-1, 3)), counters(switches=(-1, 5)), 0.3, 0.05, 0.0, 0.0,
                       np.array([4, 9]))
    assert m.relay_switches_room.tolist() == [4, 2]


def reading(payload) -> Reading:
    return Reading(payload, time.monotonic(), False, None)


def test_ledger_books_grid_overload_and_unmet_energy_by_device_time():
    ledger = EventLedger(GridConfig(import_limit_kw=10.0, export_limit_kw=5.0), n_rooms=1)
    grid = Route("grid_status")
    ledger.on_reading(grid, reading(GridStatus(power_kw=12.0)), 0.0)
    ledger.on_reading(grid, reading(GridStatus(power_kw=-8.0)), 1800.0)  # 2 kW over for half an hour
    ledger.on_reading(grid, reading(GridStatus(power_kw=0.0)), 3600.0)  # then 3 kW over the export limit
    ledger.on_reading(Route("ev_car_status"), reading(CarStatus(energy_needed_kwh=4.5)), 3600.0)
    ledger.on_reading(Route("ev_status"), reading(ChargerStatus(connected=True, power_kw=11.0)), 3600.0)
    ledger.on_reading(Route("ev_status"), reading(ChargerStatus(connected=False, power_kw=0.0)), 4000.0)
    relay = Route("heating_status", 0)
    for t, state in ((0.0, "off"), (100.0, "on"), (200.0, "on"), (300.0, "off")):
        ledger.on_reading(relay, reading(HeatingStatus(state=state)), t)
    violation, unmet, switches = ledger.take(1800.0)
    assert violation == 1.0 and unmet == 0.0 and switches.tolist() == [2]
    violation, unmet, switches = ledger.take(4000.0)
    assert violation == 1.5 and unmet == 4.5 and switches.tolist() == [0]
    assert ledger.take(1e9) == (0.0, 0.0, ledger.take(0.0)[2])


def test_clock_maps_house_and_wall_time():
    origin = datetime(2024, 3, 31, 1, 0, tzinfo=CET)
    clock = HouseClock(origin, wall_origin_s=1000.0, speed=60.0)
    assert clock.now_s(1010.0) == 600.0
    assert clock.wall_s(600.0) == 1010.0
    assert clock.timestamp(3600.0) == origin + timedelta(hours=1)
    assert clock.seconds(origin + timedelta(minutes=5)) == 300.0
