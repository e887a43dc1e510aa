"""The live run's rollout mode switches at a decision: ``[outputs.home_assistant]``, the gate's ceiling,
the safety layer and the dispatch taking the new mode."""

from __future__ import annotations

import pytest

from hardware.config import live_config_from_dict
from hardware.outputs.mode_gate import ModeGate
from twin.config import reference_house
from twin.errors import ConfigError
from twin.safety import RolloutMode, SafetyLayer


def test_live_config_reads_outputs_home_assistant():
    base = {"forecasts": {"scenario": "x"}}
    assert live_config_from_dict(base).outputs.home_assistant is None
    config = live_config_from_dict({**base, "outputs": {"home_assistant": {}}})
    ha = config.outputs.home_assistant
    assert ha is not None and ha.enabled and ha.prefix == "homeassistant" and ha.hours_ahead == 6
    config = live_config_from_dict({**base, "outputs": {"home_assistant": {"prefix": "ha", "hours_ahead": 12}}})
    assert config.outputs.home_assistant.prefix == "ha"
    with pytest.raises(ConfigError, match="outputs.home_assistant.hours_ahead"):
        live_config_from_dict({**base, "outputs": {"home_assistant": {"hours_ahead": 0}}})
    with pytest.raises(ConfigError, match="outputs.home_assistant"):
        live_config_from_dict({**base, "outputs": {"home_assistant": {"prefx": "x"}}})


def test_the_gate_never_goes_above_the_mode_the_run_started_in():
    applied = []
    gate = ModeGate(RolloutMode.PARTIAL, apply=applied.append, ceiling=RolloutMode.PARTIAL)
    assert gate.request("FULL", "home-assistant") is None and gate.mode is RolloutMode.PARTIAL
    assert "above PARTIAL" in gate.refused[-1][1]
    assert gate.request("advisory", "home-assistant") is not None and gate.mode is RolloutMode.ADVISORY
    assert gate.request("PARTIAL", "home-assistant") is not None and gate.mode is RolloutMode.PARTIAL  # back up
    assert [c.new for c in applied] == [RolloutMode.ADVISORY, RolloutMode.PARTIAL]


def test_a_safety_layer_lowered_to_advisory_passes_no_device_command():
    layer = SafetyLayer(reference_house(), mode=RolloutMode.FULL)
    assert layer._may_heat and layer._may_battery
    layer.set_mode(RolloutMode.ADVISORY)
    assert not (layer._may_heat or layer._may_battery or layer._may_ev)
    layer.set_mode(RolloutMode.PARTIAL)
    assert layer._may_battery and not layer._may_heat
