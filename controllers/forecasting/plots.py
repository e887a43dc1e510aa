"""Plots of a backtest: error by lead time, and a sample week of forecasts against what happened."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from controllers.forecasting.evaluate import BacktestReport  # noqa: E402


def plot_error_by_lead(report: BacktestReport, path: Path, metric: str = "rmse") -> Path:
    """Bars of ``metric`` per lead bucket for the model and each baseline."""
    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(report.tables)
    buckets = [b for b in report.tables["model"].index if b != "all"]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = report.tables[name].loc[buckets, metric]
        ax.bar([x + i * width for x in range(len(buckets))], values, width, label=name)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(buckets))], buckets)
    ax.set_xlabel("lead time")
    ax.set_ylabel(f"{metric.upper()} [{report.unit}]" + (" (hourly)" if report.hourly else ""))
    ax.set_title(f"{report.kind} forecast error by lead time")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sample(scored: pd.DataFrame, path: Path, kind: str, unit: str, days: int = 7) -> Path:
    """The day-ahead forecasts of the first ``days`` test days: actual, point, P10–P90, baselines."""
    rows = scored[scored["day_ahead"]]
    start = rows["target"].min()
    rows = rows[rows["target"] < start + pd.Timedelta(days=days)].sort_values("target")
    fig, ax = plt.subplots(figsize=(11, 4))
    if "p10" in rows and "p90" in rows:
        ax.fill_between(rows["target"], rows["p10"], rows["p90"], step="post", alpha=0.25, label="P10–P90")
    ax.step(rows["target"], rows["actual"], where="post", color="black", lw=1.2, label="actual")
    ax.step(rows["target"], rows["point"], where="post", lw=1.2, label="forecast")
    if "reference" in rows and rows["reference"].notna().any():
        ax.step(rows["target"], rows["reference"], where="post", lw=1.0, ls="--", label="reference")
    ax.step(rows["target"], rows["persistence"], where="post", lw=0.8, alpha=0.7, label="persistence")
    ax.set_ylabel(f"{kind} [{unit}]")
    ax.set_title(f"day-ahead {kind} forecasts, first {days} test days")
    ax.legend(loc="upper left", ncols=5, fontsize=8)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
