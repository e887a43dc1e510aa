"""Forecast error metrics, by lead-time bucket: RMSE, MAE, MAPE, bias, RMSE % of capacity, pinball loss.

All take a frame of scored forecasts with one row per (issue, target step): ``lead_h``,
``actual`` and the forecast columns (``point`` and, for probabilistic forecasts, ``p10``,
``p50``, ``p90``). Errors are forecast − actual (a positive bias over-forecasts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Lead-time buckets [h): start inclusive, end exclusive.
LEAD_BUCKETS_H = ((0, 6), (6, 12), (12, 24), (24, 36), (36, 48))
QUANTILE_COLUMNS = {"p10": 0.1, "p50": 0.5, "p90": 0.9}


def pinball(actual: np.ndarray, forecast: np.ndarray, q: float) -> float:
    """Mean pinball (quantile) loss of ``forecast`` as the ``q`` quantile [unit of the data]."""
    diff = actual - forecast
    return float(np.mean(np.maximum(q * diff, (q - 1.0) * diff)))


def error_metrics(actual: np.ndarray, forecast: np.ndarray, *, capacity: float | None = None,
                  mape_floor: float = 0.0) -> dict[str, float]:
    """RMSE, MAE, bias, MAPE (over |actual| > ``mape_floor``) and RMSE as % of ``capacity``."""
    ok = np.isfinite(actual) & np.isfinite(forecast)
    a, f = actual[ok], forecast[ok]
    if a.size == 0:
        return {"n": 0, "rmse": np.nan, "mae": np.nan, "bias": np.nan, "mape_pct": np.nan, "rmse_pct_capacity": np.nan}
    e = f - a
    rmse = float(np.sqrt(np.mean(e ** 2)))
    big = np.abs(a) > mape_floor
    return {
        "n": int(a.size),
        "rmse": rmse,
        "mae": float(np.mean(np.abs(e))),
        "bias": float(np.mean(e)),
        "mape_pct": float(100.0 * np.mean(np.abs(e[big]) / np.abs(a[big]))) if big.any() else np.nan,
        "rmse_pct_capacity": 100.0 * rmse / capacity if capacity else np.nan,
    }


def probabilistic_metrics(frame: pd.DataFrame) -> dict[str, float]:
    """Pinball loss of each quantile column present, and the P10–P90 coverage."""
    out: dict[str, float] = {}
    actual = frame["actual"].to_numpy(dtype=float)
    for column, q in QUANTILE_COLUMNS.items():
        if column in frame:
            values = frame[column].to_numpy(dtype=float)
            ok = np.isfinite(values) & np.isfinite(actual)
            out[f"pinball_{column}"] = pinball(actual[ok], values[ok], q) if ok.any() else np.nan
    if "p10" in frame and "p90" in frame:
        inside = (actual >= frame["p10"].to_numpy()) & (actual <= frame["p90"].to_numpy())
        out["coverage_p10_p90"] = float(np.mean(inside)) if len(inside) else np.nan
    return out


def by_lead(frame: pd.DataFrame, forecast: str = "point", *, capacity: float | None = None,
            mape_floor: float = 0.0, probabilistic: bool = True) -> pd.DataFrame:
    """Metrics per lead bucket, for the day-ahead rows (``day_ahead`` True) and overall."""
    rows = []

    def add(label: str, part: pd.DataFrame) -> None:
        metrics = error_metrics(part["actual"].to_numpy(dtype=float), part[forecast].to_numpy(dtype=float),
                                capacity=capacity, mape_floor=mape_floor)
        if probabilistic:
            metrics.update(probabilistic_metrics(part))
        rows.append({"lead": label, **metrics})

    for lo, hi in LEAD_BUCKETS_H:
        add(f"{lo}-{hi} h", frame[(frame["lead_h"] >= lo) & (frame["lead_h"] < hi)])
    if "day_ahead" in frame:
        add("day-ahead", frame[frame["day_ahead"]])
    add("all", frame)
    return pd.DataFrame(rows).set_index("lead")


def to_hourly(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Hourly means of ``columns`` per issue (targets grouped by their clock hour), keeping lead/day-ahead."""
    hour = frame["target"].dt.tz_convert("UTC").dt.floor("h")  # in UTC: local floors are ambiguous at DST
    grouped = frame.assign(hour=hour).groupby(["issued", "hour"], sort=True)
    out = grouped[columns].mean()
    out["lead_h"] = grouped["lead_h"].min()
    if "day_ahead" in frame:
        out["day_ahead"] = grouped["day_ahead"].all()
    return out.reset_index().rename(columns={"hour": "target"})
