"""Learned forecasters in ``pems live``: trained on the house's history at start-up, retrained in the background.

Thin wiring of ``controllers.forecasting.retrain`` / ``drift`` into a live run (the scheduling, the
A/B test and the drift rule live there):

* at start-up the history folder is read (``scenarios.history.store``); with less than
  ``min_history_days`` the run is refused, naming the folder and what is missing. Models accepted
  earlier are loaded from the model store (a restart reuses them); otherwise the forecasters are
  trained on the history and stored as the first accepted version;
* the controller is ``mpc-learned`` (or any controller wrapped in ``LearnedForecasts`` with
  ``learned_forecasts = true``) with its own in-loop retraining switched off;
* ``on_decision`` (the runner's observer hook) keeps the history, submits a retraining job every
  ``retrain_every_days`` to a child process, swaps in a model the A/B test accepted, and feeds the
  drift monitors; ``on_end`` flushes the history and stops the child process.
"""

from __future__ import annotations

import copy
import logging
import pickle
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from controllers.forecasting.drift import DriftMonitor
from controllers.forecasting.retrain import ModelStore, RetrainJob, RetrainSettings, RetrainWorker, retrain_once
from controllers.forecasting.wrapper import LearnedForecasts, LearnedForecastSettings, learned_forecasts_for
from hardware.live.history import HistoryWriter
from scenarios.history.store import read_history
from twin.config import HouseConfig
from twin.contracts import Command, Controller, Observation
from twin.errors import TwinError
from twin.registry import ControllerContext
from twin.runner import PlanInfo

log = logging.getLogger(__name__)
#: model-store kind -> the forecast column it stands in for.
KINDS = {"pv": "pv_power_kw", "load": "base_load_kw", "import_price": "import_price_per_kwh",
         "export_price": "export_price_per_kwh"}


class LiveHistoryError(TwinError):
    """The live run cannot start its learned forecasters (too little history, unreadable models)."""


def _forecasters(wrapper: LearnedForecasts) -> dict[str, Any]:
    named = {"pv": wrapper.pv, "load": wrapper.load, "import_price": wrapper.prices.get("import_price_per_kwh"),
             "export_price": wrapper.prices.get("export_price_per_kwh")}
    return {k: f for k, f in named.items() if f is not None}


def _install(wrapper: LearnedForecasts, kind: str, forecaster: Any) -> None:
    if kind == "pv":
        wrapper.pv = forecaster
    elif kind == "load":
        wrapper.load = forecaster
    else:
        wrapper.prices[KINDS[kind]] = forecaster
    wrapper._cache = None  # the next decision issues from the new model  # noqa: SLF001 - the wrapper's own cache


class LiveForecasting:
    """The learned forecasters of one live run, and the observer that keeps them current."""

    def __init__(self, house: HouseConfig, history_dir: Path, model_dir: Path, settings: RetrainSettings,
                 step_minutes: float = 15.0, alert: Callable[[str], None] | None = None) -> None:
        self.house = house
        self.history_dir = Path(history_dir)
        self.store = ModelStore(model_dir)
        self.settings = settings
        self.step_minutes = step_minutes
        self.alert = alert or (lambda message: log.warning("%s", message))
        self.writer = HistoryWriter(self.history_dir, house.room_names, house.location.timezone)
        self.worker = RetrainWorker()
        self.wrapper: LearnedForecasts | None = None
        self.monitors: dict[str, DriftMonitor] = {}
        self._last_submit: pd.Timestamp | None = None
        self.outcomes: list[Any] = []

    # --- start-up -------------------------------------------------------------------------------------------

    def history(self, now: pd.Timestamp | None = None) -> pd.DataFrame:
        tz = self.house.location.timezone
        try:
            frame = read_history(self.history_dir, tz, end=now, step_minutes=self.step_minutes)
        except TwinError as exc:
            raise LiveHistoryError(f"learned forecasts need the house's history: {exc}") from None
        days = 0.0 if frame.empty else (frame.index[-1] - frame.index[0]).total_seconds() / 86400.0
        if days < self.settings.min_history_days:
            raise LiveHistoryError(f"learned forecasts: {self.history_dir} holds {days:.1f} days of history, "
                                   f"{self.settings.min_history_days:g} are needed; import older data "
                                   f"(pems history import) or run another controller until it has grown")
        return frame

    def build(self, name: str, context: ControllerContext, make: Callable[[str, ControllerContext], Controller],
              ) -> LearnedForecasts:
        """The controller ``name`` planning with learned forecasts, trained (or reloaded) now."""
        history = self.history()
        from dataclasses import replace

        context = replace(context, history=history)
        off = LearnedForecastSettings(retrain_every_days=None, min_history_days=self.settings.min_history_days)
        if name == "mpc-learned":
            from controllers.mpc_learned import make_mpc_learned

            wrapper: LearnedForecasts = make_mpc_learned(context, off)
        else:
            wrapper = learned_forecasts_for(make(name, context), self.house, history=history, settings=off)
        stored = {kind: self.store.load_current(kind) for kind in _forecasters(wrapper)}
        for kind, forecaster in stored.items():
            if forecaster is not None:
                _install(wrapper, kind, forecaster)
                log.info("learned forecasts: %s model reused from %s", kind, self.store.current_dir(kind))
        now = history.index[-1] + pd.Timedelta(minutes=self.step_minutes)
        for kind, forecaster in _forecasters(wrapper).items():
            if not forecaster.training:  # nothing accepted yet: the first A/B cycle, against no model
                outcome = retrain_once(self.store, kind, forecaster, history, now, self.house.location.timezone,
                                       self.settings)
                log.info("learned forecasts: %s", outcome.line())
        self.wrapper = wrapper
        self._arm_drift()
        self._last_submit = now
        return wrapper

    def _arm_drift(self) -> None:
        window = max(1, round(self.settings.test_days * 1440 / self.step_minutes))
        self.monitors = {}
        if self.wrapper is None:
            return
        for kind in _forecasters(self.wrapper):
            mae = self.store.metrics(kind).get("training_mae")
            if isinstance(mae, int | float) and mae > 0:
                self.monitors[kind] = DriftMonitor(kind, float(mae), self.settings.drift_factor, window)

    # --- the observer ---------------------------------------------------------------------------------------

    def on_decision(self, time: datetime, obs: Observation, command: Command, info: PlanInfo) -> None:
        """The runner's observer hook (``twin.runner.DecisionObserver``)."""
        self.writer.on_decision(obs, command)
        if self.wrapper is None:  # history only: the controller does not plan with learned forecasts
            return
        now = pd.Timestamp(obs.time)
        self._drift(obs, now)
        outcomes = self.worker.poll()
        if outcomes:
            self._accept(outcomes)
        if (self._last_submit is None or now - self._last_submit >= pd.Timedelta(days=self.settings.every_days)) \
                and not self.worker.busy:
            self.writer.flush()  # the job reads the history from disk
            self._submit(now)

    def _drift(self, obs: Observation, now: pd.Timestamp) -> None:
        cache = self.wrapper._cache if self.wrapper is not None else None  # noqa: SLF001
        if cache is None:
            return
        issued_ns, step_ns, series = cache
        offset = (now.value - issued_ns) // step_ns
        actual = {"pv": obs.pv_power_kw, "load": obs.base_load_kw, "import_price": obs.import_price_per_kwh,
                  "export_price": obs.export_price_per_kwh}
        for kind, monitor in self.monitors.items():
            values = series.get(KINDS[kind])
            if values is None or not 0 < offset < len(values):
                continue
            alert = monitor.update(float(actual[kind]), float(values[offset]))
            if alert is not None:
                self.alert(alert.message())

    def _submit(self, now: pd.Timestamp) -> None:
        if self.wrapper is None:
            return
        candidates = tuple((kind, pickle.dumps(copy.deepcopy(f))) for kind, f in _forecasters(self.wrapper).items())
        job = RetrainJob(str(self.history_dir), str(self.store.directory), self.house.location.timezone,
                         self.step_minutes, str(now), self.settings, candidates)
        if self.worker.submit(job):
            self._last_submit = now
            log.info("retraining started in the background (%s)", ", ".join(k for k, _ in candidates))

    def _accept(self, outcomes: list[Any]) -> None:
        self.outcomes.extend(outcomes)
        for outcome in outcomes:
            log.info("%s", outcome.line())
            if outcome.replaced and self.wrapper is not None:
                _install(self.wrapper, outcome.kind, self.store.load_current(outcome.kind))
        self._arm_drift()

    def on_end(self, status: str) -> None:
        """Flush the history and stop the retraining process, however the run ended."""
        self.writer.on_end()
        self.worker.close()



def live_forecasting(config: Any, house: HouseConfig, controller_name: str,
                     alert: Callable[[str], None] | None = None) -> LiveForecasting | None:
    """The history keeper of a live run, from ``live.toml``'s ``[history]`` (None when no directory is set)."""
    history = config.history
    if not history.directory:
        if controller_name == "mpc-learned":
            raise LiveHistoryError("mpc-learned in pems live trains on the house's history: set [history] "
                                   "directory in live.toml (and import older data with pems history import)")
        return None
    directory = Path(history.directory)
    model_dir = Path(history.model_dir) if history.model_dir else directory.parent / "models"
    settings = RetrainSettings(every_days=history.retrain_every_days, window_days=history.window_days,
                               test_days=history.test_days, min_history_days=history.min_history_days,
                               drift_factor=history.drift_factor)
    return LiveForecasting(house, directory, model_dir, settings, history.step_minutes, alert)
