"""No data, no KPIs: a run that received no readings says so (issue: live mode under a hostile review).

The devices here report nothing (as when an ACL silently drops their publishes): the controller
must alert after ``failsafe.no_readings_alert_s`` and end with coverage fields that say no
decision saw the house and no command was sent — not a perfect day.
"""

from __future__ import annotations

import json
import time

from live_helpers import wait_for

from hardware.faultlab.devices import SimSettings


def test_a_run_without_readings_alerts_and_its_kpis_say_so(make_sims, make_lab, spy):
    make_sims(SimSettings(feeds=set()))
    lab = make_lab(extra={"failsafe": {"no_readings_alert_s": 1.0, "reconcile_timeout_s": 1.0},
                          "control": {"startup_wait_s": 0.5}}, running=False)
    wait_for(lambda: any(json.loads(p)["kind"] == "no_readings" for p in spy.on("pems/alerts")), 10,
             "the no-readings alert")
    time.sleep(2.0)
    result = lab.stop()
    alert = next(json.loads(p) for p in spy.on("pems/alerts") if json.loads(p)["kind"] == "no_readings")
    assert "check the ACL" in alert["message"]
    coverage = result.meta["coverage"]
    assert coverage["decisions"] >= 1 and coverage["readings_coverage"] == 0.0, coverage
    assert coverage["commands_coverage"] == 0.0
    assert "fresh readings at 0 of" in result.meta["coverage_warning"]
    journal = [json.loads(line) for line in (lab.out / "commands.jsonl").read_text().splitlines() if line.strip()]
    assert journal and not any(entry["fresh_readings"] for entry in journal), "each blind decision is marked"
    if result.kpis:
        assert result.kpis["readings_coverage"] == 0.0
