"""The runner loop's observer hook: every decision and the end, in simulation as in a live run."""

from __future__ import annotations

from builders import simple_scenario, small_house

from controllers.rule_based import RuleBasedController
from twin.runner import PlanInfo, simulate


class Collector:
    def __init__(self) -> None:
        self.decisions: list[tuple[object, object, PlanInfo]] = []
        self.ended: list[str] = []

    def on_decision(self, time, obs, command, info: PlanInfo) -> None:
        assert time == obs.time
        self.decisions.append((time, command, info))

    def on_end(self, status: str) -> None:
        self.ended.append(status)


class Broken:
    def on_decision(self, time, obs, command, info) -> None:
        raise RuntimeError("an output that fails")

    def on_end(self, status: str) -> None:
        raise RuntimeError("and fails at the end too")


def test_observers_hear_every_decision_and_the_end_and_a_broken_one_stops_nothing():
    house = small_house()
    collector = Collector()
    result = simulate(house, simple_scenario(), RuleBasedController(house), observers=[Broken(), collector])
    assert len(collector.decisions) == len(result.log) > 0
    assert collector.ended == ["finished"]
    times = [t for t, _, _ in collector.decisions]
    assert [t.timestamp() for t in times] == [t.timestamp() for t in result.log.index]
    for _, command, info in collector.decisions:
        assert info.advice is command, "in simulation the advice is the command applied"
        assert info.decide_s >= 0.0
