"""docs/failsafe.md §3 scenario 9 through a real broker: a planner that stops solving never leaves the house
without commands, and says so on ``pems/optim_status``."""

from __future__ import annotations

import json
import time

from twin.contracts import SELF_CONSUMPTION, Command, Observation

PLAN_S = 3.0


class Collapsing:
    """Plans well for two decisions (3 s plans), then every solve fails."""

    def __init__(self) -> None:
        self.calls = 0

    def decide(self, obs: Observation) -> Command:
        self.calls += 1
        if self.calls > 2:
            raise RuntimeError("solver: infeasible start (SOC reading NaN)")
        return Command(until=obs.after(PLAN_S), relay_on=(True,) * 16, battery=SELF_CONSUMPTION, plan_status="optimal")


def test_last_plan_while_it_lasts_then_the_fallback_and_optim_status_says_so(make_sims, make_lab, spy):
    sims = make_sims()
    make_lab(controller=Collapsing(), controller_name="collapsing")
    time.sleep(2 + PLAN_S + 2)
    statuses = [json.loads(p) for p in spy.on("pems/optim_status")]
    words = [s["status"] for s in statuses]
    assert words[:2] == ["optimal", "optimal"]
    assert "last_plan" in words and words[-1] == "fallback", words
    first_fallback = words.index("fallback")
    assert set(words[2:first_fallback]) == {"last_plan"} and set(words[first_fallback:]) == {"fallback"}
    last_plan_times = [s["ts"] for s in statuses if s["status"] == "last_plan"]
    assert len(last_plan_times) <= PLAN_S + 1, "the last plan only within its horizon"
    assert "RuntimeError" in statuses[-1]["detail"] and statuses[-1]["controller"] == "collapsing"
    # The devices never went without a lease: the fallback's commands kept arriving.
    late = [d for d in sims.accepted() if d.device == "heating.living"]
    gaps = [b.recv_mono - a.recv_mono for a, b in zip(late, late[1:], strict=False)]
    assert max(gaps) < 2.5 and len(late) >= 6
