"""docs/failsafe.md §3 scenarios 5, 7, 8, 10, 11: stale feeds, hostile timing, clock skew, manual override,
retained commands.

The controller is the real live runner in a thread (``hardware.faultlab.harness``), the devices
the ``hardware.faultlab`` simulators; what reaches them is read from their own logs and from an
independent subscriber on the broker, not from the controller's view of itself.
"""

from __future__ import annotations

import json
import resource
import threading
import time

from conftest import publisher
from live_helpers import wait_for

from hardware.failsafe.watchdog import LinkState
from hardware.faultlab.devices import SimSettings
from hardware.faultlab.metrics import duplicate_accepted, unsafe_payloads
from twin.config import reference_house
from twin.contracts import BatteryCommand, BatteryMode, Command, Observation
from twin.safety import RolloutMode

HOUSE = reference_house()
#: Devices whose readings never look fresh: do not wait long for them at the start.
QUICK_START = {"control": {"startup_wait_s": 0.5}, "failsafe": {"reconcile_timeout_s": 1.0}}


class Greedy:
    """Wants the battery discharging to the grid and the car at full power, always."""

    def decide(self, obs: Observation) -> Command:
        return Command(until=obs.after(300), relay_on=tuple(bool(x) for x in obs.room_temp_c < 21.0),
                       battery=BatteryCommand(BatteryMode.DISCHARGE_TO_GRID, 3.0),
                       ev_power_kw=HOUSE.ev_charger.max_power_kw)


def alerts(spy, kind: str) -> list[dict]:
    return [a for a in (json.loads(p) for p in spy.on("pems/alerts")) if a["kind"] == kind]


def test_stale_battery_and_grid_feeds_make_the_plan_conservative(make_sims, make_lab, spy, lab_topics):
    sims = make_sims()
    lab = make_lab(controller=Greedy(), controller_name="greedy")
    wait_for(lambda: sims.devices["battery"].state == "discharge_to_grid" and sims.devices["ev"].state == "16 A",
             5, "the greedy plan to reach the devices")
    stopped = time.monotonic()
    sims.stop_feed("battery_status", "grid_status")
    max_age = lab.config.max_age.battery_s
    conservative = wait_for(lambda: sims.devices["battery"].state == "self_consumption"
                            and sims.devices["ev"].state == "6 A", max_age + 3, "a conservative plan")
    assert conservative - stopped <= max_age + lab.config.control.decision_interval_s + 0.5, \
        "within one decision after the readings passed their max age"
    time.sleep(2.0)
    # The other loops went on: every room still gets its lease.
    recent = {d.device for d in sims.accepted() if d.recv_mono > conservative + 0.5}
    assert {f"heating.{r}" for r in HOUSE.room_names} <= recent
    discharge = [p for p in spy.on("growatt/battery/set_mode") if b"discharge_to_grid" in p]
    late = [p for p in discharge if json.loads(p)["ts"] > _iso(lab, conservative)]
    assert late == [], "no DISCHARGE_TO_GRID on the wire once the SOC was stale"
    assert unsafe_payloads([(t, p) for t, p, _ in spy.messages], HOUSE, lab_topics) == []


def _iso(lab, mono: float) -> str:
    return lab.plant.clock.timestamp(lab.plant.clock.now_s() - (time.monotonic() - mono)).isoformat()


def test_manual_override_is_not_fought_and_is_logged(make_sims, make_lab, spy):
    sims = make_sims()
    lab = make_lab()
    time.sleep(1.5)
    living = sims.devices["heating.living"]
    overridden = time.monotonic()
    sims.override("living", on=living.state != "on")
    wait_for(lambda: lab.plant.events.of_kind(_kind("override")), 3, "the override event")
    time.sleep(3.0)
    after = [d for d in sims.deliveries if d.device == "heating.living" and d.recv_mono > overridden + 0.3]
    assert after == [], "the controller does not re-command a room within its hold time"
    assert living.source == "manual"
    others = {d.device for d in sims.accepted() if d.recv_mono > overridden + 0.3}
    assert "heating.kitchen" in others and "battery" in others, "the rest of the house is still commanded"
    assert [a["device"] for a in alerts(spy, "override")] == ["heating.living"]
    assert lab.plant.failsafe.readback.held_devices() == ["heating.living"]


def _kind(name: str):
    from hardware.failsafe.events import EventKind

    return EventKind(name)


def test_retained_commands_are_cleared_and_never_obeyed(broker, make_sims, make_lab, spy):
    ghost = json.dumps({"state": "on", "until": "2099-01-01T00:00:00+00:00", "ttl_s": 3600, "seq": 2**62,
                        "ts": "2099-01-01T00:00:00+00:00"})
    rogue = publisher(broker)
    rogue.publish("loxone/heating/bath_up/set", ghost, qos=1, retain=True).wait_for_publish(5)
    rogue.loop_stop()
    rogue.disconnect()
    sims = make_sims()
    time.sleep(0.3)
    assert [d.result for d in sims.deliveries if d.device == "heating.bath_up"] == ["retained"]
    make_lab(mode=RolloutMode.FULL)
    wait_for(lambda: alerts(spy, "retained_command"), 5, "the alert")
    cleared = [p for t, p, r in spy.messages if t == "loxone/heating/bath_up/set" and r is False and not p]
    assert cleared, "cleared with a zero-length retained publish"
    newcomer = publisher(broker, "newcomer")
    seen = []
    newcomer.on_message = lambda c, u, m: seen.append(m.payload)
    newcomer.subscribe("loxone/heating/+/set", qos=1)
    time.sleep(0.5)
    newcomer.loop_stop()
    newcomer.disconnect()
    assert all(d.seq != 2**62 for d in sims.accepted()), "the ghost never took effect"
    assert not [p for p in seen if b"2099" in p], "nothing retained is left for the next subscriber"


def test_advisory_mode_alerts_but_does_not_touch_retained_commands(broker, make_sims, make_lab, spy):
    rogue = publisher(broker)
    rogue.publish("ev/charger/set", b'{"enabled": true}', qos=1, retain=True).wait_for_publish(5)
    make_sims()
    make_lab(mode=RolloutMode.ADVISORY)
    wait_for(lambda: alerts(spy, "retained_command"), 5, "the alert")
    time.sleep(0.5)
    assert [p for t, p, _ in spy.messages if t == "ev/charger/set"] == [b'{"enabled": true}'], \
        "ADVISORY publishes nothing on a command topic, not even a clear"
    rogue.publish("ev/charger/set", b"", qos=1, retain=True).wait_for_publish(5)
    rogue.loop_stop()
    rogue.disconnect()


def test_clock_skew_beyond_the_limit_is_refused_and_alerted(make_sims, make_lab, spy):
    sims = make_sims(SimSettings(skew_s=-300.0))
    lab = make_lab(extra=QUICK_START)
    wait_for(lambda: len(alerts(spy, "clock_skew")) >= len(sims.devices), 5, "a skew alert per device")
    time.sleep(1.5)
    assert sims.accepted() == [], "a device whose clock is 300 s off is not commanded"
    skews = lab.plant.failsafe.skew.estimates()
    assert all(abs(skews[d] + 300.0) < 1.0 for d in sims.devices), skews


def test_clock_skew_ahead_is_refused_too(make_sims, make_lab, spy):
    sims = make_sims(SimSettings(skew_s=300.0))
    lab = make_lab(extra=QUICK_START, running=False)
    wait_for(lambda: len(alerts(spy, "clock_skew")) >= len(sims.devices), 8, "a skew alert per device")
    time.sleep(1.0)
    assert sims.accepted() == []
    assert lab.plant.store.drops.by_reason().get("from_future", 0) > 0


def test_a_small_skew_still_gives_leases_of_the_controllers_length(make_sims, make_lab):
    sims = make_sims(SimSettings(skew_s=20.0, honour_will=False, heartbeat_timeout_s=float("inf")))
    lab = make_lab()
    wait_for(lambda: len(sims.accepted()) >= 36, 5, "commands to a device 20 s ahead")
    lab.stop()  # the goodbye is ignored by these devices: only the lease ends their obedience
    last = max(d.recv_mono for d in sims.accepted())
    ended = wait_for(lambda: set(sims.sources().values()) == {"local"}, 8, "the leases to end")
    assert ended - last <= lab.config.control.lease_s + 1.0


def test_duplicates_replays_and_bursts_take_effect_at_most_once(broker, make_sims, make_lab, spy):
    sims = make_sims()
    lab = make_lab()
    time.sleep(1.5)
    rogue = publisher(broker)
    # QoS 1 may deliver twice, and anyone with write access may replay: the same and an older command again.
    sent = spy.on("loxone/heating/living/set")
    for payload in (sent[-1], sent[-1], sent[0]):
        rogue.publish("loxone/heating/living/set", payload, qos=1).wait_for_publish(5)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stop = threading.Event()
    bursts = {"n": 0}

    def burst() -> None:  # 1,000 status messages per second for three seconds
        junk = [b'{"soc": 0.5, "power_kw": 0.0}', b"garbage", b'{"temp_c": 21.0}', b"\xff" * 300]
        topics = ["growatt/battery/status", "loxone/room/living/temperature", "growatt/grid/status", "ev/car/status"]
        t0 = time.monotonic()
        while not stop.is_set() and time.monotonic() - t0 < 3.0:
            for k in range(100):
                rogue.publish(topics[k % 4], junk[k % 4], qos=0)
            bursts["n"] += 100
            time.sleep(max(0.0, t0 + bursts["n"] / 1000.0 - time.monotonic()))

    thread = threading.Thread(target=burst)
    thread.start()
    thread.join(10)
    time.sleep(1.0)
    assert bursts["n"] >= 2900
    assert lab.plant.failsafe.state is LinkState.RUNNING, "the link survived the burst"
    during = [d for d in sims.accepted() if d.device == "battery"]
    assert len(during) >= 4, "decisions went on"
    result = lab.stop()
    rogue.loop_stop()
    rogue.disconnect()
    assert duplicate_accepted(sims.deliveries) == 0
    replays = [d for d in sims.deliveries if d.device == "heating.living" and d.result == "old_seq"]
    assert len(replays) >= 3, "the duplicate and the replayed old command were refused"
    assert lab.plant.failsafe.link is None or lab.plant.failsafe.link.in_flight <= lab.config.broker.max_queued_messages
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert growth_kib < 64 * 1024, f"memory grew by {growth_kib} KiB under the burst"
    assert result.meta["dropped_messages"].get("json_invalid", 0) > 500
    assert result.meta["events"].get("foreign_command", 0) >= 1, "the replays were noticed as foreign commands"
