"""docs/failsafe.md §3 scenario 6, in-process: whatever a controller returns, what the live mode would put on
the wire passes the envelope check — through the same safety layer and device encoders.

A run of decisions (commands of every shape, stale inputs, rollout modes, time passing) goes
through ``LiveSafety``'s lease cut and ``SafetyLayer``, then ``CommandEncoder`` builds the
device payloads exactly as ``MqttHouse.apply`` does; every payload must pass
``hardware.failsafe.envelope.payload_problems`` and every command ``twin.safety.envelope_problems``.

Marked ``slow``: ``PEMS_FUZZ_EXAMPLES`` sets the number of examples — 1,000 by default (what
``./run-tests`` and CI run), ``PEMS_FUZZ_EXAMPLES=100000`` for the full property (nightly).
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.config import MaxAgeConfig, TopicsConfig
from hardware.devices import LeaseTerms, SequenceCounter
from hardware.devices.encoder import CommandEncoder
from hardware.devices.ev_charger import EvChargerAdapter
from hardware.devices.growatt import GrowattAdapter
from hardware.devices.loxone import LoxoneAdapter
from hardware.failsafe.envelope import payload_problems
from hardware.plant.mqtt_house import ALLOWED_DEVICES
from twin.config import reference_house
from twin.contracts import BatteryCommand, BatteryMode, Command
from twin.house import SimHouse
from twin.registry import load_scenario
from twin.safety import RolloutMode, SafetyLayer, envelope_problems

EXAMPLES = int(os.environ.get("PEMS_FUZZ_EXAMPLES", "1000"))
HOUSE = reference_house()
N = len(HOUSE.rooms)
TOPICS = TopicsConfig().topic_map(HOUSE.room_names)
ENCODER = CommandEncoder(LoxoneAdapter(HOUSE, TOPICS, MaxAgeConfig()), GrowattAdapter(TOPICS, MaxAgeConfig(), True),
                         EvChargerAdapter(HOUSE.ev_charger, TOPICS, MaxAgeConfig()), True, True)
OBS = SimHouse(HOUSE, load_scenario("winter-week-v1")).observe()
STALE = ["battery_soc", "grid_power_kw", "pv_power_kw", *(f"room_temp_c.{r}" for r in HOUSE.room_names[:3])]

powers = st.one_of(st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False), st.sampled_from([0.0, -0.0, 1e-12]))
batteries = st.one_of(
    st.none(),
    st.builds(BatteryCommand, st.sampled_from([BatteryMode.SELF_CONSUMPTION])),
    st.builds(BatteryCommand, st.sampled_from([BatteryMode.CHARGE_FROM_GRID, BatteryMode.DISCHARGE_TO_GRID]),
              st.floats(0, 1e9)),
    st.builds(BatteryCommand, st.just(BatteryMode.POWER_SETPOINT), powers),
    st.builds(BatteryCommand, st.just(BatteryMode.BACKUP_RESERVE), st.just(0.0), st.floats(0, 1)),
)
relays = st.one_of(st.none(), st.lists(st.booleans(), min_size=N, max_size=N).map(tuple),
                   st.lists(st.booleans(), min_size=N, max_size=N).map(lambda x: tuple(np.array(x))))
decisions = st.tuples(st.floats(1e-3, 1e7), relays, batteries, st.one_of(st.none(), powers),
                      st.sets(st.sampled_from(STALE)), st.floats(0.0, 900.0))


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mode=st.sampled_from(list(RolloutMode)), lease_cut_s=st.one_of(st.none(), st.floats(1.0, 86400.0)),
       run=st.lists(decisions, min_size=1, max_size=6))
def test_every_payload_the_live_mode_would_send_is_inside_the_envelope(mode, lease_cut_s, run):
    gate = SafetyLayer(HOUSE, mode=mode)
    seq = SequenceCounter(0)
    t = 0.0
    for lease_s, relay_on, battery, ev_kw, stale, dt in run:
        t += dt
        obs = replace(OBS, time=OBS.after(t), stale=frozenset(stale))
        command = Command(until=obs.after(lease_s), relay_on=relay_on, battery=battery, ev_power_kw=ev_kw)
        if lease_cut_s is not None and command.until > obs.after(lease_cut_s):  # LiveSafety's control.lease_s
            command = replace(command, until=obs.after(lease_cut_s))
        sent = gate(command, obs)
        assert envelope_problems(sent, obs, HOUSE, HOUSE.safety, mode) == []
        lease = LeaseTerms.of(sent, obs.time)
        blind = {j for j, room in enumerate(HOUSE.room_names) if f"room_temp_c.{room}" in stale}
        for part in ENCODER.device_commands(sent, lease, seq, ALLOWED_DEVICES[mode], blind):
            message = part.build()
            assert not message.retain, "commands are never retained"
            assert payload_problems(part.key, message.payload, HOUSE, mode, obs.stale, obs.time) == [], message
