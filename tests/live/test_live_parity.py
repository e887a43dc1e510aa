"""Parity: a controller does through the broker what it does in simulation.

Same scenario window, same house: (a) ``simulate()``; (b) ``pems emulate`` + ``pems live`` (FULL)
as two processes through a real Mosquitto at accelerated speed. Expected: the *same command
sequence* — every decision identical (relay states, battery command, EV power, lease) — and so
the same KPIs. The emulated devices obey a command at its decision instant when it arrives
before their next reading is due (60 house seconds: 0.5 wall seconds at 120×); on a machine
too loaded for that, a late command can change later decisions, and the promise degrades to
KPIs within 1 %. Parametrised over controllers, each at a speed its decision time allows.
"""

from __future__ import annotations

import os

import pytest

from hardware.wire.local_broker import LocalBroker
from hardware.live.parity import parity
from twin.registry import controller_entries

CONTROLLERS = [name for name in ("rule-based", "mpc") if name in controller_entries()]


def check(report, session) -> None:
    late = session.emulator_summary()["commands_after_next_reading"]
    detail = (f"{report.identical}/{report.decisions} identical, first difference {report.first_difference}, "
              f"{late} commands landed late; KPI differences {report.kpi_rel_diff}")
    assert report.decisions > 0
    if late == 0:
        assert report.same_commands, detail
        assert report.max_kpi_rel_diff < 1e-9, detail
    else:  # the machine was too busy for the round trip: the fallback promise
        assert report.kpis_within(0.01), detail


#: How fast each controller can be played and still decide within a reading period (60 house seconds):
#: the MPC's first, cold solve takes up to ~3 s of wall time, so it runs at 20×, over one hour. The
#: rule-based baseline ran at 480× until the live runner began to stall 0.2–0.7 wall s at a decision now
#: and then (see the whole-day test); one late decision moved a 2-hour window's cost by 2 %, so 120×.
WINDOWS = {"rule-based": (2.0, 120.0), "mpc": (1.0, 20.0)}


@pytest.mark.slow
@pytest.mark.parametrize("controller", CONTROLLERS)
def test_live_against_the_emulator_matches_simulation(controller, tmp_path):
    # From 05:00 on a winter Monday: the comfort band steps up at 06:00, heaters and the car draw together.
    hours, speed = WINDOWS[controller]
    with LocalBroker() as broker:
        report, session = parity(broker, tmp_path, controller, "winter-week-v1", "2024-01-15T05:00", hours, speed)
    assert report.decisions == hours * 12
    check(report, session)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("PEMS_LIVE_DAY"),
                    reason="a whole day through the broker takes minutes; PEMS_LIVE_DAY=1 runs it")
@pytest.mark.parametrize("controller", ["rule-based"])  # the MPC's day at the 20× it needs would take 72 min
def test_a_whole_day_matches_simulation(controller, tmp_path):
    with LocalBroker() as broker:
        # Open problem: since the fail-safe layer, a few decisions a day (e.g. 00:05, 00:20, 18:30, 22:10 on
        # 2024-11-21) reach all 18 devices 0.3–0.7 wall s late, at 240× as at 480×; the last runs moved
        # grid_limit_violation_kwh by 1.3–2.7 %, beyond the 1 % fallback. The 2-hour windows keep parity.
        report, session = parity(broker, tmp_path, controller, "winter-week-v1", "2024-01-15T00:00", 24.0, 240.0)
    assert report.decisions == 288
    check(report, session)
