"""Rollout modes through a real broker: what reaches the command topics is what the mode allows.

Checked by an independent subscriber to every topic (not by PUBACKs) and by the emulated
devices' own record of the commands they received.
"""

from __future__ import annotations

import json

import pytest
from live_helpers import run_against_emulator

from hardware.wire.topics import COMMAND_KEYS
from twin.safety import RolloutMode

#: Real time through a real broker: seconds, not milliseconds.
pytestmark = pytest.mark.slow

ALLOWED = {
    RolloutMode.SIMULATION: set(),
    RolloutMode.ADVISORY: set(),
    RolloutMode.PARTIAL: {"battery_set"},
    RolloutMode.FULL: set(COMMAND_KEYS),
}


@pytest.mark.parametrize("mode", list(RolloutMode), ids=lambda m: m.value)
def test_only_what_the_mode_allows_reaches_the_devices(broker, spy, tmp_path, mode):
    result, emulator = run_against_emulator(broker, tmp_path, "commissioning", mode, hours=0.5)
    assert len(result.log) == 6, "six 5-min decisions in half an hour"
    topics = emulator.topics
    seen = spy.topics()
    for key in COMMAND_KEYS:
        reached = [t for t in topics.topics(key) if t in seen]
        if key in ALLOWED[mode]:
            assert len(reached) == len(topics.topics(key)), f"{key} should be commanded in {mode.name}"
        else:
            assert reached == [], f"{mode.name}: {reached} received commands"
    accepted = {r.topic for r in emulator.records if r.result == "accepted"}
    allowed_topics = {t for key in ALLOWED[mode] for t in topics.topics(key)}
    assert accepted == allowed_topics
    # The advice is published in every mode but SIMULATION, which publishes nothing at all.
    plans = spy.on(topics.topic("plan"))
    if mode is RolloutMode.SIMULATION:
        assert plans == [] and spy.on(topics.topic("controller_status")) == []
    else:
        assert len(plans) == 6
        plan = json.loads(plans[-1])
        assert plan["mode"] == mode.value
        assert plan["advice"]["battery"] is not None and plan["advice"]["relay_on"] is not None
        assert (plan["sent"]["battery"] is not None) == (mode in (RolloutMode.PARTIAL, RolloutMode.FULL))
        assert (plan["sent"]["relay_on"] is not None) == (mode is RolloutMode.FULL)
    # Birth and goodbye only from a controller that commands devices.
    statuses = [json.loads(p)["state"] for p in spy.on(topics.topic("controller_status"))]
    assert statuses == (["online", "offline"] if ALLOWED[mode] else [])
    assert result.meta["blocked_by_mode"] == 0, "the safety layer already removed what the mode forbids"
