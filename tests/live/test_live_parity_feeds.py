"""Parity through the feed path: the live run reads prices and weather with the real OTE and Open-Meteo
clients from ``pems emulate --feeds-port`` (the scenario's prices, published at 13:00, and its issued
weather forecasts, in the services' wire formats), its comfort band from the ``[comfort]`` schedule —
and still issues the commands ``pems simulate`` issues on the same window.

PV and household-load forecasts are replayed from the scenario (``feeds.pv_load = "scenario"``): no
feed carries them. The rule-based controller decides on the band and prices *now*; the MPC also reads
the 48-h horizon, so the simulated run plays the window's hours on the scenario continued past its end
(``simulate(..., end_s=...)``), as the feeds give the calendar's next days — not the window repeating
itself (docs/feeds.md). The MPC runs in lockstep (``pems emulate --lockstep``): exact under any load.
"""

from __future__ import annotations

import socket

import pytest

from hardware.live.parity import parity
from hardware.wire.local_broker import LocalBroker
from tests.live.test_live_parity import check


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_rule_based_through_the_feeds_matches_simulation(tmp_path) -> None:
    # 05:00–07:00 on a winter Monday: the schedule's day mode starts at 06:00 (from [comfort], not the scenario).
    with LocalBroker() as broker:
        report, session = parity(broker, tmp_path, "rule-based", "winter-week-v1", "2024-01-15T05:00", 2.0, 120.0,
                                 feeds_port=_free_port())
    assert report.decisions == 24
    assert "feed" not in session.live_stderr.lower() or "using" not in session.live_stderr  # no feed fell back
    check(report, session)


@pytest.mark.slow
def test_mpc_through_the_feeds_matches_simulation(tmp_path) -> None:
    with LocalBroker() as broker:
        report, session = parity(broker, tmp_path, "mpc", "winter-week-v1", "2024-01-15T05:00", 1.0, 240.0,
                                 feeds_port=_free_port(), lockstep=True)
    assert report.decisions == 12
    assert session.emulator_summary()["commands_after_next_reading"] == 0
    assert report.same_commands, f"{report.identical}/12, first difference {report.first_difference}"
    assert report.max_kpi_rel_diff < 1e-9, report.kpi_rel_diff
