"""``pems feeds``: fetch every feed once and show what the controller would see."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from twin.errors import ConfigError, TwinError

SHOWN_H = 48


def _when(text: str | None, tz: str) -> pd.Timestamp:
    if text is None:
        return pd.Timestamp.now(tz=tz)
    try:
        when = pd.Timestamp(text)
    except ValueError:
        raise ConfigError(f"--at {text!r} is not an ISO 8601 time") from None
    return when.tz_localize(tz) if when.tzinfo is None else when.tz_convert(tz)


def snapshot_json(snap: Any) -> dict[str, Any]:
    """The one JSON object of ``pems feeds --json``."""
    step = pd.Timedelta(seconds=snap.step_s)
    iso = [t.isoformat() for t in snap.times]
    prices = [{"start": iso[i], "end": (t + step).isoformat(), "spot_per_mwh": round(float(snap.spot_per_mwh[i]), 3),
               "import_price_per_kwh": round(float(snap.import_per_kwh[i]), 5),
               "export_price_per_kwh": round(float(snap.export_per_kwh[i]), 5), "source": str(snap.price_source[i])}
              for i, t in enumerate(snap.times)]
    w = snap.weather
    weather = [{"time": iso[i], "temp_c": round(float(w["temp_c"].iloc[i]), 2),
                "ghi_w_m2": round(float(w["ghi_w_m2"].iloc[i]), 1), "dni_w_m2": round(float(w["dni_w_m2"].iloc[i]), 1),
                "dhi_w_m2": round(float(w["dhi_w_m2"].iloc[i]), 1),
                "cloud_cover_pct": round(float(w["cloud_cover_pct"].iloc[i]), 1), "source": str(snap.weather_source[i])}
               for i in range(len(iso))]

    def quantiles(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [{"time": iso[i], **{q: round(float(frame[q].iloc[i]), 4) for q in ("p10", "p50", "p90")}}
                for i in range(len(iso))]

    return {"prices": prices, "weather": weather, "pv_kw": quantiles(snap.pv_kw),
            "base_load_kw": quantiles(snap.base_load_kw)}


def _tables(snap: Any, currency: str) -> list[Any]:
    hourly = pd.DataFrame({"spot": snap.spot_per_mwh, "import": snap.import_per_kwh, "export": snap.export_per_kwh,
                           "source": snap.price_source, "temp": snap.weather["temp_c"].to_numpy(),
                           "ghi": snap.weather["ghi_w_m2"].to_numpy(),
                           "cloud": snap.weather["cloud_cover_pct"].to_numpy(),
                           "wsrc": snap.weather_source, "pv10": snap.pv_kw["p10"].to_numpy(),
                           "pv50": snap.pv_kw["p50"].to_numpy(), "pv90": snap.pv_kw["p90"].to_numpy(),
                           "load50": snap.base_load_kw["p50"].to_numpy()}, index=snap.times)
    groups = hourly.groupby(hourly.index.floor("h"), sort=True)
    table = Table(title=f"What the controller sees (hourly means; import/export in {currency}/kWh)",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0))
    for name, justify in (("hour", "left"), ("€/MWh", "right"), ("import", "right"), ("export", "right"),
                          ("src", "left"), ("°C", "right"), ("GHI", "right"), ("PV P10/50/90 kW", "right"),
                          ("load kW", "right")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    short = {"published": "pub", "forecast": "fct", "cache": "cac"}
    for hour, g in groups:
        src = "pub" if (g["source"] == "published").all() else short.get(str(g["source"].iloc[-1]), "?")
        table.add_row(f"{hour:%a %H}h", f"{g['spot'].mean():.1f}", f"{g['import'].mean():.3f}",
                      f"{g['export'].mean():.3f}", src + ("" if g["wsrc"].iloc[0] == "forecast" else "*"),
                      f"{g['temp'].mean():.1f}", f"{g['ghi'].mean():.0f}",
                      f"{g['pv10'].mean():.1f}/{g['pv50'].mean():.1f}/{g['pv90'].mean():.1f}",
                      f"{g['load50'].mean():.2f}")
    return [table]


def _summary(snap: Any, currency: str) -> str:
    step_h = snap.step_s / 3600.0
    sources = pd.Series(snap.price_source).value_counts()
    wsources = pd.Series(snap.weather_source).value_counts()
    cheapest = snap.times[int(np.argmin(snap.import_per_kwh))]
    return (f"{len(snap.times)} steps of {snap.step_s / 60:g} min from {snap.times[0]:%Y-%m-%d %H:%M %Z}\n"
            f"prices: {', '.join(f'{n} {k}' for k, n in sources.items())}\n"
            f"import {snap.import_per_kwh.min():.3f}–{snap.import_per_kwh.max():.3f} {currency}/kWh, cheapest at "
            f"{cheapest:%a %H:%M}\n"
            f"weather: {', '.join(f'{n} {k}' for k, n in wsources.items())} (* in the table: cache or climatology)\n"
            f"PV P50 {snap.pv_kw['p50'].sum() * step_h:.1f} kWh (P10 {snap.pv_kw['p10'].sum() * step_h:.1f}, "
            f"P90 {snap.pv_kw['p90'].sum() * step_h:.1f}); household load P50 "
            f"{snap.base_load_kw['p50'].sum() * step_h:.1f} kWh")


def feeds(
    config: Annotated[Path, typer.Option(help="Live configuration TOML with a [feeds] table")],
    at: Annotated[str | None, typer.Option(help="House time to look from (ISO 8601; default: now)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "warning",
) -> None:
    """Fetch every feed once and show what the controller would see (48 h of prices, weather, PV and load)."""
    from hardware.config import load_live_config
    from hardware.console_log import configure_logging
    from hardware.feeds.source import feed_source
    from twin.cli import console, fail
    from twin.config import load_house, reference_house

    try:
        configure_logging(log_level)
        live = load_live_config(config)
        if live.feeds is None:
            raise ConfigError(f"{config}: no [feeds] table (see docs/feeds.md)", "feeds")
        house = load_house(live.house_file) if live.house_file else reference_house()
        base = None
        if live.feeds.pv_load == "scenario":  # against the emulator: PV and load replayed from its scenario
            from hardware.plant.forecasts import ScenarioForecasts
            from twin.registry import load_scenario

            base = ScenarioForecasts(house, load_scenario(live.forecasts.scenario), live.control.horizon_s)
        source = feed_source(live, house, base=base)
        when = _when(at, house.location.timezone)
        snap = source.snapshot(when.to_pydatetime(), force=True)
    except (TwinError, ValueError) as exc:
        raise fail(str(exc)) from None
    shown = min(len(snap.times), int(SHOWN_H * 3600 / snap.step_s))
    if shown < len(snap.times):
        import dataclasses
        snap = dataclasses.replace(
            snap, times=snap.times[:shown], spot_per_mwh=snap.spot_per_mwh[:shown],
            import_per_kwh=snap.import_per_kwh[:shown], export_per_kwh=snap.export_per_kwh[:shown],
            price_source=snap.price_source[:shown], weather=snap.weather.iloc[:shown],
            weather_source=snap.weather_source[:shown], pv_kw=snap.pv_kw.iloc[:shown],
            base_load_kw=snap.base_load_kw.iloc[:shown], comfort_lower_c=snap.comfort_lower_c[:shown],
            comfort_upper_c=snap.comfort_upper_c[:shown])
    if as_json:
        typer.echo(json.dumps(snapshot_json(snap)))
        return
    currency = live.feeds.tariff.currency
    out = Console(width=80) if console.width > 80 else console
    for table in _tables(snap, currency):
        out.print(table)
    out.print(_summary(snap, currency))
    if source.health.failing:
        for feed, fallback in source.health.failing.items():
            out.print(f"[yellow]{feed}: not fresh, using {fallback}[/yellow]")


def register(app: typer.Typer) -> None:
    if "feeds" not in {c.name for c in app.registered_commands}:
        app.command("feeds")(feeds)
    logging.getLogger("hardware.feeds").setLevel(logging.WARNING)
