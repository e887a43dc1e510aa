"""docs/failsafe.md §3 scenario 9, in-process: a controller that times out, has no feasible plan or a relaxed one.

The guard keeps the last valid command while its lease lasts, then asks the fallback, then
leaves every device on its own rule — and says which (``optim_status``).
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from hardware.failsafe.fallback import GuardedController, command_problems
from twin.config import reference_house
from twin.contracts import SELF_CONSUMPTION, Command, Observation, PlanStatus
from twin.house import SimHouse
from twin.registry import ControllerContext, load_scenario, make_controller

HOUSE = reference_house()


@pytest.fixture(scope="module")
def obs() -> Observation:
    return SimHouse(HOUSE, load_scenario("winter-week-v1")).observe()


class Scripted:
    """Returns (or does) what the test scripts for each call: a Command, an exception, or a hang."""

    def __init__(self) -> None:
        self.script: list = []
        self.release = threading.Event()

    def decide(self, obs: Observation) -> Command:
        step = self.script.pop(0)
        if step == "hang":
            self.release.wait(5)
            return Command(until=obs.after(900), relay_on=(True,) * 16, plan_note="late")
        if isinstance(step, Exception):
            raise step
        return step(obs) if callable(step) else step


def good(obs: Observation, status: PlanStatus = PlanStatus.OPTIMAL, note: str = "") -> Command:
    return Command(until=obs.after(900), relay_on=(False,) * 16, battery=SELF_CONSUMPTION, plan_status=status,
                   plan_note=note)


@pytest.fixture
def guarded():
    primary = Scripted()
    fallback = make_controller("rule-based", ControllerContext(HOUSE, None, 300.0))
    guard = GuardedController(primary, HOUSE, deadline_s=0.2, fallback=fallback, name="scripted")
    yield guard, primary
    primary.release.set()
    guard.close()


def test_failures_use_the_last_plan_within_its_lease_then_the_fallback(guarded, obs):
    guard, primary = guarded
    primary.script = [good, "hang", ValueError("NaN in the SOC"),
                      lambda o: good(o, PlanStatus.FAILED, "Infeasible"),
                      lambda o: good(o, PlanStatus.FAILED, "Optimal (Relaxed)")]
    first = guard.decide(obs)
    assert guard.verdict.status == "optimal" and first.plan_status == "optimal"
    timed_out = guard.decide(replace(obs, time=obs.after(300)))
    assert guard.verdict.status == "last_plan" and "deadline" in guard.verdict.detail
    assert timed_out.relay_on == first.relay_on and timed_out.until == first.until, "never extended"
    # The hung decision is still running: the controller is not asked again meanwhile.
    still = guard.decide(replace(obs, time=obs.after(400)))
    assert guard.verdict.status == "last_plan" and "still deciding" in guard.verdict.detail
    primary.release.set()
    threading.Event().wait(0.1)
    raised = guard.decide(replace(obs, time=obs.after(600)))
    assert guard.verdict.status == "last_plan" and "ValueError" in guard.verdict.detail
    assert still.relay_on == raised.relay_on == first.relay_on
    # The last plan's lease (900 s) is over: the rule-based fallback decides.
    infeasible = guard.decide(replace(obs, time=obs.after(1000)))
    assert guard.verdict.status == "fallback" and "Infeasible" in guard.verdict.detail
    assert infeasible.plan_status == "fallback" and infeasible.battery == SELF_CONSUMPTION
    guard.decide(replace(obs, time=obs.after(1300)))
    assert guard.verdict.status == "fallback" and "Relaxed" in guard.verdict.detail


def test_without_a_usable_fallback_every_device_keeps_its_own_rule(obs):
    primary = Scripted()
    primary.script = [RuntimeError("solver crashed")]
    broken_fallback = Scripted()
    broken_fallback.script = [ZeroDivisionError("fallback broken too")]
    guard = GuardedController(primary, HOUSE, 0.5, fallback=broken_fallback)
    command = guard.decide(obs)
    guard.close()
    assert guard.verdict.status == "defaults"
    assert (command.relay_on, command.battery, command.ev_power_kw) == (None, None, None)
    assert command.until > obs.time


@pytest.mark.parametrize("bad, why", [
    (lambda o: "not a command", "not a Command"),
    (lambda o: Command(until=o.time), "lease ends"),
    (lambda o: Command(until=o.after(60), relay_on=(True,) * 3), "3 entries"),
    (lambda o: Command(until=o.after(60), relay_on=tuple([0.37] * 16)), "non-boolean"),
    (lambda o: Command(until=o.after(60), relay_on=tuple([np.nan] * 16)), "non-boolean"),
    (lambda o: Command(until=o.after(60), plan_status=PlanStatus.FAILED, plan_note="time limit reached, no incumbent"),
     "plan_status"),
])
def test_unusable_commands_are_recognised(obs, bad, why):
    problems = command_problems(bad(obs), obs, HOUSE)
    assert problems and why in problems[0]


def test_a_good_command_passes_unchanged(obs):
    primary = Scripted()
    command = good(obs, PlanStatus.FEASIBLE)
    primary.script = [command]
    guard = GuardedController(primary, HOUSE, 1.0)
    assert guard.decide(obs) is command and guard.verdict.status == "feasible"
    guard.close()
    assert command_problems(Command(until=obs.after(60), relay_on=tuple(np.zeros(16, dtype=bool))), obs, HOUSE) == []
