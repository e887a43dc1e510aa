"""``pems forecast evaluate``: train a forecaster on recorded data before a date, score it after.

Registered through the ``pems.cli`` entry point (``register`` receives the typer app).
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from twin.errors import TwinError

if TYPE_CHECKING:
    from controllers.forecasting.base import Forecaster
    from controllers.forecasting.boosting import BoostingParams
    from controllers.forecasting.evaluate import BacktestSettings
    from scenarios.historical.mapping_spec import HistoricalMapping

console = Console()
err_console = Console(stderr=True)
WEATHER = ("ghi_w_m2", "dni_w_m2", "dhi_w_m2", "outdoor_temp_c")


class Kind(enum.StrEnum):
    """What ``pems forecast`` trains: PV power, base load or a price."""

    pv = "pv"
    load = "load"
    price = "price"


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def parse_when(text: str, timezone: str, option: str) -> pd.Timestamp:
    """A date (local midnight in ``timezone``) or an ISO date-time with offset."""
    try:
        when = pd.Timestamp(text)
    except ValueError:
        raise TwinError(f"{option} {text!r} is not a date (YYYY-MM-DD) or an ISO date-time") from None
    if when.tzinfo is None:
        when = when.tz_localize(timezone, nonexistent="shift_forward", ambiguous=True)
    return when.tz_convert(timezone)


def metrics_table(name: str, table: pd.DataFrame, unit: str) -> Table:
    """A rich table of backtest metrics by lead time (``unit`` of the errors)."""
    out = Table(title=name, show_header=True, header_style="bold")
    columns = [c for c in ("n", "rmse", "mae", "mape_pct", "bias", "rmse_pct_capacity", "pinball_p10",
                           "pinball_p50", "pinball_p90", "coverage_p10_p90") if c in table and table[c].notna().any()]
    out.add_column("lead")
    for c in columns:
        out.add_column(c.replace("_pct", " %").replace("rmse %_capacity", "rmse % cap"), justify="right")
    for lead, row in table.iterrows():
        out.add_row(str(lead), *("–" if pd.isna(row[c]) else (f"{int(row[c])}" if c == "n" else f"{row[c]:.4g}")
                                  for c in columns))
    out.caption = f"errors in {unit}; bias = forecast − actual"
    return out


def evaluate(
    kind: Annotated[Kind, typer.Option(help="What to forecast")],
    data: Annotated[Path, typer.Option(help="Recorded data (CSV or Parquet) the mapping reads as @data")],
    mapping: Annotated[Path, typer.Option(help="Mapping TOML file for the data")],

    train_until: Annotated[str | None, typer.Option(
        help="Train on data before this date (local midnight) or time")] = None,
    out: Annotated[Path | None, typer.Option(help="Write metrics, forecasts, plots and the model here")] = None,
    test_until: Annotated[str | None, typer.Option(help="Stop issuing forecasts at this date")] = None,
    issue_hour: Annotated[float, typer.Option(help="Local hour of the daily issue")] = 12.0,
    horizon_hours: Annotated[float, typer.Option(help="Forecast horizon [h]")] = 48.0,
    retrain_days: Annotated[float | None, typer.Option(
        help="Retrain every N days on everything before the issue time (default: train once)")] = None,
    weather: Annotated[bool, typer.Option(
        help="Give the forecaster the recorded weather as a (perfect) weather forecast")] = False,
    reference_input: Annotated[bool, typer.Option(
        help="PV: use the archived forecast (pv_forecast_kw) as an input (post-processing it)")] = False,
    hourly: Annotated[bool | None, typer.Option(help="Score hourly means (default: on for load)")] = None,
    rounds: Annotated[int, typer.Option(help="Boosting rounds")] = 300,
    test_data: Annotated[Path | None, typer.Option(
        help="Score on this file (read through the same mapping), training on all of --data; --train-until is "
             "then the test data's start unless given")] = None,
) -> None:
    """Train on data before --train-until, issue a forecast every day after it, score by lead time."""
    try:
        _evaluate(kind, data, mapping, train_until, out, test_until, issue_hour, horizon_hours, retrain_days, weather,
                  reference_input, hourly, rounds, test_data)
    except TwinError as exc:
        raise _fail(str(exc)) from None


def _evaluate(kind: Kind, data: Path, mapping_path: Path, train_until: str | None, out: Path | None,
              test_until: str | None, issue_hour: float, horizon_hours: float, retrain_days: float | None,
              weather: bool, reference_input: bool, hourly: bool | None, rounds: int,
              test_data: Path | None = None) -> None:
    from controllers.forecasting.boosting import BoostingParams
    from controllers.forecasting.evaluate import BacktestSettings, backtest, report
    from scenarios.historical.mapping import load_mapping
    from scenarios.historical.reader import read_historical

    mapping = load_mapping(mapping_path)
    history, quality = read_historical(mapping, data)
    for line in quality.lines():
        console.print(escape(line), highlight=False, soft_wrap=True)
    tz = mapping.timezone
    if test_data is not None:
        history, train_until = _with_test_data(mapping, history, test_data, train_until)
    elif train_until is None:
        raise TwinError("--train-until is required (or give --test-data)")
    settings = BacktestSettings(train_until=parse_when(train_until, tz, "--train-until"), issue_hour_local=issue_hour,
                                horizon_hours=horizon_hours, retrain_days=retrain_days,
                                test_until=parse_when(test_until, tz, "--test-until") if test_until else None)
    params = BoostingParams(rounds=rounds)
    forecaster, exogenous, reference, capacity, notes = _build(kind, mapping, history, settings, params, weather,
                                                               reference_input)
    console.print(f"training {type(forecaster).__name__} on {history.index[0]} .. {settings.train_until} …")
    scored = backtest(forecaster, history, settings, tz, exogenous=exogenous, reference=reference)
    hourly = (kind is Kind.load) if hourly is None else hourly
    rep = report(scored, kind.value, capacity=capacity, hourly=hourly, notes=tuple(notes))
    for name, table in rep.tables.items():
        console.print(metrics_table(f"{kind.value} — {name}" + (" (hourly)" if hourly else ""), table, rep.unit))
    for note in rep.notes:
        console.print(f"note: {escape(note)}", highlight=False)
    summary = {"kind": kind.value, "data": str(data), "mapping": str(mapping_path),
               "train_until": str(settings.train_until), "test": [str(scored["issued"].min()),
                                                                  str(scored["target"].max())],
               "issues": int(scored["issued"].nunique()), "issue_hour_local": issue_hour,
               "retrain_days": retrain_days, "hourly": hourly, "capacity_kw": capacity, "notes": list(rep.notes),
               "day_ahead": rep.summary(), "day_ahead_daily_energy": rep.daily,
               "tables": {name: json.loads(t.to_json(orient="index")) for name, t in rep.tables.items()},
               "data_quality": quality.to_dict()}
    if out is not None:
        _write(out, summary, scored, rep, forecaster, kind)
        console.print(f"wrote {out}/ (metrics.json, metrics_*.csv, forecasts.parquet, plots/, model/)")
    if rep.daily:
        console.print("day-ahead daily energy: " + "; ".join(
            f"{k}: MAPE {v['mape_pct']:.1f} %, RMSE {v['rmse_kwh']:.2f} kWh ({v['days']} days)"
            for k, v in rep.daily.items()), highlight=False)
    headline = {name: {k: v for k, v in row.items() if k in ("n", "rmse", "mae", "mape_pct", "bias",
                                                               "rmse_pct_capacity", "coverage_p10_p90")}
                for name, row in rep.summary().items()}
    console.print_json(json.dumps({"kind": kind.value, "day_ahead": headline}, default=str))


def _with_test_data(mapping: HistoricalMapping, train: pd.DataFrame, test_data: Path,
                    train_until: str | None) -> tuple[pd.DataFrame, str]:
    """Training rows of --data followed by the rows of --test-data (same mapping, same grid).

    The test file must start after the training data: a forecast may use only the past.
    """
    from scenarios.historical.reader import read_historical

    test, quality = read_historical(mapping, test_data)
    for line in quality.lines():
        console.print(escape(f"test data: {line}"), highlight=False, soft_wrap=True)
    if test.index[0] <= train.index[-1]:
        raise TwinError(f"--test-data starts at {test.index[0]}, not after the training data's end "
                        f"{train.index[-1]}: give a later test file (or use --train-until on one file)")
    step, test_step = train.index[1] - train.index[0], test.index[1] - test.index[0]
    if test_step != step:
        raise TwinError(f"--test-data is on a {test_step} grid, --data on {step}")
    columns = [c for c in train.columns if c in test.columns]
    grid = pd.date_range(train.index[0], test.index[-1], freq=step)
    joined = pd.concat([train[columns], test[columns]]).reindex(grid)  # a gap between the files stays NaN
    return joined, train_until or str(test.index[0])


def _build(kind: Kind, mapping: HistoricalMapping, history: pd.DataFrame, settings: BacktestSettings,
           params: BoostingParams, weather: bool, reference_input: bool) -> tuple[Any, ...]:
    from controllers.forecasting.features import Calendar
    from controllers.forecasting.load import LoadForecaster
    from controllers.forecasting.prices import PriceForecaster
    from controllers.forecasting.pv import PvForecaster
    from controllers.forecasting.solar import fit_orientation

    calendar = Calendar(mapping.timezone, mapping.country, mapping.subdivision)
    notes: list[str] = []
    exogenous = None
    reference = None
    capacity = None
    if weather:
        missing = [c for c in WEATHER if c not in history]
        if kind is Kind.load:
            missing = [c for c in ("outdoor_temp_c",) if c not in history]
        if missing:
            raise TwinError(f"--weather: the data have no {missing}")
        notes.append("weather forecast = the recorded weather (perfect): an upper bound on what weather adds")
    if kind is Kind.pv:
        if mapping.location is None or mapping.pv_capacity_kw is None:
            raise TwinError(f"{mapping.path}: --kind pv needs [historical.location] and pv_capacity_kw")
        if "pv_power_kw" not in history:
            raise TwinError(f"{mapping.path}: --kind pv needs a pv_power_kw column")
        train = history.loc[history.index < settings.train_until, "pv_power_kw"]
        site = fit_orientation(train, mapping.location, mapping.pv_capacity_kw)
        array = site.arrays[0]
        notes.append(f"PV orientation fitted on the training data: tilt {array.tilt_deg:g}°, azimuth "
                     f"{array.azimuth_deg:g}°, {array.peak_power_kw:g} kWp DC, AC limit {array.inverter_ac_kw:g} kW")
        if "pv_forecast_kw" in history:
            reference = history["pv_forecast_kw"]
        if reference_input:
            if reference is None:
                raise TwinError("--reference-input: the data have no pv_forecast_kw column")
            notes.append("the archived forecast (pv_forecast_kw) is an input: this post-processes it, at its own "
                         "(unrecorded) lead time, so it is not a day-ahead forecast from scratch")
        forecaster: Forecaster = PvForecaster(site, params=params, use_weather=weather,
                                  reference_column="pv_forecast_kw" if reference_input else None,
                                  horizon_hours=settings.horizon_hours)
        columns = [c for c in (WEATHER if weather else ()) + (("pv_forecast_kw",) if reference_input else ())]
        exogenous = history[columns] if columns else None
        capacity = mapping.pv_capacity_kw
        if not weather and not reference_input:
            notes.append("no weather forecast: the physical model is the clear-sky output")
    elif kind is Kind.load:
        forecaster = LoadForecaster(calendar, params=params, use_temperature=weather,
                                    horizon_hours=settings.horizon_hours)
        exogenous = history[["outdoor_temp_c"]] if weather else None
    else:
        target = "spot_price_per_kwh" if "spot_price_per_kwh" in history else "import_price_per_kwh"
        if target not in history:
            raise TwinError(f"{mapping.path}: --kind price needs spot_price_per_kwh or import_price_per_kwh")
        price = PriceForecaster(calendar, target=target, params=params, horizon_hours=settings.horizon_hours)
        forecaster = price
        exogenous = history[[target]]
        notes.append(f"published day-ahead prices ({price.publication_hour_local:g}:00 local for the next day) "
                     f"are exact; only later hours are forecast")
    return forecaster, exogenous, reference, capacity, notes


def _write(out: Path, summary: dict[str, Any], scored: pd.DataFrame, rep: Any, forecaster: Forecaster,
           kind: Kind) -> None:
    from controllers.forecasting.plots import plot_error_by_lead, plot_sample
    from twin.output import atomic_directory, write_json

    with atomic_directory(out, marker="metrics.json") as tmp:
        for name, table in rep.tables.items():
            table.to_csv(tmp / f"metrics_{name}.csv")
        scored.to_parquet(tmp / "forecasts.parquet")
        (tmp / "plots").mkdir()
        plot_error_by_lead(rep, tmp / "plots" / "error_by_lead.png")
        plot_sample(scored, tmp / "plots" / "sample_days.png", kind.value, rep.unit)
        forecaster.save(tmp / "model", metrics=summary["day_ahead"])
        write_json(tmp / "metrics.json", summary)


def register(app: typer.Typer) -> None:
    """The ``pems.cli`` entry point: adds ``pems forecast evaluate`` and ``pems forecast retrain``."""
    forecast_app = typer.Typer(help="Forecasters (PV, base load, prices) learned from recorded data.",
                               no_args_is_help=True)
    forecast_app.command("evaluate")(evaluate)
    from controllers.forecasting.retrain_cli import retrain

    forecast_app.command("retrain")(retrain)
    app.add_typer(forecast_app, name="forecast")
