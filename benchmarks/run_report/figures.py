"""The report's figures (matplotlib, Agg): each function draws one PNG and returns its file name."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from twin.runlog import room_names_of  # noqa: E402


def _save(fig: plt.Figure, folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(folder / name, dpi=90)
    plt.close(fig)
    return name


def rooms_figure(log: pd.DataFrame, folder: Path) -> str:
    """Per room: temperature against the comfort band, and the heating it got."""
    rooms = room_names_of(log)
    fig, axes = plt.subplots(max(len(rooms), 1), 1, figsize=(10, 2.2 * max(len(rooms), 1)), sharex=True,
                             squeeze=False)
    hours = log["duration_s"] / 3600.0
    for ax, room in zip(axes[:, 0], rooms, strict=False):
        ax.fill_between(log.index, log[f"comfort_lower_c.{room}"], log[f"comfort_upper_c.{room}"], step="post",
                        color="tab:green", alpha=0.15, label="comfort band")
        ax.plot(log.index, log[f"temp_c.{room}"], color="tab:red", lw=1, label="temperature")
        ax.set_ylabel(f"{room} [°C]")
        heat = ax.twinx()
        heat.step(log.index, log[f"heating_kwh.{room}"] / hours, where="post", color="tab:orange", lw=0.7,
                  alpha=0.7, label="heating")
        heat.set_ylabel("kW")
    axes[0, 0].legend(loc="upper left", fontsize=7)
    return _save(fig, folder, "rooms.png")


def storage_figure(log: pd.DataFrame, plans: pd.DataFrame | None, folder: Path) -> str:
    """Battery and EV: commanded (and planned, if a plan log exists) against what happened."""
    hours = log["duration_s"] / 3600.0
    fig, (bat, ev) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    actual = (log["battery_charge_kwh"] - log["battery_discharge_kwh"]) / hours
    bat.step(log.index, actual, where="post", lw=1, label="battery actual [kW]")
    bat.step(log.index, log["cmd_battery_power_kw"], where="post", lw=0.8, ls="--", label="commanded [kW]")
    if plans is not None and "battery_kw_now" in plans:
        bat.plot(plans.index, plans["battery_kw_now"], "k.", ms=3, label="planned [kW]")
    soc = bat.twinx()
    soc.plot(log.index, log["battery_soc"], color="tab:purple", lw=0.8)
    soc.set_ylabel("SOC")
    bat.legend(loc="upper left", fontsize=7)
    ev.step(log.index, log["ev_kwh"] / hours, where="post", lw=1, label="EV actual [kW]")
    ev.step(log.index, log["cmd_ev_power_kw"], where="post", lw=0.8, ls="--", label="commanded [kW]")
    if plans is not None and "ev_kw_now" in plans:
        ev.plot(plans.index, plans["ev_kw_now"], "k.", ms=3, label="planned [kW]")
    ev.legend(loc="upper left", fontsize=7)
    return _save(fig, folder, "storage.png")


def forecast_figure(scorecard: pd.DataFrame, folder: Path) -> str:
    """Forecast MAE by lead time, one line per forecast field."""
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for field, part in scorecard.groupby("field"):
        ax.plot(part["lead"].astype(str), part["mae"], marker="o", label=str(field))
    ax.set_xlabel("lead time")
    ax.set_ylabel("MAE (field units)")
    ax.legend(fontsize=7)
    return _save(fig, folder, "forecast_error.png")


def savings_figure(days: pd.DataFrame, folder: Path) -> str:
    """Per day: actual cost, the baseline's counterfactual cost, and the savings with their band."""
    fig, ax = plt.subplots(figsize=(10, 3.5))
    x = np.arange(len(days))
    ax.bar(x - 0.2, days["actual_cost"], 0.4, label="actual")
    ax.bar(x + 0.2, days["counterfactual_cost"], 0.4, label="counterfactual (rule-based)")
    ax.errorbar(x, days["savings"], yerr=[days["savings"] - days["savings_low"],
                                         days["savings_high"] - days["savings"]],
                fmt="ko", capsize=4, label="savings ± band")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(x, [str(d)[:10] for d in days["day"]])
    ax.set_ylabel("cost")
    ax.legend(fontsize=7)
    return _save(fig, folder, "savings.png")


def health_figure(log: pd.DataFrame, folder: Path) -> str:
    """Decision time over the run, and how often each plan status occurred."""
    fig, (t, s) = plt.subplots(1, 2, figsize=(10, 3), gridspec_kw={"width_ratios": [3, 1]})
    t.plot(log.index, log["decide_time_s"] * 1000.0, lw=0.7)
    t.set_ylabel("decision time [ms]")
    counts = log["plan_status"].fillna("").replace("", "(none)").value_counts()
    s.bar(counts.index.astype(str), counts.to_numpy())
    s.tick_params(axis="x", rotation=45, labelsize=7)
    s.set_ylabel("decisions")
    return _save(fig, folder, "health.png")
