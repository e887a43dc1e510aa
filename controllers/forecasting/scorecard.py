"""Forecast scorecards: how far off the forecasts a controller planned with were, by lead time.

A :class:`ForecastScorecard` collects issued forecasts (sampled every ``every_s``) and the
actual value of every data step as observed, then scores each forecast step against the
actual at its target time. :class:`ScoredController` wraps any controller and fills a
scorecard from the observations it sees — so a benchmark can write one with every run
(``wrapper.scorecard.table()``), whatever the forecasts come from (the scenario's, learned,
or perfect).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from controllers.forecasting.metrics import LEAD_BUCKETS_H
from twin.contracts import Command, Controller, Forecast, Observation

SCORED_FIELDS = ("pv_power_kw", "base_load_kw", "import_price_per_kwh", "export_price_per_kwh", "outdoor_temp_c")


@dataclass
class ForecastScorecard:
    """Issued forecasts and observed actuals, scored on demand."""

    fields: tuple[str, ...] = SCORED_FIELDS
    every_s: float = 3600.0
    _issued: list[tuple[int, int, dict[str, np.ndarray]]] = field(default_factory=list)  # (start ns, step ns, values)
    _actual: dict[str, dict[int, float]] = field(default_factory=dict)
    _next_ns: int | None = None

    def record_forecast(self, forecast: Forecast) -> None:
        """Keep ``forecast`` if at least ``every_s`` passed since the last one kept."""
        start_ns = pd.Timestamp(forecast.start).value
        if self._next_ns is not None and start_ns < self._next_ns:
            return
        self._next_ns = start_ns + int(self.every_s * 1e9)
        values = {name: np.array(getattr(forecast, name), dtype=float) for name in self.fields}
        self._issued.append((start_ns, int(forecast.step_s * 1e9), values))

    def record_actual(self, step_start: pd.Timestamp, values: dict[str, float]) -> None:
        """The actual value of the data step starting at ``step_start`` (the latest reading wins)."""
        t = pd.Timestamp(step_start).value
        for name in self.fields:
            if name in values and np.isfinite(values[name]):
                self._actual.setdefault(name, {})[t] = float(values[name])

    def rows(self) -> pd.DataFrame:
        """One row per scored forecast step: ``field``, ``issued``, ``lead_h``, ``forecast``, ``actual``."""
        out = []
        for start_ns, step_ns, values in self._issued:
            for name, series in values.items():
                actual = self._actual.get(name, {})
                targets = start_ns + step_ns * np.arange(len(series))
                got = np.array([actual.get(int(t), np.nan) for t in targets])
                ok = np.isfinite(got)
                if ok.any():
                    out.append(pd.DataFrame({"field": name, "issued": pd.to_datetime(start_ns, utc=True),
                                             "lead_h": (targets[ok] - start_ns) / 3.6e12, "forecast": series[ok],
                                             "actual": got[ok]}))
        if not out:
            return pd.DataFrame(columns=["field", "issued", "lead_h", "forecast", "actual"])
        return pd.concat(out, ignore_index=True)

    def table(self, buckets: Iterable[tuple[float, float]] = LEAD_BUCKETS_H) -> pd.DataFrame:
        """MAE, RMSE and bias (forecast − actual) per field and lead bucket."""
        rows = self.rows()
        records = []
        for name in self.fields:
            part = rows[rows["field"] == name]
            for lo, hi in buckets:
                sel = part[(part["lead_h"] >= lo) & (part["lead_h"] < hi)]
                e = (sel["forecast"] - sel["actual"]).to_numpy(dtype=float)
                records.append({"field": name, "lead": f"{lo:g}-{hi:g} h", "n": len(e),
                                "mae": float(np.mean(np.abs(e))) if len(e) else np.nan,
                                "rmse": float(np.sqrt(np.mean(e ** 2))) if len(e) else np.nan,
                                "bias": float(np.mean(e)) if len(e) else np.nan})
        return pd.DataFrame(records).set_index(["field", "lead"])


def observed_actuals(obs: Observation) -> dict[str, float]:
    """What an observation says about the data step it falls in."""
    return {"pv_power_kw": obs.pv_power_kw, "base_load_kw": obs.base_load_kw,
            "import_price_per_kwh": obs.import_price_per_kwh, "export_price_per_kwh": obs.export_price_per_kwh,
            "outdoor_temp_c": obs.outdoor_temp_c}


class ScoredController:
    """Wraps a controller; records the forecasts it is shown and the actuals, into :attr:`scorecard`."""

    def __init__(self, inner: Controller, every_s: float = 3600.0) -> None:
        self.inner = inner
        self.every_s = every_s
        self.scorecard = ForecastScorecard(every_s=every_s)
        self.perfect_foresight = getattr(inner, "perfect_foresight", False)

    def reset(self) -> None:
        self.scorecard = ForecastScorecard(every_s=self.every_s)
        if hasattr(self.inner, "reset"):
            self.inner.reset()

    def decide(self, obs: Observation) -> Command:
        self.scorecard.record_actual(pd.Timestamp(obs.forecast.start), observed_actuals(obs))
        self.scorecard.record_forecast(obs.forecast)
        return self.inner.decide(obs)
