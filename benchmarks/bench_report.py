"""The benchmark report: KPI tables and figures, as Markdown and as one self-contained HTML file.

Figures (matplotlib PNGs in ``figures/``, embedded in the HTML): cost per controller and
scenario; cost against discomfort; and per scenario the time series of every controller side
by side (room temperatures against the comfort band, grid exchange against the price, battery
and car).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from twin.runlog import room_names_of  # noqa: E402

#: The KPIs of the summary table, with their headings.
SUMMARY = {
    "cost": "cost", "saving": "saving vs baseline", "oracle_capture": "oracle capture",
    "oracle_gap": "gap to oracle", "oracle_gap_pct": "gap to oracle [%]",
    "discomfort_kh": "discomfort [K·h]", "import_kwh": "import [kWh]", "export_kwh": "export [kWh]",
    "peak_import_kw": "peak import [kW]", "grid_limit_violation_kwh": "over grid limit [kWh]",
    "ev_unmet_kwh": "EV unmet [kWh]", "relay_switches": "relay switches", "battery_cycles": "battery cycles",
    "cycles_without_plan": "cycles without plan", "decide_time_p95_s": "decision p95 [s]",
}


def _fmt(value: Any, key: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if key in ("saving", "oracle_capture", "self_consumption", "self_sufficiency", "oracle_gap_pct"):
        return f"{100 * value:.1f} %"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{value:,.3f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def summary_table(kpis: pd.DataFrame, scenario: str, baseline: str) -> pd.DataFrame:
    """The main KPIs of one scenario, one row per controller, as display strings."""
    here = kpis[kpis["scenario"] == scenario].set_index("controller")
    base_cost = here["cost"].get(baseline)
    rows = {}
    for controller, row in here.iterrows():
        values = dict(row)
        values["saving"] = ((base_cost - row["cost"]) / base_cost
                            if base_cost is not None and base_cost > 0 else None)
        gap = values.get("oracle_gap")
        known = gap is not None and pd.notna(gap) and row["cost"] - gap > 0  # % of a positive oracle cost only
        values["oracle_gap_pct"] = gap / (row["cost"] - gap) if known else None
        rows[controller] = {title: _fmt(values.get(key), key) for key, title in SUMMARY.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("controller")


#: Scorecard fields shown in the report, with their units.
SCORED = {"pv_power_kw": "PV [kW]", "base_load_kw": "base load [kW]", "import_price_per_kwh": "import price [/kWh]",
          "export_price_per_kwh": "export price [/kWh]", "outdoor_temp_c": "outdoor temp [°C]"}


def scorecard_table(results: Sequence[Any], scenario: str) -> pd.DataFrame | None:
    """MAE of the forecasts each controller planned with, by lead bucket: one row per (controller, field)."""
    rows = {}
    for r in results:
        card = getattr(r, "scorecard", None)
        if r.scenario != scenario or card is None or card.empty:
            continue
        for name, title in SCORED.items():
            part = card[card["field"] == name]
            if len(part):
                cells = {lead: _fmt(mae) for lead, mae in zip(part["lead"], part["mae"], strict=True)}
                rows[f"{r.controller} · {title}"] = {
                    **cells, "file": f"runs/{scenario}/{r.controller}/forecast_scorecard.csv"}
    if not rows:
        return None
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("controller · field (MAE)")


# --- figures ---------------------------------------------------------------------------------------

def plot_costs(kpis: pd.DataFrame, path: Path) -> None:
    table = kpis.pivot(index="scenario", columns="controller", values="cost")
    fig, ax = plt.subplots(figsize=(2.2 + 2.0 * len(table.index), 4.5))
    table.plot.bar(ax=ax, rot=0, width=0.8)
    ax.set_ylabel("cost")
    ax.set_title("Cost per scenario")
    ax.grid(axis="y", alpha=0.3)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.1f", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_cost_vs_discomfort(kpis: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 5))
    markers = dict(zip(sorted(kpis["controller"].unique()), "osD^vP*X", strict=False))
    colours = dict(zip(sorted(kpis["scenario"].unique()), plt.get_cmap("tab10").colors, strict=False))
    for row in kpis.itertuples():
        ax.scatter(row.discomfort_kh, row.cost, marker=markers[row.controller], color=colours[row.scenario],
                   s=60)
        ax.annotate(row.controller, (row.discomfort_kh, row.cost), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    for scenario, colour in colours.items():
        ax.scatter([], [], color=colour, label=scenario)
    ax.legend(fontsize=8)
    ax.set_xlabel("discomfort [K·h]")
    ax.set_ylabel("cost")
    ax.set_title("Cost against discomfort (lower left is better)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _hourly(log: pd.DataFrame) -> pd.DataFrame:
    numeric = log.select_dtypes(include=["number", "bool"]).astype(float)
    return numeric.resample("1h").mean() if len(numeric) > 1 else numeric


def plot_timeseries(logs: Mapping[str, pd.DataFrame], scenario: str, path: Path) -> None:
    """Rows: rooms against the comfort band; grid exchange against the import price; battery SOC
    and EV charging. One column per controller, shared axes."""
    names = list(logs)
    fig, axes = plt.subplots(3, len(names), figsize=(5.5 * len(names), 9), sharex=True, sharey="row",
                             squeeze=False)
    for col, name in enumerate(names):
        log = logs[name]
        frame = _hourly(log)
        rooms = room_names_of(log)
        temps = frame[[f"temp_c.{r}" for r in rooms]]
        lower = frame[[f"comfort_lower_c.{r}" for r in rooms]].to_numpy()
        ax = axes[0, col]
        ax.fill_between(frame.index, temps.min(axis=1), temps.max(axis=1), color="tab:red", alpha=0.2,
                        label="rooms min–max")
        ax.plot(frame.index, temps.mean(axis=1), color="tab:red", lw=1, label="rooms mean")
        ax.step(frame.index, lower.mean(axis=1), where="post", color="tab:green", lw=1, label="mean lower bound")
        ax.set_title(name)
        hours = frame["duration_s"] / 3600.0
        ax = axes[1, col]
        ax.fill_between(frame.index, frame["import_kwh"] / hours, 0, step="post", color="tab:red", alpha=0.5,
                        label="import")
        ax.fill_between(frame.index, -frame["export_kwh"] / hours, 0, step="post", color="tab:green", alpha=0.5,
                        label="export")
        price = ax.twinx()
        price.step(frame.index, frame["import_price_per_kwh"], where="post", color="black", lw=0.7)
        price.tick_params(labelsize=7)
        if col == len(names) - 1:
            price.set_ylabel("import price")
        ax = axes[2, col]
        ax.plot(frame.index, 100 * frame["battery_soc"], color="tab:blue", label="battery SOC [%]")
        ax.set_ylim(0, 100)
        car = ax.twinx()
        car.fill_between(frame.index, frame["ev_kwh"] / hours, 0, step="post", color="tab:orange", alpha=0.4)
        car.set_ylim(bottom=0)
        car.tick_params(labelsize=7)
        if col == len(names) - 1:
            car.set_ylabel("EV charging [kW]")
    axes[0, 0].set_ylabel("air temperature [°C]")
    axes[1, 0].set_ylabel("grid [kW] (+ import)")
    axes[2, 0].set_ylabel("battery SOC [%]")
    for row in range(2):
        axes[row, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{scenario}: hourly means, controllers side by side")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# --- documents -------------------------------------------------------------------------------------

def _markdown_table(frame: pd.DataFrame) -> str:
    header = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():
        lines.append("| " + " | ".join([str(index), *map(str, row.tolist())]) + " |")
    return "\n".join(lines)


def _full_table(kpis: pd.DataFrame) -> pd.DataFrame:
    shown = kpis.set_index(["scenario", "controller"]).T
    shown.columns = [f"{s} × {c}" for s, c in shown.columns]
    return shown.apply(lambda col: [_fmt(v, k) for k, v in col.items()]).rename_axis("KPI")


def write_report(directory: Path, kpis: pd.DataFrame, results: Sequence[Any], meta: Mapping[str, Any]) -> None:
    """``report.md``, ``report.html`` and ``figures/`` for a finished benchmark."""
    figures = directory / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        plot_costs(kpis, figures / "cost.png")
        plot_cost_vs_discomfort(kpis, figures / "cost_vs_discomfort.png")
        series = {}
        for scenario in dict.fromkeys(r.scenario for r in results):
            logs = {r.controller: r.result.log for r in results if r.scenario == scenario}
            name = f"timeseries_{scenario}.png"
            plot_timeseries(logs, scenario, figures / name)
            series[scenario] = name
    baseline = meta.get("baseline", "rule-based")
    sections: list[tuple[str, str, Any]] = []  # (heading, kind, payload)
    for scenario in series:
        sections.append((f"{scenario}", "table", summary_table(kpis, scenario, baseline)))
    for scenario in series:
        card = scorecard_table(results, scenario)
        if card is not None:
            sections.append((f"Forecast scorecard: {scenario}", "table", card))
    sections.append(("Cost", "figure", "cost.png"))
    sections.append(("Cost against discomfort", "figure", "cost_vs_discomfort.png"))
    for scenario, name in series.items():
        sections.append((f"Time series: {scenario}", "figure", name))
    sections.append(("All KPIs", "table", _full_table(kpis)))
    intro = (f"Written {meta.get('written', '')} by `{meta.get('command', 'pems bench')}`. House: "
             f"{meta.get('house')}; decisions every {meta.get('decision_interval_s')} s; seed {meta.get('seed')}. "
             f"Saving and oracle capture are against `{baseline}`; oracle capture = (cost_baseline − cost) / "
             f"(cost_baseline − cost_oracle); gap to oracle = cost − cost_oracle (in % of the oracle's cost). "
             f"{_window(meta)}Per-run logs, KPIs and plots: `runs/<scenario>/<controller>/`; "
             f"all KPIs: `kpis.csv`. Forecast scorecards (MAE, RMSE, bias of the forecasts a controller planned "
             f"with, by lead time): `forecast_scorecard.csv` in the run directory of every controller that plans "
             f"with forecasts. Decision times are wall-clock, on {_machine(meta.get('machine', {}))}.")
    policies = meta.get("policies") or {}
    if policies:
        intro += " RL policies: " + "; ".join(
            f"`{name}` = `{p['path']}`" + (f" ({p['note']})" if p.get("note") else "") for name, p in policies.items()
        ) + "."
    (directory / "report.md").write_text(_markdown(intro, sections), encoding="utf-8")
    (directory / "report.html").write_text(_html(intro, sections, figures), encoding="utf-8")


def _window(meta: Mapping[str, Any]) -> str:
    windows = meta.get("windows") or {}
    if meta.get("start") is None and meta.get("days") is None:
        return ""
    spans = "; ".join(f"{name} {lo} – {hi}" for name, (lo, hi) in windows.items())
    return f"Run windows: {spans} (the data before each window is the controllers' history, never run). "


def _machine(machine: Mapping[str, Any]) -> str:
    return (f"{machine.get('cpus', '?')} CPUs, {machine.get('platform', 'unknown platform')}, "
            f"Python {machine.get('python', '?')}")


def _markdown(intro: str, sections: Sequence[tuple[str, str, Any]]) -> str:
    parts = ["# Scenario benchmark", "", intro, ""]
    for heading, kind, payload in sections:
        parts += [f"## {heading}", ""]
        parts += [_markdown_table(payload) if kind == "table" else f"![{heading}](figures/{payload})", ""]
    return "\n".join(parts)


def _html(intro: str, sections: Sequence[tuple[str, str, Any]], figures: Path) -> str:
    style = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}th:first-child,td:first-child{text-align:left}img{max-width:100%}")
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Scenario benchmark</title>",
             f"<style>{style}</style></head><body><h1>Scenario benchmark</h1>", f"<p>{html.escape(intro)}</p>"]
    for heading, kind, payload in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if kind == "table":
            parts.append(payload.to_html(escape=True))
        else:
            data = base64.b64encode((figures / payload).read_bytes()).decode("ascii")
            parts.append(f"<img alt='{html.escape(heading)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
