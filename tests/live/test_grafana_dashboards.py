"""The Grafana dashboards: their JSON against the schema fields they use, and every panel's query
against what the writer ACTUALLY wrote to a real InfluxDB after a short run (Grafana itself cannot
be installed here, so each query is also run through InfluxDB's own InfluxQL parser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from builders import simple_scenario, small_house

from hardware.outputs.config import InfluxOutputConfig
from hardware.outputs.influx import InfluxWriter
from hardware.outputs.observer import InfluxObserver
from twin.runner import RunSettings, simulate

pytestmark = pytest.mark.timeout(600)

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PANEL_TYPES = {"timeseries", "stat", "state-timeline", "barchart", "table"}
SOURCE = "sim:dash"


def _datasource_uid() -> str:
    provisioning = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "pems-influxdb.yaml").read_text())
    assert provisioning["apiVersion"] == 1
    (source,) = provisioning["datasources"]
    assert source["type"] == "influxdb" and source["access"] == "proxy" and source["jsonData"]["dbName"]
    return source["uid"]


def test_dashboard_provider_points_at_a_folder_of_files():
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "pems.yaml").read_text())
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"].startswith("/")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_json_has_the_schema_fields_it_uses(path):
    uid = _datasource_uid()
    board = json.loads(path.read_text())
    assert isinstance(board["title"], str) and board["uid"] == path.stem
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert {"from", "to"} <= set(board["time"])
    for variable in board["templating"]["list"]:
        assert variable["type"] in ("query", "custom") and re.fullmatch(r"\w+", variable["name"])
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and ids
    for panel in board["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in "xywh") and 0 <= grid["x"] and grid["x"] + grid["w"] <= 24
        assert panel["datasource"] == {"type": "influxdb", "uid": uid}
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)) and refs
        for t in panel["targets"]:
            assert t["rawQuery"] is True and t["resultFormat"] in ("time_series", "table")
            assert t["datasource"]["uid"] == uid and "$timeFilter" in t["query"]
    names = {v["name"] for v in board["templating"]["list"]}
    for panel in board["panels"]:
        for t in panel["targets"]:
            assert set(re.findall(r"\$(\w+)", t["query"])) - {"timeFilter", "__interval"} <= names


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A short MPC run through the observer, plus the events and savings the live layer writes."""
    from influxdb_server import INFLUXD, InfluxServer

    from controllers.mpc.controller import MpcController
    from controllers.savings.counterfactual import write_savings

    if INFLUXD is None:
        pytest.skip("influxd is not installed")
    influxdb = InfluxServer(tmp_path_factory.mktemp("influxdb")).start()
    influxdb.create_database("dash")
    house = small_house(n_rooms=2)
    scenario = simple_scenario(days=1, seed=3)
    writer = InfluxWriter(InfluxOutputConfig(url=influxdb.url, database="dash"),
                          tmp_path_factory.mktemp("spool"))
    controller = MpcController(house)
    observer = InfluxObserver(writer, house.room_names, source=SOURCE,
                              heater_kw=[r.heater_power_kw for r in house.rooms], controller=controller)
    result = simulate(house, scenario, controller, RunSettings(horizon_s=12 * 3600.0),
                      observers=(observer,))
    t = result.log.index[10].to_pydatetime()
    observer.event(t, "alert", "battery SOC stale", level="warning")
    observer.event(t, "mode", "mode changed from Home Assistant", old="ADVISORY", new="FULL", user="owner")
    observer.event(t, "override", "relay switched by hand", device="heating/r0")
    write_savings(observer, house, scenario, result.log)
    writer.close()
    yield influxdb
    influxdb.stop()


def _schema(influxdb, database):
    fields: dict[str, set[str]] = {}
    for series in influxdb.query("SHOW FIELD KEYS", database)["results"][0]["series"]:
        fields[series["name"]] = {row[0] for row in series["values"]}
    tags: dict[str, set[str]] = {}
    for series in influxdb.query("SHOW TAG KEYS", database)["results"][0]["series"]:
        tags[series["name"]] = {row[0] for row in series["values"]}
    return fields, tags


def _queries():
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for t in panel["targets"]:
                yield f"{path.stem}: {panel['title']} [{t['refId']}]", t["query"]
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                yield f"{path.stem}: variable {variable['name']}", variable["query"]
        for annotation in board["annotations"]["list"]:
            yield f"{path.stem}: annotation {annotation['name']}", annotation["query"]


def test_every_query_names_a_measurement_field_and_tag_that_was_written(written):
    fields, tags = _schema(written, "dash")
    checked = 0
    for where, query in _queries():
        measurement = re.search(r'FROM "(\w+)"', query).group(1)
        assert measurement in fields, f"{where}: {measurement} was never written"
        select = re.search(r"SELECT (.*?) FROM", query)
        if select:
            for name in re.findall(r'"(\w+)"', select.group(1)):
                assert name in fields[measurement] | tags.get(measurement, set()), \
                    f"{where}: {measurement}.{name} was never written"
        for name in re.findall(r'"(\w+)"\s*(?:=~|!=|=)', query) + re.findall(r'GROUP BY [^;]*?"(\w+)"', query):
            assert name in tags.get(measurement, set()), f"{where}: tag {name} not on {measurement}"
        checked += 1
    assert checked > 30


def test_every_query_runs_in_influxdb_and_returns_data(written):
    empty = []
    for where, query in _queries():
        concrete = (query.replace("$timeFilter", "time > 0").replace("$__interval", "1h")
                    .replace("$source", re.escape(SOURCE)).replace("$lead_h", "1"))
        body = written.query(concrete, "dash")  # raises on any InfluxQL error
        if "now()" not in concrete and not body["results"][0].get("series"):
            empty.append(where)
    assert not empty, f"queries returning nothing: {empty}"
