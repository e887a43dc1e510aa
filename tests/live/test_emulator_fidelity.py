"""The emulator behaves as the real bridges should: it falls back on heartbeat loss, and re-announces its clock.

A frozen controller (or a frozen broker) leaves no last will: the emulated devices must give
up their leases when the controller's heartbeats stop, not when the will finally arrives. A
broker restarted without persistence has forgotten the retained clock: the emulator announces
it again on every reconnection.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

from conftest import publisher
from live_helpers import wait_for

from hardware.config import BrokerConfig, TopicsConfig
from hardware.emulator.emulated_house import HouseEmulator, scenario_window
from hardware.wire.sequence import compose
from twin.config import reference_house
from twin.registry import load_scenario

HOUSE = reference_house()
TOPICS = TopicsConfig().topic_map(HOUSE.room_names)


def _emulator(broker, **kwargs) -> tuple[HouseEmulator, threading.Thread, threading.Event]:
    world = scenario_window(load_scenario("winter-week-v1"), "2024-01-15T06:00", 2.0)
    emulator = HouseEmulator(HOUSE, world, BrokerConfig(host=broker.host, port=broker.port, keepalive_s=2), TOPICS,
                             speed=60.0, start_delay_s=0.2, **kwargs)
    stop = threading.Event()
    thread = threading.Thread(target=emulator.run, kwargs={"stop": stop, "linger_s": 0.0}, daemon=True)
    thread.start()
    wait_for(lambda: emulator.clock is not None, 5, "the emulator's clock")
    return emulator, thread, stop


def test_emulated_devices_fall_back_when_the_heartbeats_stop(broker):
    emulator, thread, stop = _emulator(broker, heartbeat_timeout_s=1.0)
    controller = publisher(broker, "silent-controller")
    try:
        for n in range(4):
            beat = {"ts": datetime.now(UTC).isoformat(), "n": n, "session": "s1", "state": "running"}
            controller.publish(TOPICS.topic("heartbeat"), json.dumps(beat), qos=0)
            time.sleep(0.2)
        now = emulator.clock.timestamp(emulator.clock.now_s())
        command = {"mode": "charge_from_grid", "power_kw": 2.0, "until": (now + timedelta(hours=1)).isoformat(),
                   "ttl_s": 3600, "ts": now.isoformat(), "seq": compose(int(time.time()), 1)}
        controller.publish(TOPICS.topic("battery_set"), json.dumps(command), qos=1).wait_for_publish(3)
        wait_for(lambda: any(r.result == "accepted" for r in emulator.records), 3, "the command taken")
        silent = time.monotonic()  # the controller stays connected (no will) but beats no more
        wait_for(lambda: any(r.result == "heartbeat_lost" for r in emulator.records), 5, "the fall-back")
        assert emulator.battery_lease.end_s == float("-inf"), "the lease is given up"
        assert time.monotonic() - silent < 5, "on heartbeat loss, long before the 1-hour lease"
    finally:
        controller.loop_stop()
        controller.disconnect()
        stop.set()
        thread.join(10)


def test_the_emulator_announces_its_clock_again_after_a_broker_restart(broker):
    emulator, thread, stop = _emulator(broker)
    try:
        broker.restart()  # no persistence: the retained clock is gone with it
        seen: list[bytes] = []

        def subscribe() -> bool:
            watcher = publisher(broker, f"watcher-{len(seen)}")
            watcher.on_message = lambda c, u, m: seen.append(m.payload) if m.retain and m.payload else None
            watcher.subscribe(TOPICS.topic("emulator_clock"), qos=1)
            time.sleep(0.5)
            watcher.loop_stop()
            watcher.disconnect()
            return bool(seen)

        wait_for(subscribe, 15, "the retained clock after the restart")
        assert json.loads(seen[-1])["speed"] == 60.0
    finally:
        stop.set()
        thread.join(10)
