"""Results into a REAL InfluxDB 1.x: every point counted across a database restart and a writer restart."""

from __future__ import annotations

import time

import pytest
from builders import simple_scenario, small_house

from hardware.outputs.config import InfluxOutputConfig
from hardware.outputs.influx import InfluxWriter
from hardware.outputs.line_protocol import Point
from hardware.outputs.observer import InfluxObserver
from twin.runner import RunSettings, simulate

pytestmark = pytest.mark.timeout(300)


def _count(influxdb, database: str, measurement: str, field: str = "n") -> int:
    body = influxdb.query(f'SELECT count("{field}") FROM "{measurement}"', database)
    series = body["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def _points(start: int, n: int) -> list[Point]:
    return [Point("spool_test", 1_700_000_000_000_000_000 + i * 1_000_000_000, {"n": i}, {"run": "a"})
            for i in range(start, start + n)]


def test_database_killed_and_restarted_mid_run_loses_no_point(influxdb, tmp_path):
    influxdb.create_database("restart")
    config = InfluxOutputConfig(url=influxdb.url, database="restart", retry_s=0.2, flush_interval_s=0.1)
    writer = InfluxWriter(config, tmp_path / "spool")
    total = 0
    for _ in range(20):  # before the outage
        writer.submit(_points(total, 50))
        total += 50
    assert writer.flush(30)
    influxdb.stop()
    for _ in range(30):  # during the outage: spooled on disk
        writer.submit(_points(total, 50))
        total += 50
        time.sleep(0.01)
    deadline = time.monotonic() + 20
    while writer.spool.pending_bytes == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not writer.reachable and writer.spool.pending_bytes > 0
    influxdb.start()
    for _ in range(10):  # after it came back
        writer.submit(_points(total, 50))
        total += 50
    assert writer.flush(60)
    writer.close()
    assert writer.stats.dropped == 0 and writer.stats.rejected_lines == 0
    assert _count(influxdb, "restart", "spool_test") == total == 3000
    # in order: the spool was sent oldest first, so the last point written is the last produced
    last = influxdb.query('SELECT last("n") FROM "spool_test"', "restart")["results"][0]["series"][0]["values"][0]
    assert last[1] == total - 1


def test_points_spooled_while_down_survive_a_writer_restart(influxdb, tmp_path):
    influxdb.create_database("survive")
    config = InfluxOutputConfig(url=influxdb.url, database="survive", retry_s=0.2, flush_interval_s=0.1)
    influxdb.stop()
    writer = InfluxWriter(config, tmp_path / "spool")
    writer.submit(_points(0, 500))
    assert not writer.flush(2)  # the database is away: still pending
    writer.close(timeout_s=0.5)  # the process ends with the points only on disk
    influxdb.start()
    again = InfluxWriter(config, tmp_path / "spool")  # a new process finds them
    assert again.flush(60)
    again.close()
    assert _count(influxdb, "survive", "spool_test") == 500


def test_simulated_run_writes_every_measurement(influxdb, tmp_path):
    from controllers.mpc.controller import MpcController

    influxdb.create_database("sim")
    house = small_house(n_rooms=2)
    scenario = simple_scenario(days=1.5)
    config = InfluxOutputConfig(url=influxdb.url, database="sim")
    writer = InfluxWriter(config, tmp_path / "spool")
    controller = MpcController(house)
    observer = InfluxObserver(writer, house.room_names, source="sim:simple",
                              heater_kw=[r.heater_power_kw for r in house.rooms], controller=controller)
    result = simulate(house, scenario, controller, RunSettings(horizon_s=12 * 3600.0),
                      observers=(observer,))
    writer.close()
    body = influxdb.query("SHOW MEASUREMENTS", "sim")
    names = {row[0] for row in body["results"][0]["series"][0]["values"]}
    assert {"pems_reading", "pems_room", "pems_command", "pems_command_room", "pems_energy", "pems_plan",
            "pems_plan_room", "pems_solve", "pems_forecast", "pems_kpi_day"} <= names
    assert _count(influxdb, "sim", "pems_reading", "outdoor_temp_c") == len(result.log)
    assert _count(influxdb, "sim", "pems_room", "temp_c") == 2 * len(result.log)
    # the day's cost in InfluxDB is the run log's
    first_day = result.log[result.log.index.normalize() == result.log.index[0].normalize()]
    body = influxdb.query('SELECT "cost" FROM "pems_kpi_day" WHERE "complete" = \'true\'', "sim")
    assert body["results"][0]["series"][0]["values"][0][1] == pytest.approx(first_day["cost"].sum(), rel=1e-9)
    # P10/P90 bands appear once the forecasts have a history of errors
    assert _count(influxdb, "sim", "pems_forecast", "outdoor_temp_c_p90") > 0


def test_fail_safe_alerts_and_overrides_reach_the_event_measurement(influxdb, tmp_path):
    from hardware.failsafe.events import EventKind, EventLog
    from hardware.outputs.live_events import EventForwarder

    influxdb.create_database("events")
    writer = InfluxWriter(InfluxOutputConfig(url=influxdb.url, database="events"), tmp_path / "spool")
    observer = InfluxObserver(writer, ("r0",), source="live")
    events = EventLog()
    forwarder = EventForwarder(events, observer)
    events.record(EventKind.LINK_STATE, "RUNNING")  # not an alert: not forwarded
    events.record(EventKind.READBACK_MISSING, "battery did not confirm", device="battery", alert=True)
    forwarder.on_decision()
    events.record(EventKind.OVERRIDE, "relay switched by hand", device="heating/r0")
    forwarder.on_decision()
    forwarder.on_decision()  # nothing new: nothing written twice
    writer.close()
    body = influxdb.query('SELECT "message", "kind", "device" FROM "pems_event"', "events")
    rows = body["results"][0]["series"][0]["values"]
    assert [(r[2], r[3]) for r in rows] == [("alert", "battery"), ("override", "heating/r0")]
