"""End to end, as a user runs it: `pems emulate` and `pems live` (FULL) as two processes, one broker.

The commissioning controller moves every actuator; each command must reach its emulated device
(the devices' own journal says so) and its effect must come back as readings (the run log,
built from nothing but MQTT readings, shows it).
"""

from __future__ import annotations

import json

import pytest

from hardware.live.parity import live_session
from twin.config import reference_house
from twin.kpis import KPI_KEYS

#: Real time through a real broker: seconds, not milliseconds.
pytestmark = pytest.mark.slow

HOUSE = reference_house()
#: A command lands at its decision instant unless the round trip outlasts a publish period (60 house
#: seconds, 0.125 wall seconds at 480×) on a busy machine: then up to a minute of a 5-min interval late.
LATENCY_SHARE = 0.25


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from hardware.wire.local_broker import LocalBroker

    with LocalBroker() as broker:
        yield live_session(broker, tmp_path_factory.mktemp("e2e"), "commissioning", "winter-week-v1",
                           start="2024-01-15T06:00", hours=1.0, speed=480.0)


def test_both_processes_finish_and_write_the_run(session):
    assert session.live_returncode == 0, session.live_stderr[-3000:]
    assert session.emulator_returncode == 0, session.emulator_stdout[-3000:]
    out = session.out
    assert {p.name for p in out.iterdir()} >= {"live.json", "commands.jsonl", "log.parquet", "kpis.json"}
    assert not (out / "log").exists(), "the parts were consolidated into log.parquet"
    meta = json.loads((out / "live.json").read_text())
    assert meta["status"] == "finished" and meta["mode"] == "full" and meta["intervals"] == 12
    kpis = json.loads((out / "kpis.json").read_text())
    assert tuple(kpis)[:len(KPI_KEYS)] == KPI_KEYS, "the simulated run's KPIs, then the live run's coverage"
    assert kpis["readings_coverage"] == 1.0 and kpis["commands_coverage"] > 0.5


def test_every_command_reaches_its_device(session):
    lines = [json.loads(line) for line in session.emulator_journal.read_text().splitlines()]
    accepted = {line["topic"] for line in lines if line["result"] == "accepted"}
    expected = {f"loxone/heating/{room}/set" for room in HOUSE.room_names} | {"growatt/battery/set_mode",
                                                                           "ev/charger/set"}
    assert accepted == expected
    assert all(line["result"] == "accepted" for line in lines), "nothing was refused"
    assert len(lines) == 12 * (16 + 2)


def test_effects_come_back_as_readings(session):
    """What was sent is what the readings show (energies within the latency of a loaded machine)."""
    log = session.log()
    sent = {entry["time"]: entry["sent"] for entry in session.journal()}
    assert len(log) == len(sent) == 12
    hours = log["duration_s"] / 3600.0
    for (time, row), h in zip(log.iterrows(), hours, strict=True):
        command = sent[time.isoformat()]
        # Heating: each relay reports the state it was sent; a room sent "on" meters energy.
        for room, on in command["relay_on"].items():
            assert bool(row[f"relay_on.{room}"]) == on, (time, room)
            if on:
                assert row[f"heating_kwh.{room}"] > 0, (time, room)
        # Battery: the inverter runs the commanded mode at the commanded power.
        battery = command["battery"]
        if battery["mode"] == "charge_from_grid":
            assert row["battery_charge_kwh"] == pytest.approx(battery["power_kw"] * h, rel=LATENCY_SHARE)
        elif battery["mode"] == "discharge_to_grid":
            assert row["battery_discharge_kwh"] == pytest.approx(battery["power_kw"] * h, rel=LATENCY_SHARE)
        # EV: the car (home all hour, and after it: `--hours` no longer cuts its session) draws the commanded power.
        assert row["ev_connected"]
        # A late command leaves the previous power on meanwhile: up to the maximum, not a share of this one.
        assert row["ev_kwh"] == pytest.approx(command["ev_power_kw"] * h,
                                              abs=LATENCY_SHARE * HOUSE.ev_charger.max_power_kw * h)
    modes = {sent[t]["battery"]["mode"] for t in sent}
    assert modes == {"charge_from_grid", "discharge_to_grid", "self_consumption"}
    assert {sent[t]["ev_power_kw"] for t in sent} == {HOUSE.ev_charger.min_power_kw, HOUSE.ev_charger.max_power_kw}
    soc = log["battery_soc"].to_numpy()
    assert soc.max() - soc.min() > 0.01, "the battery SOC reading moved"
    assert log["energy_balance_kwh"].abs().max() < 1e-9
