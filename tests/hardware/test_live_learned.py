"""Learned forecasters in a live run: trained on the house's history at start-up, reused after a restart,
retrained in a background process with both A/B scores kept; refusal with too little history."""

from __future__ import annotations

import time
from dataclasses import replace

import pandas as pd
import pytest
from builders import simple_scenario, small_house

from controllers.forecasting.retrain import RetrainSettings
from controllers.rule_based import RuleBasedController
from hardware.live.history import HistoryWriter
from hardware.live.learned import LiveForecasting, LiveHistoryError
from twin.contracts import Command, Observation
from twin.registry import ControllerContext, make_controller
from twin.runner import PlanInfo, RunSettings, simulate

SETTINGS = RetrainSettings(every_days=7, window_days=91, test_days=3, min_history_days=14)


def _decision(obs: Observation) -> tuple:
    """The runner's observer arguments for a decision that commanded nothing."""
    command = Command(until=obs.time + pd.Timedelta(minutes=15))
    return obs.time, obs, command, PlanInfo(command, command, 0.0)


class Recording:
    def __init__(self, inner, writer):  # noqa: ANN001
        self.inner, self.writer, self.last = inner, writer, None

    def decide(self, obs):  # noqa: ANN001, ANN201
        command = self.inner.decide(obs)
        self.writer.on_decision(obs, command)
        self.last = obs
        return command


@pytest.fixture(scope="module")
def house_history(tmp_path_factory):
    """Eighteen days of a simulated house, kept by the live history writer."""
    folder = tmp_path_factory.mktemp("house")
    house = small_house(ev=False)
    writer = HistoryWriter(folder / "history", house.room_names, house.location.timezone, flush_every=96)
    recording = Recording(RuleBasedController(house), writer)
    simulate(house, simple_scenario(days=18, sessions=False), recording, RunSettings(decision_interval_s=900))
    writer.on_end()
    return house, folder, recording.last


def test_too_little_history_is_refused(tmp_path):
    house = small_house(ev=False)
    keeper = LiveForecasting(house, tmp_path / "history", tmp_path / "models", SETTINGS)
    with pytest.raises(LiveHistoryError, match="no history partitions"):
        keeper.build("rule-based", ControllerContext(house, None, 900.0), make_controller)


def test_trained_at_start_reused_after_restart_and_retrained_in_background(house_history):
    house, folder, last = house_history
    keeper = LiveForecasting(house, folder / "history", folder / "models", SETTINGS)
    wrapper = keeper.build("rule-based", ControllerContext(house, None, 900.0), make_controller)
    kinds = sorted(p.name for p in (folder / "models").iterdir() if p.is_dir())
    assert kinds == ["export_price", "import_price", "load", "pv"]
    versions = {k: keeper.store.current_dir(k).name for k in kinds}
    assert all(f.training for f in (wrapper.pv, wrapper.load))

    restarted = LiveForecasting(house, folder / "history", folder / "models", SETTINGS)
    again = restarted.build("rule-based", ControllerContext(house, None, 900.0), make_controller)
    assert {k: restarted.store.current_dir(k).name for k in kinds} == versions  # reused, not retrained
    assert again.load.training == wrapper.load.training
    assert sum(1 for _ in (folder / "models" / "load").iterdir()) == 1

    now = pd.Timestamp(last.time) + pd.Timedelta(minutes=15)
    restarted._last_submit = now - pd.Timedelta(days=8)  # a week has passed since the last retraining
    decided = replace(last, time=now.to_pydatetime())
    restarted.on_decision(*_decision(decided))
    assert restarted.worker.busy or restarted.outcomes
    for _ in range(3000):  # waiting for the child process, not timing it
        if not restarted.worker.busy:
            break
        time.sleep(0.1)
    decided = replace(last, time=(now + pd.Timedelta(minutes=15)).to_pydatetime())
    restarted.on_decision(*_decision(decided))
    restarted.on_end("finished")
    assert {o.kind for o in restarted.outcomes} == set(kinds)
    for outcome in restarted.outcomes:  # both scores on the same test days, the winner in use
        assert outcome.old_mae is not None and outcome.new_mae >= 0
        assert outcome.replaced == (outcome.new_mae < outcome.old_mae)
        assert restarted.store.current_dir(outcome.kind).name == (outcome.version if outcome.replaced
                                                                  else versions[outcome.kind])


def test_mpc_learned_is_built_on_the_history_and_keeps_stored_models(house_history):
    house, folder, _ = house_history
    keeper = LiveForecasting(house, folder / "history", folder / "models-mpc", SETTINGS)
    wrapper = keeper.build("mpc-learned", ControllerContext(house, None, 900.0), make_controller)
    assert type(wrapper).__name__ == "LearnedMpc" and wrapper.settings.retrain_every_days is None
    trained = wrapper.load.training
    wrapper.reset()  # what the runner does before the first decision: stored models are not refitted
    assert wrapper.fits == 0 and wrapper.load.training == trained
