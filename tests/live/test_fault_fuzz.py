"""docs/failsafe.md §3 scenarios 6 and 13 at the broker: hostile payloads on every topic the controller reads.

Hypothesis publishes generated payloads (``fuzz_payloads``) to every subscribed topic — the
readings, the heartbeat, the command topics — while the real live runner controls the device
simulators. Whatever arrives, the controller stays up, every malformed reading is counted,
every command it puts on the wire passes the envelope check, and the rollout mode's gate
holds: SIMULATION and ADVISORY publish no command, PARTIAL only the battery's.
"""

from __future__ import annotations

import time

import pytest
from conftest import publisher
from fuzz_payloads import payloads
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.failsafe.envelope import MODE_KEYS
from hardware.faultlab.metrics import unsafe_payloads
from hardware.wire.schemas import READING_SCHEMAS, PayloadError, parse_payload
from hardware.wire.topics import COMMAND_KEYS, READING_KEYS
from twin.config import reference_house
from twin.safety import RolloutMode

HOUSE = reference_house()
#: Broker-level examples per run (docs/failsafe.md: about 2,000), split over the rollout modes.
EXAMPLES = {RolloutMode.FULL: 1400, RolloutMode.PARTIAL: 200, RolloutMode.ADVISORY: 200, RolloutMode.SIMULATION: 200}


def fuzz(rogue, topics: list[str], n: int, retain: bool) -> dict[str, object]:
    sent: list[tuple[str, bytes, bool]] = []

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(topic=st.sampled_from(topics), payload=payloads, retained=st.booleans() if retain else st.just(False))
    def publish(topic: str, payload: bytes, retained: bool) -> None:
        rogue.publish(topic, payload, qos=1, retain=retained).wait_for_publish(5)
        sent.append((topic, payload, retained))

    publish()
    return {"sent": sent}


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda m: m.value)
def test_fuzzed_inputs_never_stop_the_controller_nor_pass_the_envelope(broker, make_sims, make_lab, spy,
                                                                       lab_topics, mode):
    sims = make_sims()
    lab = make_lab(mode=mode, running=mode is not RolloutMode.SIMULATION)
    topics = ([t for key in READING_KEYS for t in lab_topics.topics(key)] + list(lab_topics.command_topics())
              + [lab_topics.topic("heartbeat")])
    rogue = publisher(broker)
    sent = fuzz(rogue, topics, EXAMPLES[mode], retain=mode is RolloutMode.FULL)["sent"]
    for topic, _payload, retained in sent:  # nothing the fuzzer left retained outlives the test
        if retained:
            rogue.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    time.sleep(1.5)  # decisions go on after the storm
    plant = lab.plant
    assert lab.running and lab.failure is None, "the controller is still running"

    malformed = 0
    for topic, payload, _ in sent:
        route = lab_topics.route(topic)
        if payload and route.key in READING_SCHEMAS:
            try:
                parse_payload(READING_SCHEMAS[route.key], payload)
            except PayloadError:
                malformed += 1
    deadline = time.monotonic() + 10
    while plant.store.drops.total() < malformed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert plant.store.drops.total() >= malformed > 0, "every malformed reading was dropped and counted"
    # A subscriber gets a message published while it listens without the retain flag, retained or not.
    foreign = sum(1 for t, p, _ in sent if p and lab_topics.route(t).key in COMMAND_KEYS)
    assert sum(plant.failsafe.hygiene.foreign.values()) == foreign, "every foreign command was noticed"

    result = lab.stop()
    fuzzed = {(t, p) for t, p, _ in sent}
    ours = [(t, p) for t, p, _ in spy.messages if (t, p) not in fuzzed and lab_topics.route(t) is not None
            and lab_topics.route(t).key in COMMAND_KEYS]
    assert unsafe_payloads(ours, HOUSE, lab_topics, mode) == [], "every command on the wire is inside the envelope"
    allowed = MODE_KEYS[mode]
    assert {lab_topics.route(t).key for t, p in ours if p} <= allowed, f"{mode.name} published beyond its gate"
    if mode is RolloutMode.FULL:
        assert {lab_topics.route(t).key for t, p in ours if p} == allowed, "commands kept flowing"
    accepted_keys = {d.topic for d in sims.accepted()}
    assert {lab_topics.route(t).key for t in accepted_keys} <= allowed
    assert result.meta["status"] == "interrupted" and result.meta["intervals"] >= 1
