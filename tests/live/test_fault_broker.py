"""docs/failsafe.md §3 scenarios 1–3: the broker crashes, freezes or restarts under a running controller.

The controller is the real live runner (commissioning controller, 1 s decisions, 5 s leases,
keepalive 2 s) in a thread; the devices are ``hardware.faultlab`` simulators logging every
command they receive. The broker is a real Mosquitto killed (SIGKILL), frozen (SIGSTOP — a
partition without a TCP reset) or restarted under them.
"""

from __future__ import annotations

import json
import random
import time

import pytest
from live_helpers import wait_for

from hardware.failsafe.watchdog import LinkState
from hardware.faultlab.metrics import Outage, replayed_after_outage, stale_deliveries, switching_violations
from twin.config import reference_house

HOUSE = reference_house()
KEEPALIVE_S = 2
T_DETECT_S = 2 * KEEPALIVE_S + 1  # docs/failsafe.md F1/F3



def assert_reread_before_commanding(sims, lab, back_mono: float) -> None:
    """After the broker returned, no device got a command before it had reported its status anew."""
    running = lab.wait_state(LinkState.RUNNING, 15, after=back_mono)
    for device in sims.devices:
        first = next((d for d in sims.deliveries if d.device == device and d.recv_mono > back_mono), None)
        if first is None:
            continue
        assert first.recv_mono > running.mono_s, f"{device} commanded before the controller was RUNNING again"
        reported = [t for t, name in sims.status_published if name == device and back_mono < t < first.recv_mono]
        assert reported, f"{device} was commanded before it reported its status after the outage"


def test_broker_crash_safe_at_once_nothing_replayed_devices_reread(broker, make_sims, make_lab):
    sims = make_sims()
    lab = make_lab()
    rng = random.Random(7)
    outages = []
    for cycle in range(3):
        time.sleep(rng.uniform(1.0, 2.0))  # a random phase of the 1 s decision cycle
        if cycle == 2:
            broker.freeze()  # commands go unacknowledged into a frozen broker, then it crashes:
            time.sleep(0.6)  # the purge must keep paho from replaying them to the new one
        fault_wall, fault_mono = time.time(), time.monotonic()
        broker.kill()
        safe = lab.wait_state(LinkState.SAFE, T_DETECT_S, after=fault_mono - 0.7)
        assert safe.mono_s - fault_mono < T_DETECT_S
        time.sleep(0.5)
        broker.start()
        back_wall, back_mono = time.time(), time.monotonic()
        outages.append(Outage("kill", fault_wall, back_wall))
        assert_reread_before_commanding(sims, lab, back_mono)
        wait_for(lambda b=back_mono: any(d.recv_mono > b for d in sims.accepted()), 10, "commands after recovery")
    time.sleep(1.0)
    result = lab.stop()
    assert replayed_after_outage(sims.deliveries, outages) == 0, "a command from before a crash arrived after it"
    assert not any(switching_violations(sims.changes, HOUSE.safety).values()), "no switching after an outage"
    assert lab.plant.failsafe.watchdog.purged > 0, "the frozen-then-killed cycle left unacknowledged commands"
    assert all(d.result == "accepted" for d in sims.deliveries), {d.result for d in sims.deliveries}
    states = [s["state"] for s in result.meta["link_states"]]
    assert states.count("safe") == 3 and states[-1] == "running"


def test_broker_freeze_detected_within_two_keepalives_and_late_commands_refused(broker, make_sims, make_lab):
    sims = make_sims()
    lab = make_lab()
    time.sleep(1.3)
    freeze_wall, freeze_mono = time.time(), time.monotonic()
    broker.freeze()
    safe = lab.wait_state(LinkState.SAFE, T_DETECT_S + 1, after=freeze_mono)
    assert safe.mono_s - freeze_mono <= T_DETECT_S, "a partition is noticed within 2 × keepalive + 1 s"
    assert "echo" in safe.reason or "lost" in safe.reason
    last_sent = max(p.wall_s for p in lab.plant.failsafe.outbox.published)
    assert last_sent - freeze_wall <= lab.config.failsafe.fresh_link_s + 0.3, "commands stop once echoes stop"
    time.sleep(3 * KEEPALIVE_S - (time.monotonic() - freeze_mono))
    # Meanwhile every device fell back to its own rule: no heartbeat reached it.
    assert set(sims.sources().values()) == {"local"}
    broker.thaw()
    thaw_wall, thaw_mono = time.time(), time.monotonic()
    running = lab.wait_state(LinkState.RUNNING, 15, after=thaw_mono)
    wait_for(lambda: any(d.recv_mono > running.mono_s for d in sims.accepted()), 5, "commands after recovery")
    lab.stop()
    late = [d for d in sims.deliveries if d.recv_wall > thaw_wall and d.age_s is not None and d.age_s > 2.0]
    assert all(d.result in ("stale", "no_heartbeat") for d in late), [(d.result, d.age_s) for d in late]
    assert stale_deliveries(sims.deliveries, 2.0)[0] == 0, "no device acted on a command held up in the broker"
    assert replayed_after_outage(sims.deliveries, [Outage("freeze", freeze_wall, thaw_wall)]) == 0


@pytest.mark.parametrize("persistence", [True, False], ids=["persistent", "volatile"])
def test_broker_restart_old_retained_status_is_not_acted_on(tmp_path, make_sims, persistence):
    from hardware.config import TopicsConfig
    from hardware.faultlab.devices import DeviceSims
    from hardware.faultlab.harness import LabController, lab_config
    from hardware.wire.local_broker import LocalBroker
    from twin.config import reference_house

    with LocalBroker(persistence=persistence) as broker:
        house = reference_house()
        sims = DeviceSims(house, TopicsConfig().topic_map(house.room_names), broker.host, broker.port).start()
        lab = LabController(lab_config(broker.host, broker.port, state_file=tmp_path / "state.json"),
                            tmp_path / "run").start()
        try:
            time.sleep(1.0)
            all_feeds = set(sims.settings.feeds)
            sims.stop_feed(*all_feeds)  # the devices go quiet; what stays is retained status
            time.sleep(lab.config.max_age.battery_s + 0.5)  # ... older than its max age
            broker.stop()
            broker.start()
            back = time.monotonic()
            reconciling = lab.wait_state(LinkState.RECONCILING, 10, after=back)
            time.sleep(2.0)
            assert lab.plant.failsafe.state is LinkState.RECONCILING, "old retained status is not a re-read"
            assert not [d for d in sims.deliveries if d.recv_mono > back], "nothing commanded on stale status"
            births = [json.loads(p)["state"] for p in _retained_status(broker)]
            assert births == ["online"], "birth re-published (retained) after the restart"
            sims.start_feed(*all_feeds)
            running = lab.wait_state(LinkState.RUNNING, 10, after=reconciling.mono_s)
            wait_for(lambda: any(d.recv_mono > running.mono_s for d in sims.accepted()), 5, "commands resume")
        finally:
            lab.stop()
            sims.stop()


def _retained_status(broker) -> list[bytes]:
    """What a newcomer finds retained on ``pems/status``."""
    import paho.mqtt.client as paho

    got = []
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_message = lambda c, u, m: got.append(m.payload) if m.retain else None
    client.connect(broker.host, broker.port)
    client.subscribe("pems/status", qos=1)
    client.loop_start()
    time.sleep(0.4)
    client.loop_stop()
    client.disconnect()
    return got


def test_after_a_crash_relays_stay_on_their_own_rules_for_their_minimum_time(broker, make_sims, make_lab):
    """A relay bridge may fall back *after* the status the controller reconciled on (its heartbeat
    timeout runs on while the broker restarts): re-asserting that status would switch it straight
    back, inside its minimum off (or on) time. So the relays are left alone for that time; the
    battery and the charger are commanded as soon as the link is RUNNING again."""
    from dataclasses import replace

    hold_s = 4.0
    house = replace(HOUSE, safety=replace(HOUSE.safety, relay_min_on_s=hold_s, relay_min_off_s=hold_s))
    sims = make_sims()
    lab = make_lab(house=house)
    wait_for(lambda: any(d.device.startswith("heating.") for d in sims.accepted()), 10, "relay commands before")
    time.sleep(1.3)
    fault_mono = time.monotonic()
    broker.kill()
    lab.wait_state(LinkState.SAFE, T_DETECT_S, after=fault_mono)
    time.sleep(0.5)
    broker.start()
    running = lab.wait_state(LinkState.RUNNING, 15, after=fault_mono)
    wait_for(lambda: any(d.device.startswith("heating.") and d.recv_mono > running.mono_s for d in sims.accepted()),
             hold_s + 5, "relay commands after the hold")
    lab.stop()
    after = [d for d in sims.accepted() if d.recv_mono > running.mono_s]
    first_relay = min(d.recv_mono for d in after if d.device.startswith("heating."))
    first_other = min(d.recv_mono for d in after if not d.device.startswith("heating."))
    assert first_relay - running.mono_s >= hold_s - 1.0, "a relay was commanded before its minimum time was over"
    assert first_other - running.mono_s < 2.0, "the battery and the charger are commanded at once"
    assert not any(switching_violations(sims.changes, house.safety).values())
