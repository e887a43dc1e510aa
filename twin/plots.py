"""Plots of a run log (matplotlib, headless). Long runs are drawn from hourly means."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from twin.runlog import room_names_of  # noqa: E402

LONG_RUN_DAYS = 14


def _plot_frame(log: pd.DataFrame) -> pd.DataFrame:
    """Hourly means of the numeric columns for long runs, so plots stay readable and fast."""
    numeric = log.select_dtypes(include=["number", "bool"]).astype(float)
    if len(log) and (log.index[-1] - log.index[0]) > pd.Timedelta(days=LONG_RUN_DAYS):
        return numeric.resample("1h").mean()
    return numeric


def _power_kw(log: pd.DataFrame, column: str) -> pd.Series:
    return log[column] / (log["duration_s"] / 3600.0)


def plot_rooms(log: pd.DataFrame, path: Path) -> None:
    """Room temperatures against their comfort bands, and the heating relays."""
    rooms = room_names_of(log)
    frame = _plot_frame(log)
    cols = 4
    rows = max(1, math.ceil(len(rooms) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(16, 2.6 * rows), sharex=True, squeeze=False)
    for ax, room in zip(axes.flat, rooms, strict=False):
        ax.fill_between(frame.index, frame[f"comfort_lower_c.{room}"], frame[f"comfort_upper_c.{room}"],
                        step="post", color="tab:green", alpha=0.15, label="comfort band")
        ax.plot(frame.index, frame[f"temp_c.{room}"], color="tab:red", lw=0.8, label="air")
        ax.set_title(room, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(rooms):]:
        ax.set_visible(False)
    axes.flat[0].set_ylabel("°C")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Room air temperature against the comfort band")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_battery(log: pd.DataFrame, path: Path) -> None:
    """Battery state of charge and its power (+ charging, − discharging)."""
    frame = _plot_frame(log)
    power = _power_kw(frame, "battery_charge_kwh") - _power_kw(frame, "battery_discharge_kwh")
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(14, 6), sharex=True)
    ax1.plot(frame.index, frame["battery_soc"] * 100, color="tab:blue")
    ax1.set_ylabel("SOC [%]")
    ax1.set_ylim(0, 100)
    ax2.fill_between(frame.index, power, 0, step="post", color="tab:purple", alpha=0.6)
    ax2.set_ylabel("power [kW] (+ charge)")
    fig.suptitle("Battery")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_grid(log: pd.DataFrame, path: Path) -> None:
    """Grid import and export power, with the import and export prices."""
    frame = _plot_frame(log)
    fig, ax = plt.subplots(figsize=(14, 5))
    ax.fill_between(frame.index, _power_kw(frame, "import_kwh"), 0, step="post", color="tab:red", alpha=0.5,
                    label="import")
    ax.fill_between(frame.index, -_power_kw(frame, "export_kwh"), 0, step="post", color="tab:green", alpha=0.5,
                    label="export")
    ax.set_ylabel("grid power [kW] (+ import)")
    ax.legend(loc="upper left")
    price = ax.twinx()
    price.step(frame.index, frame["import_price_per_kwh"], where="post", color="black", lw=0.8,
               label="import price")
    price.step(frame.index, frame["export_price_per_kwh"], where="post", color="grey", lw=0.8, ls="--",
               label="export price")
    price.axhline(0, color="grey", lw=0.5)
    price.set_ylabel("price [per kWh]")
    price.legend(loc="upper right")
    fig.suptitle("Grid exchange and price")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_energy(log: pd.DataFrame, path: Path) -> None:
    """PV power against the stacked loads (base load, heating, EV)."""
    frame = _plot_frame(log)
    fig, ax = plt.subplots(figsize=(14, 5))
    stack = [_power_kw(frame, c) for c in ("base_load_kwh", "heating_kwh", "ev_kwh")]
    ax.stackplot(frame.index, *stack, labels=["base load", "heating", "EV"], step="post", alpha=0.7)
    ax.plot(frame.index, _power_kw(frame, "pv_kwh"), color="gold", lw=1.2, label="PV")
    ax.set_ylabel("power [kW]")
    ax.legend(loc="upper left")
    fig.suptitle("PV and loads")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_ev(log: pd.DataFrame, path: Path) -> None:
    """EV connection, state of charge and charging power."""
    frame = _plot_frame(log)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(14, 5), sharex=True)
    ax1.fill_between(frame.index, frame["ev_connected"], 0, step="post", color="tab:grey", alpha=0.3,
                     label="connected")
    ax1.plot(frame.index, frame["ev_soc"], color="tab:blue", label="car SOC")
    ax1.set_ylim(0, 1.05)
    ax1.legend(loc="upper left")
    ax2.fill_between(frame.index, _power_kw(frame, "ev_kwh"), 0, step="post", color="tab:orange", alpha=0.7)
    ax2.set_ylabel("charging [kW]")
    fig.suptitle("EV sessions")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


PLOTS = {
    "rooms.png": plot_rooms,
    "battery.png": plot_battery,
    "grid.png": plot_grid,
    "pv_load.png": plot_energy,
    "ev.png": plot_ev,
}


def write_plots(log: pd.DataFrame, directory: Path) -> list[Path]:
    """Every standard plot of ``log`` as PNG files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, plot in PLOTS.items():
            path = directory / name
            plot(log, path)
            written.append(path)
    return written
