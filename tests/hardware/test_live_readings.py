"""Readings age and go stale; what is refused is counted by topic and reason."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone

from hardware.plant.clock import HouseClock
from hardware.plant.readings import ReadingStore
from hardware.wire.schemas import BatteryStatus, RoomTemperature

CET = timezone(timedelta(hours=1))
ORIGIN = datetime(2024, 1, 15, tzinfo=CET)


def store_at(house_s: float, speed: float = 1.0) -> ReadingStore:
    """A store whose house clock shows ``house_s`` now."""
    clock = HouseClock(ORIGIN, time.time() - house_s / speed, speed)
    return ReadingStore(clock, max_clock_skew_s=30.0)


def stamp(house_s: float) -> str:
    return (ORIGIN + timedelta(seconds=house_s)).isoformat()


def test_age_is_the_older_of_receipt_and_device_time():
    store = store_at(1000.0)
    assert store.offer("t", RoomTemperature, "room", f'{{"temp_c": 21, "ts": "{stamp(900)}"}}'.encode(), False)
    age = store.age_s(store.get("t"))
    assert 99 < age < 102, "stamped 100 s ago, received just now"
    assert store.fresh("t", 150.0).temp_c == 21
    assert store.fresh("t", 50.0) is None


def test_age_runs_at_the_house_clock_speed():
    store = store_at(0.0, speed=600.0)
    store.offer("t", RoomTemperature, "room", b'{"temp_c": 21}', False)
    time.sleep(0.05)
    assert store.age_s(store.get("t")) >= 30.0, "50 ms at 600x is 30 house seconds"


def test_retained_without_a_device_time_never_counts_as_fresh():
    store = store_at(0.0)
    store.offer("t", RoomTemperature, "room", b'{"temp_c": 21}', True)
    assert math.isinf(store.age_s(store.get("t")))
    assert store.fresh("t", 1e9) is None
    store.offer("t", RoomTemperature, "room", f'{{"temp_c": 22, "ts": "{stamp(-5)}"}}'.encode(), True)
    assert store.fresh("t", 60.0).temp_c == 22, "a retained reading with a device time has a known age"


def test_future_stamps_and_reordering_are_dropped_and_counted():
    store = store_at(1000.0)
    ok = f'{{"soc": 0.5, "power_kw": 1, "ts": "{stamp(1000)}"}}'.encode()
    assert store.offer("b", BatteryStatus, "bat", ok, False)
    assert not store.offer("b", BatteryStatus, "bat", f'{{"soc": 0.6, "power_kw": 1, "ts": "{stamp(1100)}"}}'.encode(),
                           False)
    assert not store.offer("b", BatteryStatus, "bat", f'{{"soc": 0.4, "power_kw": 1, "ts": "{stamp(990)}"}}'.encode(),
                           False)
    assert not store.offer("b", BatteryStatus, "bat", b'{"soc": 1.5, "power_kw": 1}', False)
    assert store.get("b").payload.soc == 0.5, "the last good value stays until it expires"
    assert store.drops.by_reason() == {"from_future": 1, "out_of_order": 1, "less_than_equal": 1}
    assert store.drops.total("bat") == 3


def test_wait_until_returns_when_the_reading_arrives():
    import threading

    store = store_at(0.0)
    threading.Timer(0.05, lambda: store.offer("t", RoomTemperature, "room", b'{"temp_c": 20}', False)).start()
    t0 = time.monotonic()
    assert store.wait_until(lambda: store.get("t") is not None, 2.0)
    assert time.monotonic() - t0 < 1.0
    assert not store.wait_until(lambda: False, 0.05)


def test_implausible_stamps_are_dropped_at_the_boundary_and_tell_nothing_about_the_clock():
    clock = HouseClock(ORIGIN, time.time() - 1000.0, 1.0)
    offsets: list[float] = []
    store = ReadingStore(clock, max_clock_skew_s=30.0, max_implausible_s=3600.0)
    store.on_stamp = lambda key, offset_s, retained: offsets.append(offset_s)
    for ts in ("9999-12-31T23:59:59+00:00", "1970-01-01T00:00:00+00:00", stamp(1000 + 7200), stamp(1000 - 7200)):
        assert not store.offer("b", BatteryStatus, "bat", f'{{"soc": 0.5, "power_kw": 1, "ts": "{ts}"}}'.encode(),
                               False)
    assert offsets == [], "no implausible stamp reaches the clock-skew estimate"
    assert store.drops.by_reason() == {"implausible_timestamp": 4}
    assert store.offer("b", BatteryStatus, "bat", f'{{"soc": 0.5, "power_kw": 1, "ts": "{stamp(1000)}"}}'.encode(),
                       False), "the next honest reading is taken"
    assert store.offer("r", BatteryStatus, "bat", f'{{"soc": 0.5, "power_kw": 1, "ts": "{stamp(-7200)}"}}'.encode(),
                       True), "a retained reading may be old (it is history, and never fresh)"
