"""``pems identify``: fit the rooms' RC network on one window of data, test it on another, write a house TOML.

Registered through the ``pems.cli`` entry point (``register`` receives the typer app).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from twin.errors import TwinError
from twin.output import write_atomically

console = Console()
err_console = Console(stderr=True)
_SPLIT = re.compile(r"^(.+?)(?::|\.\.)(\d{4}-\d{2}-\d{2}.*)$")


def parse_window(text: str, timezone: str, option: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``START:END`` (or ``START..END``): dates (local midnight) or ISO date-times, END exclusive."""
    match = _SPLIT.match(text.strip())
    if not match:
        raise TwinError(f"{option} {text!r} is not START:END (e.g. 2013-08-30:2013-09-13 or "
                        f"2013-08-30T12:00:2013-09-13)")
    bounds = []
    for part in match.groups():
        try:
            when = pd.Timestamp(part)
        except ValueError:
            raise TwinError(f"{option}: {part!r} is not a date or date-time") from None
        bounds.append(when.tz_localize(timezone) if when.tzinfo is None else when.tz_convert(timezone))
    if bounds[1] <= bounds[0]:
        raise TwinError(f"{option} {text!r}: END must be after START")
    return bounds[0], bounds[1]


def identify_command(
    data: Annotated[Path, typer.Option(help="Recorded data (CSV or Parquet) the mapping reads as @data")],
    mapping: Annotated[Path, typer.Option(
        help="Mapping TOML file (room_temp_c.<room>, heater_power_kw.<room>, weather)")],
    train: Annotated[str, typer.Option(help="Training window START:END")],
    test: Annotated[str, typer.Option(help="Test window START:END (should not overlap the training window)")],
    out: Annotated[Path, typer.Option(help="House TOML to write")],
    max_evaluations: Annotated[int | None, typer.Option(
        help="Least-squares iterations (default from the mapping, else 60)")] = None,
    single_node: Annotated[bool, typer.Option(help="Air nodes only (no mass nodes)")] = False,
    report: Annotated[Path | None, typer.Option(help="Also write the test predictions and metrics here (JSON)")] = None,
    test_data: Annotated[Path | None, typer.Option(
        help="Test on this file (another house or period; same rooms), --test being a window of it")] = None,
    test_mapping: Annotated[Path | None, typer.Option(help="Mapping of --test-data (default: --mapping)")] = None,
) -> None:
    """Fit a room-level RC network (least squares on multi-step simulation error) and test it."""
    try:
        _identify(data, mapping, train, test, out, max_evaluations, single_node, report, test_data, test_mapping)
    except TwinError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


def _identify(data: Path, mapping_path: Path, train: str, test: str, out: Path, max_evaluations: int | None,
              single_node: bool, report: Path | None, test_data: Path | None = None,
              test_mapping: Path | None = None) -> None:
    from dataclasses import replace

    from controllers.estimation.evaluate import prediction_errors
    from controllers.estimation.house_toml import house_to_toml
    from controllers.estimation.identify import IdentifySettings, detect_phases, identify, thermal_data
    from scenarios.historical.mapping import load_mapping
    from scenarios.historical.reader import read_historical
    from twin.config import load_house

    mapping = load_mapping(mapping_path)
    if mapping.location is None:
        raise TwinError(f"{mapping_path}: [historical.location] is required (sun position for solar gains)")
    history, quality = read_historical(mapping, data)
    for line in quality.lines():
        console.print(escape(line), highlight=False, soft_wrap=True)
    train_window = parse_window(train, mapping.timezone, "--train")
    test_window = parse_window(test, mapping.timezone, "--test")
    if test_data is None and train_window[0] < test_window[1] and test_window[0] < train_window[1]:
        raise TwinError(f"--train {train} and --test {test} overlap: test on data the fit never saw")
    phases = detect_phases(history)
    table = Table(title="phases found from heater power (6 h means > 50 W)", header_style="bold")
    for column in ("start", "end", "hours", "heated"):
        table.add_column(column)
    for _, row in phases[phases["hours"] >= 12].iterrows():
        table.add_row(str(row["start"]), str(row["end"]), f"{row['hours']:.0f}", row["heated"])
    console.print(table)
    settings = IdentifySettings.from_mapping(mapping.identify)
    if max_evaluations is not None:
        settings = replace(settings, max_evaluations=max_evaluations)
    if single_node:
        settings = replace(settings, two_node=False)
    all_data = thermal_data(history, mapping.location, settings)
    fit_data = all_data.window(*train_window)
    console.print(f"fitting {len(all_data.rooms)} rooms ({', '.join(all_data.rooms)}) on {len(fit_data.times)} steps …")
    result = identify(fit_data, settings, mapping.location)
    console.print(f"fit: training RMSE {result.train_rmse_c:.3f} °C (open loop over the whole window), "
                  f"{result.evaluations} iterations: {result.message}")
    if result.evaluations >= settings.max_evaluations:  # least_squares stopped by max_nfev, not by convergence
        console.print(f"[bold yellow]warning:[/] the fit stopped at its evaluation cap ({settings.max_evaluations}) "
                      f"before converging: the parameters may be far from the optimum; raise --max-evaluations "
                      f"(or identify.max_evaluations in the mapping)", highlight=False, soft_wrap=True)
    test_all = all_data
    if test_data is not None:
        test_map = load_mapping(test_mapping) if test_mapping is not None else mapping
        test_history, test_quality = read_historical(test_map, test_data)
        for line in test_quality.lines():
            console.print(escape(f"test data: {line}"), highlight=False, soft_wrap=True)
        test_all = thermal_data(test_history, test_map.location or mapping.location, settings)
        if tuple(test_all.rooms) != tuple(all_data.rooms):
            raise TwinError(f"--test-data has rooms {list(test_all.rooms)}, the fit {list(all_data.rooms)}: "
                            f"a model is tested on the same rooms (rename them in the test mapping)")
    header = (f"Identified by `pems identify` from {data.name} with {mapping_path.name}\n"
              f"train {train_window[0]} .. {train_window[1]}, test {test_window[0]} .. {test_window[1]}\n"
              f"training RMSE {result.train_rmse_c:.3f} °C (open-loop simulation of the whole window)")
    placeholders = [r for r, has in zip(all_data.rooms, all_data.has_heater, strict=True) if not has]
    if placeholders:
        header += (f"\nRooms without a heater in the data ({', '.join(placeholders)}) carry a 0.1 kW placeholder "
                   f"heater: RoomConfig requires one; keep their relays off.")
    text = house_to_toml(result.house, header)
    write_atomically(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    house = load_house(out)  # what the twin and the MPC will read
    summary, rows = prediction_errors(house, test_all.window(*test_window))
    table = Table(title=f"room temperature prediction on the test window ({len(all_data.rooms)} rooms)",
                  header_style="bold")
    for column in ("ahead", "origins", "MAE °C", "RMSE °C", "bias °C", "max |e| °C", "persistence MAE °C"):
        table.add_column(column, justify="right")
    for horizon, row in summary.iterrows():
        table.add_row(f"{horizon:g} h", f"{int(row['origins'])}", f"{row['mae_c']:.3f}", f"{row['rmse_c']:.3f}",
                      f"{row['bias_c']:+.3f}", f"{row['max_abs_c']:.2f}", f"{row['persistence_mae_c']:.3f}")
    table.caption = "open loop from the Kalman estimate with measured heater power and weather"
    console.print(table)
    if report is not None:
        payload = {"train_window": [str(t) for t in train_window], "test_window": [str(t) for t in test_window],
                   "test_data": str(test_data or data),
                   "hit_evaluation_cap": result.evaluations >= settings.max_evaluations,
                   "train_rmse_c": result.train_rmse_c, "iterations": result.evaluations,
                   "test_errors": json.loads(summary.to_json(orient="index")),
                   "per_room_mae_c": json.loads(rows.groupby(["horizon_h", "room"])["error_c"].apply(
                       lambda e: e.abs().mean()).unstack().to_json(orient="index"))}
        write_atomically(report, lambda tmp: tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8"))
    console.print(f"wrote {out}")
    console.print_json(json.dumps({"mae_c": {f"{h:g}h": float(v) for h, v in summary["mae_c"].items()},
                                   "train_rmse_c": result.train_rmse_c}))


def register(app: typer.Typer) -> None:
    """The ``pems.cli`` entry point: adds ``pems identify``."""
    app.command("identify")(identify_command)
