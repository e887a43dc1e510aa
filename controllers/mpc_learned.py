"""``mpc-learned``: the MPC planning with learned forecasts — its realistic mode.

What it is given, and nothing else:

* the house and the MPC settings (``--option``), as ``mpc``;
* ``ControllerContext.history``: the scenario's recorded rows *before* the run window (PV, base
  load, outdoor temperature, import/export prices). The PV, base-load and price forecasters
  (``controllers.forecasting``) are trained on it before the run;
* during the run, each observation: what the house measures now and the scenario's issued
  forecast, of which only the weather (outdoor temperature, irradiance) and the comfort band
  are kept — PV, base load and both prices are replaced by the learned forecasts, re-issued
  hourly from the history plus what has been observed since. Day-ahead prices enter only once
  published (13:00 for the next day); the forecasters are retrained every 30 days on all of it.

They are trained in ``reset()`` (the runner calls it before the first step), or else at the
first decision.

It never sees the future: no row at or after the run's start is in the history, and the
forecasters use data before the issue time only. ``mpc`` with the scenario's forecasts and
``oracle`` (the actual future) on the same window bound it: ``cost(mpc-learned) − cost(oracle)``
is the cost of forecast error. Without at least ``min_history_days`` (14) of history it fails,
naming the scenario, instead of silently planning with the scenario's forecasts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import pandas as pd

from controllers.forecasting.wrapper import (
    LearnedForecasts,
    LearnedForecastSettings,
    learned_forecasts_for,
    scenario_location,
)
from twin.errors import ScenarioError
from twin.registry import ControllerContext

if TYPE_CHECKING:
    from controllers.mpc.controller import MpcController


class LearnedMpc(LearnedForecasts):
    """``LearnedForecasts`` around an ``MpcController``, exposing the MPC's plan log."""

    def plan_frame(self) -> pd.DataFrame:
        inner = cast("MpcController", self.inner)  # mpc_learned() wraps an MpcController (Pyomo loaded lazily)
        return inner.plan_frame()

    def reset(self) -> None:
        super().reset()
        # Train on the history before the run here, not in the first decision, so that decision
        # times stay the MPC's; the first issue then finds the forecasters trained (no refit).
        # Forecasters loaded trained (a live run's model store) are not refitted.
        if self._pretrain is not None and not self._pretrain.empty and not all(
                f.training for f in self.forecasters.values()):
            self._fit(self._pretrain, self._pretrain.index[-1].value)


def make_mpc_learned(ctx: ControllerContext, settings: LearnedForecastSettings | None = None) -> LearnedMpc:
    """The ``mpc-learned`` factory: an MPC (``ctx.options`` are its options) with learned forecasts."""
    from controllers.catalog import _mpc  # Pyomo is imported only when an MPC is made

    settings = settings or LearnedForecastSettings()
    where = f"scenario {ctx.scenario.name!r}" if ctx.scenario is not None else "live mode"
    history = ctx.history
    days = 0.0
    if history is not None and not history.empty:
        end = ctx.scenario.start if ctx.scenario is not None else history.index[-1]
        days = (end - history.index[0]).total_seconds() / 86400.0
    if days < settings.min_history_days:
        raise ScenarioError(f"mpc-learned: {where} has {days:.1f} days of data before the run, its forecasters "
                            f"need {settings.min_history_days:g}: run a later window "
                            f"(pems bench --start DATE --days N)")
    if ctx.scenario is not None and history is not None and history.index[-1] >= ctx.scenario.start:
        raise ScenarioError(f"mpc-learned: the history handed for {where} reaches {history.index[-1]}, "
                            f"not before the run's start {ctx.scenario.start}")
    metadata = ctx.scenario.metadata if ctx.scenario is not None else {}
    capacity = float(metadata["pv_capacity_kw"]) if "pv_capacity_kw" in metadata else None
    wrapped = learned_forecasts_for(_mpc(ctx), ctx.house, history=history, location=scenario_location(metadata),
                                    country=metadata.get("country"), pv_capacity_kw=capacity, settings=settings)
    return LearnedMpc(wrapped.inner, pv=wrapped.pv, load=wrapped.load, prices=wrapped.prices, history=history,
                      settings=settings)
