"""Issued forecasts that were recorded with the data, used where they exist."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from twin.scenario import ForecastModel


class ArchivedForecasts:
    """A ``ForecastModel``: archived forecasts where the data hold one, ``base`` elsewhere.

    An archived series holds, per target time, the value a forecaster published for it
    *at the time* (e.g. Home Assistant's record of ``sensor.p_pv_forecast``). Its issue time
    is not recorded, so the same value is shown at every lead time: for lead times longer
    than the original forecaster's this is optimistic, for shorter ones pessimistic. Where
    the archive is empty (NaN), the ``base`` model's forecast is used.

    Parameters
    ----------
    base : ForecastModel
    archived : mapping of forecast field -> pd.Series
        Tz-aware series (NaN where nothing was archived), e.g. ``{"pv_power_kw": ...}``.
    index : pd.DatetimeIndex
        The scenario's index; ``issue``'s ``step`` counts its rows.
    """

    def __init__(self, base: ForecastModel, archived: Mapping[str, pd.Series], index: pd.DatetimeIndex) -> None:
        self.base = base
        self.name = f"archived({', '.join(sorted(archived))})+{base.name}"
        self._archived = dict(archived)
        self._values = {k: s.reindex(index).to_numpy(dtype=float) for k, s in self._archived.items()}

    def __repr__(self) -> str:
        return f"ArchivedForecasts({sorted(self._archived)}, base={self.base!r})"

    def issue(self, actual: Mapping[str, np.ndarray], step: int, horizon_steps: int) -> dict[str, np.ndarray]:
        out = self.base.issue(actual, step, horizon_steps)
        for key, values in self._values.items():
            seg = np.full(horizon_steps, np.nan)
            part = values[step:step + horizon_steps]
            seg[:len(part)] = part
            out[key] = np.where(np.isfinite(seg), seg, out[key])
        return out

    def with_index(self, index: pd.DatetimeIndex) -> ArchivedForecasts:
        return ArchivedForecasts(self.base.with_index(index), self._archived, index)
