"""The payload schemas: strict at the boundary, and nothing but PayloadError gets out of them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.wire.schemas import (
    COMMAND_SCHEMAS,
    MAX_PAYLOAD_BYTES,
    READING_SCHEMAS,
    BatteryStatus,
    ChargerCommand,
    HeatingCommand,
    PayloadError,
    RoomTemperature,
    dump,
    parse_payload,
)

CET = timezone(timedelta(hours=1))
T0 = datetime(2024, 1, 15, 6, 0, tzinfo=CET)


@pytest.mark.parametrize(("payload", "reason"), [
    (b"not json", "json_invalid"),
    (b"\xff\xfe", "json_invalid"),
    (b"[]", "model_type"),
    (b'{"soc": NaN, "power_kw": 0}', "finite_number"),
    (b'{"soc": 0.5, "power_kw": Infinity}', "finite_number"),
    (b'{"soc": 1.4, "power_kw": 0}', "less_than_equal"),
    (b'{"soc": "0.5", "power_kw": 0}', "float_type"),
    (b'{"soc": true, "power_kw": 0}', "float_type"),
    (b'{"soc": 0.5}', "missing"),
    (b'{"soc": 0.5, "power_kw": 0, "boost": 1}', "extra_forbidden"),
    (b'{"soc": 0.5, "power_kw": 0, "mode": "turbo"}', "literal_error"),
    (b'{"soc": 0.5, "power_kw": 0, "ts": "2024-01-15T06:00:00"}', "timezone_aware"),
    (b'{"soc": 0.5, "power_kw": 0, "ts": 1705294800}', "datetime_type"),
    (b" " * (MAX_PAYLOAD_BYTES + 1), "too_large"),
])
def test_bad_battery_status_is_refused_with_a_reason(payload, reason):
    with pytest.raises(PayloadError) as info:
        parse_payload(BatteryStatus, payload)
    assert info.value.reason == reason


def test_floats_and_times_round_trip_exactly():
    value = 0.1 + 0.2
    assert parse_payload(RoomTemperature, dump(RoomTemperature(temp_c=value, ts=T0))) == RoomTemperature(
        temp_c=value, ts=T0)
    command = HeatingCommand(state="on", until=T0 + timedelta(minutes=15), ttl_s=900.0, seq=7, ts=T0)
    assert parse_payload(HeatingCommand, dump(command)) == command


@pytest.mark.parametrize(("enabled", "current_a", "ok"), [
    (True, 6.0, True), (True, 32.0, True), (True, 16.5, True), (False, 0.0, True),
    (True, 5.9, False), (True, 32.1, False), (True, 0.0, False), (False, 10.0, False),
])
def test_charger_current_is_6_to_32_amps_or_stop(enabled, current_a, ok):
    payload = json.dumps({"enabled": enabled, "current_a": current_a, "until": T0.isoformat(), "ttl_s": 60,
                          "seq": 1}).encode()
    if ok:
        assert parse_payload(ChargerCommand, payload).current_a == current_a
    else:
        with pytest.raises(PayloadError):
            parse_payload(ChargerCommand, payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12)
field_names = st.sampled_from(["soc", "power_kw", "temp_c", "state", "ts", "until", "ttl_s", "seq", "mode",
                               "enabled", "current_a", "connected", "energy_kwh", "departure"])
objects = st.dictionaries(field_names, json_values, max_size=8)


@settings(max_examples=300, deadline=None)
@given(schema=st.sampled_from([*READING_SCHEMAS.values(), *COMMAND_SCHEMAS.values()]),
       payload=st.one_of(st.binary(max_size=200), objects.map(lambda o: json.dumps(o).encode())))
def test_any_payload_either_fits_or_raises_payload_error(schema, payload):
    try:
        parsed = parse_payload(schema, payload)
    except PayloadError as exc:
        assert exc.reason
        return
    for name, value in parsed.model_dump().items():  # what passes is finite and typed
        if isinstance(value, float):
            assert value == value and abs(value) != float("inf"), name
