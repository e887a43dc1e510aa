"""Figures for docs/results/2026-12-05-outputs.md: what the InfluxDB output costs the control loop,
how fast the writer writes, and how close the counterfactual gets to the truth.

    python -m benchmarks.outputs_figures --influxdb-url http://127.0.0.1:8086 [--days 1] [--live-hours 4]

1. Decision latency p95 with and without the InfluxDB output, in the same run: each decision's
   latency is the controller's decide time, plus — with the output — the observer's time on the
   loop (building the points and queuing them; the writing happens on the writer's thread).
   Measured on a simulated MPC day (the runner loop is the same as live) and on a live run of the
   rule-based controller against the emulator through a real Mosquitto.
2. Points written per second: a burst through the writer (queue → spool with fsync → HTTP) to
   the real InfluxDB, timed until the database acknowledged the last one.
3. Counterfactual error: an MPC day's counterfactual (the baseline replayed on the recorded day)
   against the rule-based controller actually simulated on that day — with the exact house, and
   with a house identified (``controllers.estimation.identify``) from the day's own readings.

The last line of output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests

from hardware.outputs.config import InfluxOutputConfig
from hardware.outputs.influx import InfluxWriter
from hardware.outputs.line_protocol import Point
from hardware.outputs.observer import InfluxObserver


class TimedObserver:
    """Wraps an observer and records the wall time each ``on_decision`` took on the loop."""

    def __init__(self, inner: InfluxObserver) -> None:
        self.inner = inner
        self.times_s: list[float] = []
        self.decide_s: list[float] = []

    def on_decision(self, when: Any, obs: Any, command: Any, info: Any) -> None:
        t0 = time.perf_counter()
        self.inner.on_decision(when, obs, command, info)
        self.times_s.append(time.perf_counter() - t0)
        self.decide_s.append(info.decide_s)

    def on_interval(self, when: Any, obs: Any, command: Any, interval: Any) -> None:
        t0 = time.perf_counter()
        self.inner.on_interval(when, obs, command, interval)
        self.times_s[-1] += time.perf_counter() - t0  # the loop's time spent on this decision's outputs

    def on_end(self, status: str) -> None:
        self.inner.on_end(status)


def _p95_ms(values: list[float] | np.ndarray) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, 95))


def latency_figures(timed: TimedObserver) -> dict[str, float]:
    decide = np.asarray(timed.decide_s)
    observer = np.asarray(timed.times_s)
    return {"decisions": len(decide), "p95_without_ms": _p95_ms(decide), "p95_with_ms": _p95_ms(decide + observer),
            "observer_p95_ms": _p95_ms(observer), "observer_mean_ms": float(observer.mean() * 1000.0)}


def _database(url: str, name: str) -> None:
    requests.post(f"{url}/query", params={"q": f'CREATE DATABASE "{name}"'}, timeout=10).raise_for_status()


def simulated_latency(url: str, days: float, folder: Path) -> dict[str, Any]:
    from controllers.mpc.controller import MpcController
    from twin.config import reference_house
    from twin.registry import load_scenario
    from twin.runner import RunSettings, simulate

    house = reference_house()
    scenario = load_scenario("winter-week-v1")
    scenario = scenario.window(scenario.start, scenario.start + np.timedelta64(int(days * 24), "h"))
    writer = InfluxWriter(InfluxOutputConfig(url=url, database="figures"), folder / "sim-spool")
    controller = MpcController(house)
    timed = TimedObserver(InfluxObserver(writer, house.room_names, source="sim:figures",
                                         heater_kw=[r.heater_power_kw for r in house.rooms], controller=controller))
    simulate(house, scenario, controller, RunSettings(), observers=(timed,))
    writer.close(120)
    return {**latency_figures(timed), "lines_written": writer.stats.written_lines,
            "lines_submitted": writer.stats.submitted}


def live_latency(url: str, hours: float, folder: Path, speed: float = 600.0) -> dict[str, Any]:
    import threading
    import tomllib

    from hardware.config import BrokerConfig, live_config_from_dict
    from hardware.emulator.emulated_house import HouseEmulator, scenario_window
    from hardware.live.parity import live_config_text
    from hardware.live.runner import LiveRun, LiveRunOptions
    from hardware.wire.local_broker import LocalBroker
    from twin.config import reference_house
    from twin.registry import load_scenario
    from twin.safety import RolloutMode

    house = reference_house()
    writer = InfluxWriter(InfluxOutputConfig(url=url, database="figures"), folder / "live-spool")
    timed = TimedObserver(InfluxObserver(writer, house.room_names, source="live:figures",
                                         heater_kw=[r.heater_power_kw for r in house.rooms]))
    with LocalBroker() as broker:
        config = live_config_from_dict(tomllib.loads(live_config_text(broker, "winter-week-v1", speed)))
        world = scenario_window(load_scenario("winter-week-v1"), "2024-01-15T06:00", hours)
        emulator = HouseEmulator(house, world, BrokerConfig(host=broker.host, port=broker.port),
                                 config.topics.topic_map(house.room_names), speed=speed, start_delay_s=1.0)
        thread = threading.Thread(target=lambda: emulator.run(linger_s=0.5), daemon=True)
        thread.start()
        try:
            LiveRun(config, LiveRunOptions("rule-based", RolloutMode.FULL, folder / "live-run", house=house,
                                           plots=False, observers=(timed,))).run()
        finally:
            thread.join(timeout=60)
    writer.close(60)
    return {**latency_figures(timed), "speed": speed, "lines_written": writer.stats.written_lines}


def throughput(url: str, n_points: int, folder: Path) -> dict[str, float]:
    writer = InfluxWriter(InfluxOutputConfig(url=url, database="figures"), folder / "burst-spool")
    points = [Point("pems_burst", 1_700_000_000_000_000_000 + i * 1_000_000, {"x": float(i), "n": i},
                    {"source": "burst"}) for i in range(n_points)]
    t0 = time.perf_counter()
    for k in range(0, n_points, 1000):
        writer.submit(points[k:k + 1000])
    submit_s = time.perf_counter() - t0
    writer.flush(600)
    total_s = time.perf_counter() - t0
    writer.close()
    return {"points": n_points, "written": writer.stats.written_lines, "seconds": total_s,
            "points_per_s": writer.stats.written_lines / total_s, "submit_points_per_s": n_points / submit_s}


def counterfactual_figures(days: float = 1.0) -> dict[str, Any]:
    import pandas as pd

    from controllers.estimation.identify import HEATER_PREFIX, ROOM_PREFIX, IdentifySettings, identify, thermal_data
    from controllers.mpc.controller import MpcController
    from controllers.rule_based import RuleBasedController
    from controllers.savings.counterfactual import counterfactual_days, scenario_start_state
    from twin.config import reference_house
    from twin.registry import load_scenario
    from twin.runner import RunSettings, simulate

    house = reference_house()
    scenario = load_scenario("winter-week-v1")
    scenario = scenario.window(scenario.start, scenario.start + pd.Timedelta(hours=24 * days))
    mpc = simulate(house, scenario, MpcController(house), RunSettings())
    truth = simulate(house, scenario, RuleBasedController(house), RunSettings())
    temps0, soc0 = scenario_start_state(house, scenario)
    kwargs = {"first_temps_c": temps0, "first_soc": soc0, "ev_sessions": scenario.ev_sessions,
              "comfort_mode": scenario.data["comfort_mode"], "weather": scenario.data}
    log = mpc.log
    out: dict[str, Any] = {"actual_cost": mpc.kpis["cost"], "truth_cost": truth.kpis["cost"]}
    (exact,) = counterfactual_days(log, house, house, **kwargs)
    out["exact"] = {"counterfactual_cost": exact.counterfactual_cost,
                    "error_pct": 100 * (exact.counterfactual_cost - truth.kpis["cost"]) / truth.kpis["cost"],
                    "band": exact.band, "model_rmse_c": exact.model_rmse_c}
    # identified from the day's own readings (room temperatures at interval starts, metered heat, weather)
    hours = log["duration_s"] / 3600.0
    history = pd.DataFrame(index=log.index)
    for column in ("outdoor_temp_c",):
        history[column] = log[column]
    for column in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2"):
        history[column] = scenario.data[column].reindex(log.index, method="ffill")
    for room in house.rooms:
        ends = log[f"temp_c.{room.name}"].to_numpy()
        history[ROOM_PREFIX + room.name] = np.concatenate([[temps0[house.room_names.index(room.name)]], ends[:-1]])
        history[HEATER_PREFIX + room.name] = log[f"heating_kwh.{room.name}"] / hours
    # the house's own coupling layout (which walls exist is known; their conductances are fitted)
    settings = IdentifySettings(window_azimuth_deg={r.name: r.window_azimuth_deg for r in house.rooms},
                                couplings=tuple(tuple(c.rooms) for c in house.couplings), max_evaluations=30)
    t0 = time.perf_counter()
    fit = identify(thermal_data(history, house.location, settings), settings, house.location)
    identify_s = time.perf_counter() - t0
    by_name = {r.name: r for r in house.rooms}
    rooms = tuple(dataclasses.replace(r, heater_power_kw=by_name[r.name].heater_power_kw,
                                      comfort=by_name[r.name].comfort) for r in fit.house.rooms)
    identified = dataclasses.replace(house, rooms=rooms, couplings=fit.house.couplings, name="identified")
    (ident,) = counterfactual_days(log, house, identified, **kwargs)
    out["identified"] = {"counterfactual_cost": ident.counterfactual_cost,
                         "error_pct": 100 * (ident.counterfactual_cost - truth.kpis["cost"]) / truth.kpis["cost"],
                         "band": ident.band, "model_rmse_c": ident.model_rmse_c, "train_rmse_c": fit.train_rmse_c,
                         "identify_s": identify_s}
    out["savings_true"] = truth.kpis["cost"] - mpc.kpis["cost"]
    out["savings_exact"] = exact.savings
    out["savings_identified"] = ident.savings
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--influxdb-url", required=True)
    parser.add_argument("--days", type=float, default=1.0, help="simulated MPC days (latency, counterfactual)")
    parser.add_argument("--live-hours", type=float, default=4.0, help="house hours of the live run")
    parser.add_argument("--burst", type=int, default=100_000, help="points in the throughput burst")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: sim,live,burst,counterfactual")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    skip = set(filter(None, args.skip.split(",")))
    _database(args.influxdb_url, "figures")
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pems-outputs-figures-") as tmp:
        folder = Path(tmp)
        if "burst" not in skip:
            figures["throughput"] = throughput(args.influxdb_url, args.burst, folder)
            print("throughput", figures["throughput"], flush=True)
        if "live" not in skip:
            figures["live_latency"] = live_latency(args.influxdb_url, args.live_hours, folder)
            print("live latency", figures["live_latency"], flush=True)
        if "sim" not in skip:
            figures["sim_latency"] = simulated_latency(args.influxdb_url, args.days, folder)
            print("simulated latency", figures["sim_latency"], flush=True)
        if "counterfactual" not in skip:
            figures["counterfactual"] = counterfactual_figures(args.days)
            print("counterfactual", figures["counterfactual"], flush=True)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
