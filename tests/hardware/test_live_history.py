"""The live run's readings kept as history: every decision's observation lands in the day partitions."""

from __future__ import annotations

import numpy as np
from builders import simple_scenario, small_house

from controllers.rule_based import RuleBasedController
from hardware.live.history import HistoryWriter
from scenarios.history.store import partition_days, read_history
from twin.runner import RunSettings, simulate


class Observed:
    """A controller that hands each observation to the writer (what the runner's observer hook does)."""

    def __init__(self, inner, writer: HistoryWriter) -> None:
        self.inner, self.writer = inner, writer

    def decide(self, obs):  # noqa: ANN001, ANN201
        command = self.inner.decide(obs)
        self.writer.on_decision(obs, command)
        return command


def test_history_writer_keeps_every_observation(tmp_path):
    house = small_house()
    scenario = simple_scenario(days=2)
    writer = HistoryWriter(tmp_path, house.room_names, "Europe/Prague", flush_every=7)
    result = simulate(house, scenario, Observed(RuleBasedController(house), writer), RunSettings())
    writer.on_end()
    history = read_history(tmp_path, "Europe/Prague")
    assert len(history) == len(result.log) == writer.written_rows
    assert len(partition_days(tmp_path)) >= 2
    for room in house.room_names:
        assert f"room_temp_c.{room}" in history and f"relay_on.{room}" in history
    np.testing.assert_allclose(history["grid_import_kw"] - history["grid_export_kw"], history["grid_power_kw"])
    assert history["base_load_kw"].notna().all() and (history["pv_power_kw"] >= 0).all()
