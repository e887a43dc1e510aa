"""Build the report of a run directory: read what is there, draw the figures, write ``report/index.html``.

A simulated run directory (``pems simulate``, ``pems bench``'s runs/…) has ``log.parquet``,
``kpis.json``, ``meta.json`` and maybe ``plans.csv`` / ``forecast_scorecard.csv``. A live one has
``live.json``, the log in ``log.parquet`` or ``log/part-*.parquet`` and ``events.jsonl``. Sections
whose inputs are missing say so instead of failing.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.run_report import figures
from twin.errors import TwinError

logger = logging.getLogger(__name__)


def read_log(run_dir: Path) -> pd.DataFrame:
    if (run_dir / "log.parquet").exists():
        return pd.read_parquet(run_dir / "log.parquet")
    parts = sorted((run_dir / "log").glob("part-*.parquet"))
    if not parts:
        raise TwinError(f"{run_dir}: not a run directory (no log.parquet, no log/part-*.parquet)")
    return pd.concat([pd.read_parquet(p) for p in parts])


def _json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TwinError(f"{path}: not valid JSON ({exc})") from None


def read_events(run_dir: Path) -> pd.DataFrame:
    """Alerts, overrides and mode changes of a live run (``events.jsonl``); bad lines are skipped and counted."""
    path = run_dir / "events.jsonl"
    rows, bad = [], 0
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                bad += 1
    if bad:
        logger.warning("%s: %d unreadable lines skipped", path, bad)
    return pd.DataFrame(rows)


def savings_table(log: pd.DataFrame, meta: dict[str, Any], house_path: Path | None,
                  scenario_path: str | None = None) -> tuple[pd.DataFrame | None, str]:
    """Counterfactual savings per complete day (``None`` and why, when they cannot be computed)."""
    from controllers.savings.counterfactual import counterfactual_days, scenario_start_state
    from twin.config import load_house, reference_house
    from twin.registry import load_scenario

    try:
        house = load_house(house_path) if house_path else reference_house()
        if list(house.room_names) != [c.split(".", 1)[1] for c in log.columns if c.startswith("temp_c.")]:
            return None, "the log's rooms are not the house's: pass --house"
        scenario = None
        if scenario_path or meta.get("scenario"):
            try:
                scenario = load_scenario(scenario_path or meta["scenario"])
            except TwinError:
                if scenario_path:
                    raise
                scenario = None
        if scenario is not None:
            scenario = scenario.window(log.index[0], log.index[-1] + pd.Timedelta(seconds=float(
                log["duration_s"].iloc[-1])))
            temps0, soc0 = scenario_start_state(house, scenario)
            days = counterfactual_days(log, house, house, first_temps_c=temps0, first_soc=soc0,
                                       ev_sessions=scenario.ev_sessions, comfort_mode=scenario.data["comfort_mode"],
                                       weather=scenario.data)
        else:
            days = counterfactual_days(log, house, house)
    except (TwinError, ValueError) as exc:
        return None, f"no counterfactual: {exc}"
    if not days:
        return None, "no complete day in this run with a known starting state"
    frame = pd.DataFrame([{"day": d.day, "actual_cost": d.actual_cost, "counterfactual_cost": d.counterfactual_cost,
                           "savings": d.savings, "savings_low": d.savings_low, "savings_high": d.savings_high,
                           "model_rmse_c": d.model_rmse_c} for d in days])
    return frame, ""


def _table(frame: pd.DataFrame, max_rows: int = 50) -> str:
    return frame.head(max_rows).to_html(index=False, float_format=lambda v: f"{v:,.3f}", border=0,
                                        classes="data")


def write_report(run_dir: Path, house_path: Path | None = None, scenario: str | None = None) -> Path:
    """Write ``RUN_DIR/report/index.html`` and its PNGs; returns the page's path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TwinError(f"{run_dir} is not a directory")
    log = read_log(run_dir)
    meta = _json(run_dir / "meta.json") or _json(run_dir / "live.json")
    kpis = _json(run_dir / "kpis.json")
    out = run_dir / "report"
    plans = pd.read_csv(run_dir / "plans.csv", index_col=0, parse_dates=True) if (
        run_dir / "plans.csv").exists() else None
    sections: list[tuple[str, str]] = []

    def figure(title: str, name: str, note: str = "") -> None:
        body = f'<img src="{html.escape(name)}" alt="{html.escape(title)}">'
        sections.append((title, body + (f"<p>{html.escape(note)}</p>" if note else "")))

    figure("Plan vs actual: rooms", figures.rooms_figure(log, out))
    figure("Plan vs actual: battery and EV", figures.storage_figure(log, plans, out),
           "" if plans is not None else "No plan log in this run directory: commanded vs actual only.")
    if (run_dir / "forecast_scorecard.csv").exists():
        figure("Forecast error by lead time", figures.forecast_figure(
            pd.read_csv(run_dir / "forecast_scorecard.csv"), out))
    else:
        sections.append(("Forecast error by lead time", "<p>No forecast scorecard in this run directory.</p>"))
    days, why = savings_table(log, meta, house_path, scenario)
    if days is not None:
        figure("Daily cost, counterfactual and savings", figures.savings_figure(days, out))
        sections[-1] = (sections[-1][0], sections[-1][1] + _table(days))
    else:
        sections.append(("Daily cost, counterfactual and savings", f"<p>{html.escape(why)}</p>"))
    events = read_events(run_dir)
    sections.append(("Alerts and overrides", _table(events) if not events.empty else "<p>None recorded.</p>"))
    figure("Controller health", figures.health_figure(log, out))
    kpi_rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
                       for k, v in kpis.items())
    title = f"PEMS run report — {meta.get('scenario', meta.get('mode', run_dir.name))} × {meta.get('controller', '')}"
    body = "".join(f"<section><h2>{html.escape(t)}</h2>{b}</section>" for t, b in sections)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto;padding:1em}}img{{max-width:100%}}
table.data,table.kpis{{border-collapse:collapse;font-size:12px}}td,th{{padding:2px 8px;text-align:right}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>{html.escape(str(log.index[0]))} – {html.escape(str(log.index[-1]))}, {len(log)} intervals.</p>
<section><h2>KPIs</h2><table class="kpis">{kpi_rows}</table></section>{body}</body></html>
"""
    (out / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}"
    return "–" if value is None else str(value)
