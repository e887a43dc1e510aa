"""The cost of forecast error: one controller on a historical scenario with three kinds of forecasts.

Runs the controller over a test window of the scenario three times, with

* ``scenario`` — the scenario's issued forecasts (synthetic lead-time errors, archived ones);
* ``learned`` — ``LearnedForecasts``: forecasters trained on the scenario *before* the window
  (and retrained on what they observe);
* ``perfect`` — the actual future (the controller as its own oracle);

and prints each run's cost and the gaps to ``perfect``. A forecast scorecard (error by lead
time) of every run is written to ``--out``. With a forecast-blind controller (rule-based) all
three costs agree, which checks the harness. The last line is a JSON object.

    python -m benchmarks.forecast_value --scenario fr-home-2024-v1 --controller mpc \\
        --test-start 2024-10-01 --days 28 --out runs/forecast-value
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from controllers.forecasting.scorecard import ScoredController
from controllers.forecasting.wrapper import LearnedForecastSettings, learned_forecasts_for, scenario_location
from twin.config import load_house, reference_house
from twin.progress import DelayedProgress
from twin.registry import ControllerContext, load_scenario, make_controller
from twin.runner import RunSettings, simulate
from twin.scenario import PerfectForecasts


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="fr-home-2024-v1")
    parser.add_argument("--controller", default="rule-based", help="registered controller name (e.g. mpc)")
    parser.add_argument("--house", type=Path, default=None, help="house TOML (default: the reference house)")
    parser.add_argument("--test-start", default="2024-10-01", help="local date; the forecasters train before it")
    parser.add_argument("--days", type=float, default=28.0)
    parser.add_argument("--decision-interval-s", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=None, help="write scorecards and costs here")
    args = parser.parse_args(argv)

    house = load_house(args.house) if args.house else reference_house()
    full = load_scenario(args.scenario)
    start = pd.Timestamp(args.test_start).tz_localize(full.tz)
    end = start + pd.Timedelta(days=args.days)
    window = full.window(start, end)
    history = full.data[full.index < start]
    settings = RunSettings(decision_interval_s=args.decision_interval_s)
    context = ControllerContext(house, window, args.decision_interval_s)
    location = scenario_location(full.metadata)
    capacity = float(full.metadata["pv_capacity_kw"]) if "pv_capacity_kw" in full.metadata else None

    runs = {
        "scenario": (window, ScoredController(make_controller(args.controller, context))),
        "learned": (window, learned_forecasts_for(
            make_controller(args.controller, context), house, history=history, location=location,
            country=full.metadata.get("country"), pv_capacity_kw=capacity,
            settings=LearnedForecastSettings(retrain_every_days=None))),
        "perfect": (window.with_forecasts(PerfectForecasts()),
                    ScoredController(make_controller(args.controller, context))),
    }
    results = {}
    for name, (scenario, controller) in runs.items():
        t0 = time.perf_counter()
        with DelayedProgress(f"{args.scenario} × {args.controller} × {name} forecasts") as progress:
            result = simulate(house, scenario, controller, settings, controller_name=args.controller,
                              progress=progress)
        results[name] = {"cost": result.kpis["cost"], "import_kwh": result.kpis["import_kwh"],
                         "discomfort_kh": result.kpis["discomfort_kh"], "wall_s": time.perf_counter() - t0}
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            controller.scorecard.table().to_csv(args.out / f"scorecard_{name}.csv")
        print(f"{name:>9} forecasts: cost {result.kpis['cost']:.2f}, discomfort {result.kpis['discomfort_kh']:.1f} "
              f"K·h ({results[name]['wall_s']:.0f} s)")
    perfect = results["perfect"]["cost"]
    summary = {"scenario": args.scenario, "controller": args.controller, "window": [str(start), str(end)],
               "runs": results,
               "gap_learned_vs_perfect": results["learned"]["cost"] - perfect,
               "gap_scenario_vs_perfect": results["scenario"]["cost"] - perfect}
    if args.out is not None:
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
