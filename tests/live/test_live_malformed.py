"""Malformed and out-of-range payloads are dropped and counted; the loop never stops for them."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
from conftest import publisher
from live_helpers import run_against_emulator

from twin.safety import RolloutMode

JUNK = [
    b"not json",
    b'{"soc": NaN, "power_kw": 0}',
    b'{"soc": 1.4, "power_kw": 0}',
    b'{"soc": 0.5, "power_kw": 0, "turbo": true}',
    b'{"soc": "0.5", "power_kw": 0}',
    b'{"soc": true, "power_kw": 0}',
    b"\xff\xfe\x00\x01",
    b"[]",
    b"x" * 1_000_000,
    b'{"soc": 0.5, "power_kw": 1e308}',
    b'{"soc": 0.5, "power_kw": 0, "ts": "2099-01-01T00:00:00+00:00"}',
    b'{"soc": 0.5, "power_kw": 0, "ts": "2024-01-15T06:00:00"}',
]
ROOM_JUNK = [b'{"temp_c": 500}', b'{"temp_c": null}', b"{}", b'{"temp_c": Infinity}']
PV_JUNK = [b'{"power_kw": -3.0}']
COMMAND_JUNK = [
    ("ev/charger/set", b'{"enabled": true, "current_a": 80, "until": "2024-01-15T07:00:00+01:00", '
                       b'"ttl_s": 60, "seq": 1}'),
    ("growatt/battery/set_mode", b'{"mode": "turbo", "until": "2024-01-15T07:00:00+01:00", "ttl_s": 60, '
                                 b'"seq": 1}'),
    ("loxone/heating/living/set", b"\x00\x01"),
]


def test_junk_is_dropped_counted_and_the_run_goes_on(broker, tmp_path):
    rogue = publisher(broker)
    # A retained command left on the broker: the emulated relay must ignore it (docs/failsafe.md F12).
    ghost = json.dumps({"state": "on", "until": "2024-01-15T08:00:00+01:00", "ttl_s": 3600, "seq": 2**62})
    rogue.publish("loxone/heating/bath_up/set", ghost, qos=1, retain=True).wait_for_publish(5)
    stop = threading.Event()

    def spray() -> None:
        k = 0
        while not stop.is_set():
            rogue.publish("growatt/battery/status", JUNK[k % len(JUNK)], qos=0)
            rogue.publish("loxone/room/living/temperature", ROOM_JUNK[k % len(ROOM_JUNK)], qos=0)
            rogue.publish("growatt/pv/status", PV_JUNK[0], qos=0)
            topic, payload = COMMAND_JUNK[k % len(COMMAND_JUNK)]
            rogue.publish(topic, payload, qos=0)
            k += 1
            time.sleep(0.01)

    thread = threading.Thread(target=spray, daemon=True)
    thread.start()
    try:
        result, emulator = run_against_emulator(broker, tmp_path, "rule-based", RolloutMode.FULL, hours=0.5)
    finally:
        stop.set()
        thread.join(5)
        rogue.publish("loxone/heating/bath_up/set", b"", qos=1, retain=True).wait_for_publish(5)
        rogue.loop_stop()
        rogue.disconnect()

    log = result.log
    assert len(log) == 6 and result.meta["status"] == "finished"
    dropped = result.meta["dropped_messages"]
    for reason in ("json_invalid", "finite_number", "less_than_equal", "extra_forbidden", "float_type",
                   "too_large", "implausible_timestamp", "timezone_aware", "greater_than_equal", "model_type",
                   "missing"):
        assert dropped.get(reason, 0) > 0, f"no drop counted as {reason}: {dropped}"
    # What the controller saw and logged is the emulated house, never the junk.
    assert log["battery_soc"].between(0.1, 0.9).all()
    temps = log[[c for c in log.columns if c.startswith("temp_c.")]].to_numpy()
    assert np.isfinite(temps).all() and (temps < 40).all()
    assert log["pv_kwh"].ge(0).all()
    # The emulated devices refused the junk commands and the retained ghost, and took the real ones.
    results = {r.result for r in emulator.records}
    assert "retained" in results and "accepted" in results
    assert any(r.startswith("invalid") for r in results)
    bath = [r for r in emulator.records if r.topic == "loxone/heating/bath_up/set" and r.result == "accepted"]
    assert bath and all(r.seq < 2**62 for r in bath), "the retained command never took effect"
