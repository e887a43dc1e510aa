"""The fail-safe pieces on their own (no broker): read-back and overrides, persistence, the envelope on
the wire, clock skew, configuration bounds, transport security, and the fault metrics (each shown
a log with the fault it must count)."""

from __future__ import annotations

import json
import math
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from hardware.config import BrokerConfig, FailsafeConfig, TlsConfig, live_config_from_dict
from hardware.devices import LeaseTerms
from hardware.errors import LiveError
from hardware.failsafe.envelope import payload_problems
from hardware.failsafe.events import EventKind, EventLog
from hardware.failsafe.outbox import Published
from hardware.failsafe.persistence import SEQ_HEADROOM, PersistentSequence, PlannedCommand, StateStore
from hardware.failsafe.readback import ReadbackTracker
from hardware.failsafe.skew import SkewMonitor
from hardware.faultlab.devices import Delivery, StateChange
from hardware.faultlab.metrics import (
    Outage,
    duplicate_accepted,
    lost_while_connected,
    replayed_after_outage,
    stale_deliveries,
    switching_violations,
    unsafe_payloads,
)
from hardware.wire.schemas import BatteryStatus, HeatingStatus
from hardware.wire.security import check_transport, is_loopback, transport_problems
from twin.config import SafetyConfig, reference_house
from twin.errors import ConfigError
from twin.safety import RolloutMode, SafetyLayer

HOUSE = reference_house()
T0 = datetime(2024, 1, 15, 6, 0, tzinfo=UTC)


# --- read-back and overrides ------------------------------------------------------------------------

def tracker(**changes) -> tuple[ReadbackTracker, EventLog]:
    events = EventLog()
    config = FailsafeConfig(readback_timeout_s=1.0, readback_retries=1, override_hold_s=60.0, **changes)
    return ReadbackTracker(config, events), events


def relay(state: str, seq: int | None, source: str | None = "pems") -> HeatingStatus:
    return HeatingStatus(state=state, seq=seq, source=source)


def test_a_command_is_confirmed_by_its_sequence_number_and_state():
    rb, events = tracker()
    rb.sent("heating.living", "heating_set", "t", 10, {"state": "on"}, b"", lease_house_s=900, now=0.0)
    rb.on_status("heating.living", relay("off", 9), retained=False, now=0.1)  # a report from before the command
    assert rb.stats.confirmed == 0
    rb.on_status("heating.living", relay("on", 10), retained=False, now=0.2)
    assert rb.stats.confirmed == 1 and rb.stats.latencies_s == [pytest.approx(0.2)]
    assert not rb.held_off("heating.living", now=0.3) and not events.events


def test_no_read_back_means_retries_then_an_alert():
    rb, events = tracker()
    rb.sent("battery", "battery_set", "t", 5, {"mode": "self_consumption"}, b"", lease_house_s=900, now=0.0)
    sent = []
    rb.check(lambda p: sent.append(p.seq) or 6, now=1.5)
    assert sent == [5] and rb.stats.retries == 1
    rb.check(lambda p: sent.append(p.seq) or 7, now=3.0)
    assert rb.stats.missing == 1 and sent == [5], "one retry, then an alert"
    alert = events.take_alerts()
    assert [a.kind for a in alert] == [EventKind.READBACK_MISSING] and alert[0].device == "battery"


def test_a_change_nobody_commanded_is_an_override_held_off():
    rb, events = tracker()
    rb.sent("heating.living", "heating_set", "t", 10, {"state": "on"}, b"", lease_house_s=900, now=0.0)
    rb.on_status("heating.living", relay("on", 10), retained=False, now=0.1)
    rb.on_status("heating.living", relay("off", 10), retained=False, now=5.0)  # the wall switch
    assert not events.events, "one status is not an override yet"
    rb.on_status("heating.living", relay("off", 10), retained=False, now=6.0)  # seen again: corroborated
    assert rb.held_off("heating.living", now=6.5) and not rb.held_off("heating.living", now=67.0)
    assert [e.kind for e in events.events] == [EventKind.OVERRIDE]


def test_one_status_never_holds_a_device_off_for_long():
    rb, events = tracker()
    rb.sent("battery", "battery_set", "t", 10, {"mode": "charge_from_grid"}, b"", lease_house_s=900, now=0.0)
    rb.on_status("battery", BatteryStatus(soc=0.5, power_kw=1.0, mode="charge_from_grid", seq=10), False, now=0.1)
    spoofed = BatteryStatus(soc=0.5, power_kw=0.0, mode="self_consumption", source="manual")
    rb.on_status("battery", spoofed, False, now=1.0)  # one message from a bridge (or an attacker)
    assert rb.held_off("battery", now=1.1), "wait for the next status before commanding across it"
    rb.on_status("battery", BatteryStatus(soc=0.5, power_kw=1.0, mode="charge_from_grid", seq=10), False, now=2.0)
    assert not rb.held_off("battery", now=2.1) and rb.stats.overrides == 0 and rb.stats.uncorroborated == 1
    rb.on_status("battery", spoofed, False, now=3.0)
    assert not rb.held_off("battery", now=3.0 + 121.0), "a suspicion without a second status lapses"


def test_a_hold_ends_when_the_device_reports_its_own_rule_again():
    rb, events = tracker()
    manual = HeatingStatus(state="off", seq=None, source="manual")
    rb.on_status("heating.living", manual, False, now=1.0)
    rb.on_status("heating.living", manual, False, now=2.0)
    assert rb.held_off("heating.living", now=3.0)
    rb.on_status("heating.living", manual, False, now=4.0)
    assert rb.held_off("heating.living", now=5.0), "still manual: still held"
    rb.on_status("heating.living", HeatingStatus(state="off", seq=None, source="local"), False, now=6.0)
    assert not rb.held_off("heating.living", now=6.1)


@pytest.mark.parametrize("status, why", [
    (relay("off", 10, source="local"), "back on its own rule"),
    (relay("off", 10, source=None), "lease over"),
    (HeatingStatus(state="on", seq=None), "no contradiction"),
    (relay("off", 10), "retained"),
])
def test_what_is_not_an_override(status, why):
    rb, events = tracker()
    rb.sent("heating.living", "heating_set", "t", 10, {"state": "on"}, b"", lease_house_s=10, now=0.0)
    rb.on_status("heating.living", relay("on", 10), retained=False, now=0.1)
    now = 11.0 if why == "lease over" else 5.0
    rb.on_status("heating.living", status, retained=why == "retained", now=now)
    assert not rb.held_off("heating.living", now=now + 0.1), why


def test_status_fields_a_device_leaves_out_prove_nothing():
    rb, events = tracker()
    rb.sent("battery", "battery_set", "t", 10, {"mode": "charge_from_grid"}, b"", lease_house_s=900, now=0.0)
    rb.on_status("battery", BatteryStatus(soc=0.5, power_kw=1.0, mode="charge_from_grid", seq=10), False, now=0.1)
    rb.on_status("battery", BatteryStatus(soc=0.5, power_kw=0.0), retained=False, now=1.0)  # no mode, no seq
    assert not rb.held_off("battery", now=1.1)
    for now in (2.0, 3.0):
        rb.on_status("battery", BatteryStatus(soc=0.5, power_kw=0.0, mode="self_consumption", source="manual"),
                     False, now=now)
    assert rb.held_off("battery", now=3.1), "the device itself says a person took over"


def test_a_sequence_number_we_never_sent_is_someone_else():
    rb, events = tracker()
    rb.sent("ev", "ev_set", "t", 10, {"enabled": True}, b"", lease_house_s=900, now=0.0)
    rb.on_status("ev", HeatingStatus(state="on", seq=11), retained=False, now=0.5)
    rb.on_status("ev", HeatingStatus(state="on", seq=11), retained=False, now=0.6)
    assert rb.held_off("ev", now=0.7) and events.events[-1].kind is EventKind.UNKNOWN_SEQ


# --- persistence ------------------------------------------------------------------------------------------

def test_state_survives_a_restart_and_sequence_numbers_never_repeat(tmp_path):
    path = tmp_path / "state" / "pems.json"
    store = StateStore(path, HOUSE.name)
    seq = PersistentSequence(store)
    used = [seq.next() for _ in range(5)]
    assert store.state.seq_reserved >= used[-1] and store.writes == 1, "reserved ahead: one write, not five"
    layer = SafetyLayer(HOUSE)
    plan = {"battery": PlannedCommand("battery", "battery_set", used[-1], {"mode": "self_consumption"}, 2e9, 1e9)}
    store.save_plan(plan, layer.history())
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "no temporary file left behind"

    again = StateStore(path, HOUSE.name)
    state = again.load()
    assert state.plan == tuple(plan.values()) and state.seq_reserved == used[0] + SEQ_HEADROOM
    assert state.safety.relay_changed_at_s == tuple(-math.inf for _ in HOUSE.rooms)
    SafetyLayer(HOUSE).restore(state.safety)
    restarted = PersistentSequence(again)
    assert restarted.next() > state.seq_reserved >= max(used), "above everything the previous run may have used"


def test_a_clock_that_went_backwards_cannot_make_sequence_numbers_repeat(tmp_path, monkeypatch):
    store = StateStore(tmp_path / "s.json", HOUSE.name)
    first = PersistentSequence(store).next()
    monkeypatch.setattr("time.time_ns", lambda: 0)  # the wall clock jumped back to 1970
    reloaded = StateStore(tmp_path / "s.json", HOUSE.name)
    reloaded.load()
    assert PersistentSequence(reloaded).next() > first


@pytest.mark.parametrize("content, match", [
    ("{not json", "cannot be read"),
    (json.dumps({"house": "other", "seq_reserved": 1, "version": 1}), "the state of house 'other'"),
    (json.dumps({"house": "x", "seq_reserved": 1, "version": 99}), "format 99"),
])
def test_a_damaged_state_file_is_a_clear_error(tmp_path, content, match):
    path = tmp_path / "s.json"
    path.write_text(content.replace('"x"', json.dumps(HOUSE.name)))
    with pytest.raises(LiveError, match=match):
        StateStore(path, HOUSE.name).load()


def test_without_a_state_file_nothing_is_written(tmp_path):
    store = StateStore("", HOUSE.name)
    PersistentSequence(store).next()
    assert store.load() is None and store.writes == 0 and not os.listdir(tmp_path)


def test_the_safety_history_keeps_minimum_times_across_a_restart():
    from twin.contracts import Command
    from twin.house import SimHouse
    from twin.registry import load_scenario

    obs = SimHouse(HOUSE, load_scenario("winter-week-v1")).observe()
    before = SafetyLayer(HOUSE)
    before(Command(until=obs.after(600), relay_on=tuple(obs.relay_on.tolist())), obs)
    flipped = obs.relay_on.copy()
    flipped[0] = not flipped[0]
    later = type(obs)(**{**{f: getattr(obs, f) for f in obs.__dataclass_fields__}, "time": obs.after(60),
                         "relay_on": flipped})
    before(Command(until=later.after(600), relay_on=tuple(flipped.tolist())), later)  # switched at +60 s
    back = tuple((~flipped).tolist())
    restarted = SafetyLayer(HOUSE)
    restarted.restore(before.history())
    again = type(obs)(**{**{f: getattr(obs, f) for f in obs.__dataclass_fields__}, "time": obs.after(120),
                         "relay_on": flipped})
    assert restarted(Command(until=again.after(600), relay_on=back), again).relay_on[0] == bool(flipped[0]), \
        "60 s after a switch the restarted layer still holds the minimum time"
    amnesiac = SafetyLayer(HOUSE)
    assert amnesiac(Command(until=again.after(600), relay_on=back), again).relay_on[0] == back[0]


# --- the envelope on the wire ------------------------------------------------------------------------------

def payload(**fields) -> bytes:
    base = {"until": (T0 + timedelta(seconds=600)).isoformat(), "ttl_s": 600, "seq": 1, "ts": T0.isoformat()}
    return json.dumps({**base, **fields}).encode()


@pytest.mark.parametrize("key, body, mode, stale, problem", [
    ("battery_set", payload(mode="discharge_to_grid", power_kw=50.0), RolloutMode.FULL, (), "discharge power"),
    ("battery_set", payload(mode="backup_reserve", reserve_soc=0.01), RolloutMode.FULL, (), "reserve SOC"),
    ("battery_set", payload(mode="charge_from_grid", power_kw=1.0), RolloutMode.FULL, ("battery_soc",), "stale SOC"),
    ("ev_set", payload(enabled=True, current_a=32.0), RolloutMode.FULL, (), "outside [6.0, 16.0]"),
    ("ev_set", payload(enabled=True, current_a=16.0), RolloutMode.FULL, ("grid_power_kw",), "stale grid"),
    ("heating_set", payload(state="on", ttl_s=7200, until=(T0 + timedelta(hours=2)).isoformat()), RolloutMode.FULL,
     (), "exceeds the maximum"),
    ("heating_set", payload(state="on"), RolloutMode.PARTIAL, (), "not allowed in PARTIAL"),
    ("battery_set", payload(mode="self_consumption"), RolloutMode.ADVISORY, (), "not allowed in ADVISORY"),
    ("ev_set", b"\xff", RolloutMode.FULL, (), "malformed"),
])
def test_payloads_outside_the_envelope_are_named(key, body, mode, stale, problem):
    problems = payload_problems(key, body, HOUSE, mode, stale, T0)
    assert problems and problem in problems[0], problems


def test_payloads_inside_the_envelope_pass():
    for key, body in (("battery_set", payload(mode="discharge_to_grid", power_kw=5.0)),
                      ("ev_set", payload(enabled=False, current_a=0.0)), ("ev_set", payload(enabled=True, current_a=6)),
                      ("heating_set", payload(state="off"))):
        assert payload_problems(key, body, HOUSE, RolloutMode.FULL, (), T0) == []


# --- clock skew -------------------------------------------------------------------------------------------

def test_skew_is_the_median_offset_seen_and_alerts_once_each_way():
    events = EventLog()
    skew = SkewMonitor(30.0, events)
    for transit in (0.3, 0.01, 0.2):
        skew.sample("battery", -300.0 - transit)  # the device's clock is 300 s behind
    assert skew.skew_s("battery") == pytest.approx(-300.2) and skew.untrusted("battery")
    for _ in range(20):
        skew.sample("battery", -0.01)
    assert not skew.untrusted("battery")
    assert [e.alert for e in events.of_kind(EventKind.CLOCK_SKEW)] == [True, False]
    assert math.isnan(skew.skew_s("ev"))


def test_one_wild_stamp_never_makes_a_clock_untrusted():
    events = EventLog()
    skew = SkewMonitor(30.0, events)
    skew.sample("ev", 0.02)
    skew.sample("ev", 2.5e11)  # a status stamped in the year 9999
    assert not skew.untrusted("ev") and skew.skew_s("ev") == pytest.approx(0.02) and not events.events
    for _ in range(3):
        skew.sample("ev", 0.01)
    skew.sample("ev", -2.5e11)
    assert not skew.untrusted("ev") and not events.events


# --- configuration and transport ---------------------------------------------------------------------------

def test_the_link_timeout_must_fit_the_keepalive():
    with pytest.raises(ConfigError, match=r"link_timeout_s = 12.0 must be at most 2 × broker.keepalive_s \+ 1 = 11"):
        live_config_from_dict({"forecasts": {"scenario": "x"}, "broker": {"keepalive_s": 5},
                               "failsafe": {"link_timeout_s": 12.0}})
    with pytest.raises(ConfigError, match="fresh_link_s"):
        live_config_from_dict({"forecasts": {"scenario": "x"}, "failsafe": {"heartbeat_s": 3, "fresh_link_s": 2}})


def test_plain_tcp_beyond_loopback_is_refused_unless_asked_for():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("mqtt.home.lan") and not is_loopback("192.168.1.5")
    assert transport_problems(BrokerConfig(host="127.0.0.1")) == []
    with pytest.raises(ConfigError, match="clear text"):
        check_transport(BrokerConfig(host="192.168.1.5"))
    assert transport_problems(BrokerConfig(host="192.168.1.5", allow_plaintext=True)) == []
    assert transport_problems(BrokerConfig(host="mqtt.home.lan", tls=TlsConfig())) == []
    assert "not authenticated" in transport_problems(
        BrokerConfig(host="mqtt.home.lan", tls=TlsConfig(check_hostname=False)))[0]


def test_the_lease_of_a_command_is_relative_and_bounded():
    from twin.contracts import Command

    lease = LeaseTerms.of(Command(until=T0 + timedelta(seconds=5)), T0)
    assert lease.ttl_s == 5.0 and lease.expiry_s == 5.0


# --- the metrics see what they count ------------------------------------------------------------------------

def delivery(seq, recv_wall, age, result="accepted", device="battery"):
    return Delivery(recv_wall, recv_wall, "t", device, seq, age, False, result)


def test_metrics_count_replays_stale_duplicates_and_losses():
    outage = Outage("kill", fault_wall=100.0, back_wall=102.0)
    replay = delivery(1, recv_wall=103.0, age=5.5)  # issued at 97.5, before the crash, delivered after
    fresh = delivery(2, recv_wall=103.5, age=0.01)
    assert replayed_after_outage([replay, fresh], [outage]) == 1
    assert stale_deliveries([replay, fresh, delivery(3, 104.0, 9.0, "stale")], 2.0) == (1, 1)
    assert duplicate_accepted([fresh, delivery(2, 104.0, 0.01), delivery(1, 105.0, 0.01)]) == 2
    published = [Published(0, 50.0, "battery", "t", 2), Published(0, 60.0, "battery", "t", 9),
                 Published(0, 100.05, "battery", "t", 10)]
    assert lost_while_connected(published, [fresh], excluded=[(99.9, 100.5)]) == 1


def test_metrics_count_switching_violations():
    config = SafetyConfig(relay_min_on_s=300, relay_min_off_s=300, relay_max_switches_per_hour=3,
                          battery_min_mode_interval_s=300, ev_min_change_interval_s=30)
    changes = [StateChange(0.0, "heating.a", "on", "command"), StateChange(100.0, "heating.a", "off", "command"),
               StateChange(500.0, "heating.a", "on", "lease_end"), StateChange(900.0, "heating.a", "off", "command"),
               StateChange(1300.0, "heating.a", "on", "command"),
               StateChange(0.0, "battery", "charge_from_grid", "command"),
               StateChange(10.0, "battery", "self_consumption", "lease_end"),
               StateChange(20.0, "battery", "charge_from_grid", "command"),  # re-asserted: not a change
               StateChange(60.0, "battery", "discharge_to_grid", "command"),
               StateChange(0.0, "ev", "6 A", "command"), StateChange(5.0, "ev", "16 A", "command")]
    assert switching_violations(changes, config) == {"relay_min_time": 1, "relay_rate": 2, "battery_mode": 1,
                                                     "ev_step": 1}, "the 4th and 5th change of the hour are over 3"


def test_unsafe_payloads_are_found_on_the_wire():
    from hardware.config import TopicsConfig

    topics = TopicsConfig().topic_map(HOUSE.room_names)
    wire = [("ev/charger/set", payload(enabled=True, current_a=32.0)), ("ev/charger/set", b""),
            ("growatt/battery/status", b"{}"), ("loxone/heating/living/set", payload(state="on"))]
    assert len(unsafe_payloads(wire, HOUSE, topics)) == 1


def test_restarted_timers_hold_every_device_for_its_minimum_time():
    from dataclasses import replace

    from twin.contracts import BatteryCommand, BatteryMode, Command
    from twin.house import SimHouse
    from twin.registry import load_scenario

    obs = SimHouse(HOUSE, load_scenario("winter-week-v1")).observe()
    layer = SafetyLayer(HOUSE)
    flipped = tuple(not x for x in obs.relay_on.tolist())
    wanted = Command(until=obs.after(600), relay_on=flipped, ev_power_kw=HOUSE.ev_charger.max_power_kw,
                     battery=BatteryCommand(BatteryMode.CHARGE_FROM_GRID, 1.0))
    layer.restart_timers(obs.time)  # the link came back: the devices may just have fallen back
    held = layer(wanted, replace(obs, time=obs.after(20)))
    assert held.relay_on == tuple(obs.relay_on.tolist()), "no relay switched within its minimum time"
    assert held.ev_power_kw == 0.0, "an unknown charger counts as stopped and steps up after the interval"
    held = layer(wanted, replace(obs, time=obs.after(60)))
    assert held.relay_on == tuple(obs.relay_on.tolist()) and held.ev_power_kw == wanted.ev_power_kw
    much_later = replace(obs, time=obs.after(HOUSE.safety.relay_min_off_s + HOUSE.safety.relay_min_on_s))
    assert SafetyLayer(HOUSE)(wanted, much_later).relay_on == flipped


# --- sequence numbers that cannot be poisoned --------------------------------------------------------------

def test_a_poisoned_sequence_number_is_refused_and_a_restart_outranks_its_predecessor(tmp_path):
    from hardware.wire.sequence import MAX_COUNTER_JUMP, MAX_EPOCH_AHEAD_S, compose, refusal, split

    now = time.time()
    ours = compose(int(now), 5)
    assert refusal(-1, ours, now) is None and refusal(ours, ours, now) == "old_seq"
    assert refusal(ours, 2**63 - 1, now) == "epoch_ahead", "the year-2262 epoch locks nothing"
    assert refusal(ours, ours + MAX_COUNTER_JUMP + 1, now) == "seq_jump"
    assert refusal(ours, compose(int(now + MAX_EPOCH_AHEAD_S) + 5, 1), now) == "epoch_ahead"
    assert refusal(10**15, ours, now) is None, "the first epoch outranks a number of the old µs scheme"
    store = StateStore(tmp_path / "s.json", HOUSE.name)
    seq = PersistentSequence(store)
    first = seq.next()
    restarted = StateStore(tmp_path / "s.json", HOUSE.name)
    restarted.load()
    second = PersistentSequence(restarted).next()
    assert split(second)[0] > split(first)[0] and refusal(first, second, time.time()) is None
    poisoned = compose(split(second)[0] + 100, 7)  # within the clock bound: a device took it
    seq2 = PersistentSequence(restarted)
    seq2.resync(poisoned)
    assert refusal(poisoned, seq2.next(), time.time() + 200) is None, "a resync outranks the poisoned number"


def test_an_unknown_sequence_number_seen_twice_makes_a_new_epoch_not_a_hold():
    events = EventLog()
    seen: list[int] = []
    config = FailsafeConfig(readback_timeout_s=1.0, readback_retries=1, override_hold_s=60.0)
    rb = ReadbackTracker(config, events, resync=lambda device, s: seen.append(s))
    rb.sent("ev", "ev_set", "t", 10, {"enabled": True}, b"", lease_house_s=900, now=0.0)
    for now in (0.5, 0.6):
        rb.on_status("ev", HeatingStatus(state="on", seq=99), retained=False, now=now)
    assert seen == [99] and not rb.held_off("ev", now=0.7)
    assert events.take_alerts()[-1].kind is EventKind.UNKNOWN_SEQ
