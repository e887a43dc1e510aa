"""The emulated devices fall back to their own rules when the controller goes: at once on its last
will, or when their leases run out if it merely falls silent (docs/failsafe.md: leases, birth/last will).

The controller is a real `pems live` process that we freeze (SIGSTOP: silent, still connected)
or kill (SIGKILL: the broker publishes its last will); the emulator runs in this process so its
devices can be inspected. What the devices report is checked on the wire, by a spy.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from datetime import datetime

import pytest
from live_helpers import wait_for

from hardware.config import BrokerConfig, TopicsConfig
from hardware.emulator.emulated_house import HouseEmulator, scenario_window
from hardware.live.parity import live_config_text, pems_executable
from twin.config import reference_house
from twin.house import NO_LEASE
from twin.registry import load_scenario

#: Real time through a real broker: seconds, not milliseconds.
pytestmark = pytest.mark.slow

SPEED = 300.0  # the rule-based controller's 900 s leases last 3 wall seconds


@pytest.fixture
def world(broker, tmp_path):
    house = reference_house()
    window = scenario_window(load_scenario("winter-week-v1"), "2024-01-15T06:00", 3.0)
    emulator = HouseEmulator(house, window, BrokerConfig(host=broker.host, port=broker.port),
                             TopicsConfig().topic_map(house.room_names), speed=SPEED, start_delay_s=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=emulator.run, kwargs={"stop": stop, "linger_s": 0.0}, daemon=True)
    config = tmp_path / "live.toml"
    config.write_text(live_config_text(broker, "winter-week-v1", SPEED, keepalive_s=60))
    live = subprocess.Popen([pems_executable(), "live", "--config", str(config), "--controller", "rule-based",
                             "--mode", "full", "--out", str(tmp_path / "run"), "--speed", str(SPEED), "--no-plots"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    thread.start()
    yield emulator, live
    stop.set()
    if live.poll() is None:
        live.kill()
    live.wait(10)
    thread.join(10)



def accepted(emulator: HouseEmulator) -> list:
    return [r for r in emulator.records if r.result == "accepted"]


def heating_sources(spy, emulator: HouseEmulator, after_s: float) -> set[str]:
    """``source`` of every heating status stamped after house second ``after_s``."""
    sources = set()
    for j in range(len(emulator.house.rooms)):
        for payload in spy.on(emulator.topics.topic("heating_status", j)):
            status = json.loads(payload)
            if emulator.clock.seconds(datetime.fromisoformat(status["ts"])) > after_s:
                sources.add(status["source"])
    return sources


def test_last_will_hands_every_device_back_at_once(world, spy):
    emulator, live = world
    wait_for(lambda: len(accepted(emulator)) >= 2 * 18, 60, "two decisions to reach the devices")
    assert emulator.relays.leased(emulator.twin.t_s).all() and emulator.battery_lease.active(emulator.twin.t_s)
    lease_end_s = max(s.end_s for s in emulator.relays.slots)
    live.send_signal(signal.SIGKILL)  # no goodbye: the broker publishes the will
    wait_for(lambda: any(r.result == "controller_offline" for r in emulator.records), 5, "the last will")
    offline_s = next(r.house_s for r in emulator.records if r.result == "controller_offline")
    assert offline_s < lease_end_s, "the will came before the leases would have ended"
    assert not emulator.relays.leased(offline_s).any()
    assert not emulator.battery_lease.active(offline_s) and not emulator.ev_lease.active(offline_s)
    assert emulator.twin.state.relay_lease_s == NO_LEASE, "the room thermostats rule again"
    wait_for(lambda: heating_sources(spy, emulator, offline_s) == {"local"}, 5, "relays reporting local rule")


def test_a_silent_controller_loses_its_devices_when_the_leases_end(world, spy):
    emulator, live = world
    wait_for(lambda: len(accepted(emulator)) >= 2 * 18, 60, "two decisions to reach the devices")
    live.send_signal(signal.SIGSTOP)  # frozen: connected (keepalive 60 s), no will, no renewals
    try:
        time.sleep(0.2)
        lease_end_s = max(s.end_s for s in emulator.relays.slots)
        count = len(emulator.records)
        wait_for(lambda: emulator.twin.t_s > lease_end_s + 60, 3 * 900 / SPEED + 5, "the leases to run out")
        assert len(emulator.records) == count, "nothing arrived from the frozen controller"
        assert not any(r.result == "controller_offline" for r in emulator.records), "no will: it is only silent"
        now = emulator.twin.t_s
        assert not emulator.relays.leased(now).any() and not emulator.battery_lease.active(now)
        assert emulator.twin.state.relay_lease_s == NO_LEASE and emulator.twin.state.ev_request_kw is None
        wait_for(lambda: heating_sources(spy, emulator, lease_end_s) == {"local"}, 5, "relays reporting local rule")
    finally:
        live.send_signal(signal.SIGKILL)
