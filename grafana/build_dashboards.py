"""Writes grafana/dashboards/*.json (run after changing a panel: ``python grafana/build_dashboards.py``).

The dashboards query the measurements of ``hardware/outputs/observer.py`` with InfluxQL through the
datasource provisioned as uid ``pems-influxdb``. ``$source`` picks a run (``live``, ``sim:…``, ``bench:…``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATASOURCE = {"type": "influxdb", "uid": "pems-influxdb"}
HERE = Path(__file__).resolve().parent
SOURCE = "\"source\" =~ /^$source$/"


def target(query: str, ref: str = "A", fmt: str = "time_series", alias: str = "") -> dict[str, Any]:
    out = {"refId": ref, "datasource": DATASOURCE, "query": query, "rawQuery": True, "resultFormat": fmt}
    if alias:
        out["alias"] = alias
    return out


class Board:
    def __init__(self, uid: str, title: str, tags: list[str]) -> None:
        self.uid, self.title, self.tags = uid, title, tags
        self.panels: list[dict[str, Any]] = []
        self._x = self._y = 0

    def panel(self, kind: str, title: str, targets: list[dict[str, Any]], w: int = 12, h: int = 8,
              unit: str = "", **options: Any) -> None:
        if self._x + w > 24:
            self._x, self._y = 0, self._y + h
        panel: dict[str, Any] = {
            "id": len(self.panels) + 1, "type": kind, "title": title, "datasource": DATASOURCE,
            "gridPos": {"x": self._x, "y": self._y, "w": w, "h": h}, "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
            "options": options,
        }
        self.panels.append(panel)
        self._x += w

    def json(self) -> dict[str, Any]:
        return {
            "uid": self.uid, "title": self.title, "tags": ["pems", *self.tags], "schemaVersion": 39,
            "version": 1, "editable": True, "timezone": "browser", "refresh": "1m",
            "time": {"from": "now-2d", "to": "now+1d"},
            "templating": {"list": [{
                "name": "source", "label": "run", "type": "query", "datasource": DATASOURCE,
                "query": 'SHOW TAG VALUES FROM "pems_reading" WITH KEY = "source"', "refresh": 2,
                "includeAll": False, "multi": False, "current": {"text": "live", "value": "live"}}]},
            "annotations": {"list": [{
                "name": "events", "datasource": DATASOURCE, "enable": True, "iconColor": "orange",
                "query": f'SELECT "message" FROM "pems_event" WHERE {SOURCE} AND $timeFilter'}]},
            "panels": self.panels,
        }


def q(fields: str, measurement: str, group: str = "", where: str = "") -> str:
    extra = f" AND {where}" if where else ""
    grouping = f" GROUP BY {group}" if group else ""
    return f'SELECT {fields} FROM "{measurement}" WHERE {SOURCE}{extra} AND $timeFilter{grouping}'


def overview() -> Board:
    b = Board("pems-overview", "PEMS — overview", ["overview"])
    latest = "\"issued\" = 'latest'"
    b.panel("stat", "Savings today", [target(q('sum("savings")', "pems_savings_day", where="time >= now() - 1d"))],
            w=6, h=4, unit="currencyEUR")
    b.panel("stat", "Savings this week", [target(q('sum("savings")', "pems_savings_day",
                                                   where="time >= now() - 7d"))], w=6, h=4, unit="currencyEUR")
    b.panel("stat", "Savings this month", [target(q('sum("savings")', "pems_savings_day",
                                                    where="time >= now() - 30d"))], w=6, h=4, unit="currencyEUR")
    b.panel("stat", "Self-consumption (day)", [target(q('last("self_consumption")', "pems_kpi_day"))],
            w=6, h=4, unit="percentunit")
    b.panel("state-timeline", "Plan: heating per room (Gantt)", [target(
        q('last("duty")', "pems_plan_room", 'time($__interval), "room" fill(previous)', latest),
        alias="$tag_room")], w=24, h=7, showValue="never", mergeValues=True)
    b.panel("timeseries", "Plan: battery and EV", [
        target(q('last("battery_kw")', "pems_plan", "time($__interval) fill(previous)", latest), "A", alias="battery"),
        target(q('last("ev_kw")', "pems_plan", "time($__interval) fill(previous)", latest), "B", alias="EV")],
        unit="kwatt")
    b.panel("timeseries", "Plan: grid and price", [
        target(q('last("grid_import_kw")', "pems_plan", "time($__interval) fill(previous)", latest), "A",
               alias="import"),
        target(q('last("grid_export_kw")', "pems_plan", "time($__interval) fill(previous)", latest), "B",
               alias="export"),
        target(q('mean("import_price_per_kwh")', "pems_reading", "time($__interval)"), "C", alias="price")])
    b.panel("barchart", "Daily cost: actual vs counterfactual (rule-based)", [
        target(q('"actual_cost", "counterfactual_cost", "savings_low", "savings_high"', "pems_savings_day"),
               fmt="table")], w=12, unit="currencyEUR")
    b.panel("timeseries", "Grid dependency: import and export energy", [
        target(q('sum("import_kwh")', "pems_energy", "time(1h)"), "A", alias="import kWh"),
        target(q('sum("export_kwh")', "pems_energy", "time(1h)"), "B", alias="export kWh")], unit="kwatth")
    return b


def predictions() -> Board:
    b = Board("pems-predictions", "PEMS — predictions vs actual", ["predictions"])
    b.templating_lead = True
    for quantity, unit in (("pv_power_kw", "kwatt"), ("base_load_kw", "kwatt"), ("outdoor_temp_c", "celsius"),
                           ("import_price_per_kwh", "")):
        b.panel("timeseries", f"{quantity}: forecast P10–P90 at lead $lead_h h vs actual", [
            target(q(f'mean("{quantity}_p10")', "pems_forecast", "time($__interval)", '"lead_h" = \'$lead_h\''),
                   "A", alias="P10"),
            target(q(f'mean("{quantity}_p50")', "pems_forecast", "time($__interval)", '"lead_h" = \'$lead_h\''),
                   "B", alias="P50"),
            target(q(f'mean("{quantity}_p90")', "pems_forecast", "time($__interval)", '"lead_h" = \'$lead_h\''),
                   "C", alias="P90"),
            target(q(f'mean("{quantity}")', "pems_reading", "time($__interval)"), "D", alias="actual")],
            unit=unit)
    return b


def control() -> Board:
    b = Board("pems-control", "PEMS — control", ["control"])
    b.panel("state-timeline", "Heating relays per room (commanded)", [target(
        q('last("relay_on")', "pems_command_room", 'time($__interval), "room" fill(previous)'),
        alias="$tag_room")], w=24, h=6)
    b.panel("timeseries", "Room temperatures and comfort band", [
        target(q('mean("temp_c")', "pems_room", 'time($__interval), "room"'), "A", alias="$tag_room"),
        target(q('mean("comfort_lower_c")', "pems_room", 'time($__interval), "room"'), "B",
               alias="$tag_room lower")], w=24, unit="celsius")
    b.panel("timeseries", "Battery SOC", [target(q('mean("battery_soc")', "pems_reading", "time($__interval)"))],
            unit="percentunit")
    b.panel("timeseries", "Battery and EV power (commanded)", [
        target(q('mean("battery_power_kw")', "pems_command", "time($__interval)"), "A", alias="battery"),
        target(q('mean("ev_power_kw")', "pems_command", "time($__interval)"), "B", alias="EV")], unit="kwatt")
    b.panel("state-timeline", "EV connected", [target(q('last("ev_connected")', "pems_reading",
                                                        "time($__interval) fill(previous)"))], w=12, h=5)
    b.panel("table", "Manual overrides and mode changes", [target(
        q('"kind", "message", "old", "new", "user", "device"', "pems_event", where="\"kind\" != 'alert'"),
        fmt="table")], w=12, h=5)
    return b


def health() -> Board:
    b = Board("pems-health", "PEMS — controller health", ["health"])
    b.panel("timeseries", "Solve time", [target(q('max("solve_time_s")', "pems_solve", "time($__interval)"))],
            unit="s")
    b.panel("timeseries", "Decision time", [target(q('max("decide_time_s")', "pems_command", "time($__interval)"))],
            unit="s")
    b.panel("state-timeline", "Plan status", [target(q('last("plan_status")', "pems_command",
                                                       "time($__interval) fill(previous)"))], w=12, h=5)
    b.panel("stat", "Decisions without a fresh plan (day)", [target(q('last("decisions_without_plan")',
                                                                     "pems_kpi_day"))], w=12, h=5)
    b.panel("table", "Alerts", [target(q('"level", "message"', "pems_event", where="\"kind\" = 'alert'"),
                                       fmt="table")], w=12)
    b.panel("timeseries", "Forecast error (P90 − P10 width, PV, per lead)", [target(
        q('mean("pv_power_kw_p90") - mean("pv_power_kw_p10")', "pems_forecast", 'time(1h), "lead_h"'),
        alias="lead $tag_lead_h h")], w=12, unit="kwatt")
    return b


def main() -> None:
    out = HERE / "dashboards"
    out.mkdir(exist_ok=True)
    for build in (overview, predictions, control, health):
        board = build()
        data = board.json()
        if getattr(board, "templating_lead", False):
            data["templating"]["list"].append({
                "name": "lead_h", "label": "lead time [h]", "type": "custom",
                "query": "0,1,2,3,6,12,24,36", "current": {"text": "1", "value": "1"}})
        (out / f"{board.uid}.json").write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
