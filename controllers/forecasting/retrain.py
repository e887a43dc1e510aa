"""Forecasters that live with the house: retrained on a schedule, in a background process, kept only if better.

Every ``every_days`` (default weekly) a candidate is trained on the last ``window_days`` of the
house's history, excluding the most recent ``test_days``; the candidate and the current model are
both scored on those ``test_days`` (neither saw them: the seed's A/B test) and the candidate
replaces the current model only if its error is lower. Both scores are logged and kept in the
model's metadata. The work runs in a separate process (:class:`RetrainWorker`, one job at a time),
so a decision never waits for a fit; the caller polls for the outcome between decisions.

Models live in a :class:`ModelStore`: ``<dir>/<kind>/<version>/`` (``controllers.forecasting.persistence``
layout, metadata included) and ``<dir>/current.json`` naming the version in use per kind, so a restart
reuses the last accepted model instead of training again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from controllers.forecasting.base import ForecastError
from controllers.forecasting.evaluate import BacktestSettings, backtest
from controllers.forecasting.persistence import load_forecaster, read_metadata

log = logging.getLogger(__name__)
CURRENT_FILE = "current.json"


@dataclass(frozen=True, slots=True)
class RetrainSettings:
    """When and on what to retrain; ``drift_factor``: rolling error / training error that raises an alert."""

    every_days: float = 7.0
    window_days: float = 91.0
    test_days: float = 7.0
    min_history_days: float = 14.0
    issue_hour_local: float = 12.0
    horizon_hours: float = 24.0
    drift_factor: float = 1.5

    def __post_init__(self) -> None:
        for name, lo, hi in (("every_days", 1.0, 366.0), ("window_days", 7.0, 3660.0), ("test_days", 1.0, 60.0),
                             ("min_history_days", 3.0, 366.0), ("horizon_hours", 1.0, 168.0),
                             ("drift_factor", 1.0, 100.0)):
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ForecastError(f"retrain {name} = {value} is outside [{lo:g}, {hi:g}]")
        if self.min_history_days <= self.test_days:
            raise ForecastError(f"retrain min_history_days ({self.min_history_days:g}) must exceed test_days "
                                f"({self.test_days:g}): the A/B week is not trained on")


def score(forecaster: Any, history: pd.DataFrame, start: pd.Timestamp, timezone: str,
          settings: RetrainSettings, exogenous: pd.DataFrame | None = None) -> float:
    """Mean absolute error of ``forecaster`` (not refitted) on daily forecasts issued from ``start`` on."""
    backtest_settings = BacktestSettings(train_until=start, issue_hour_local=settings.issue_hour_local,
                                         horizon_hours=settings.horizon_hours)
    scored = backtest(forecaster, history, backtest_settings, timezone, exogenous=exogenous, fit=False)
    ok = np.isfinite(scored["actual"]) & np.isfinite(scored["point"])
    if not ok.any():
        raise ForecastError(f"no actual {forecaster.target} to score on after {start}")
    return float(np.mean(np.abs(scored["point"][ok] - scored["actual"][ok])))


@dataclass(frozen=True, slots=True)
class RetrainOutcome:
    """One retraining cycle of one forecaster kind: both scores on the same test days, and which model won."""

    kind: str
    test_start: str
    test_end: str
    trained_on: tuple[str, str]
    old_mae: float | None  # None: there was no current model
    new_mae: float
    replaced: bool
    version: str  # the version in use after the cycle

    def line(self) -> str:
        old = "none" if self.old_mae is None else f"{self.old_mae:.4f}"
        verdict = "new model kept" if self.replaced else "current model kept"
        return (f"retrain {self.kind}: MAE on {self.test_start[:10]}..{self.test_end[:10]}: current {old}, "
                f"candidate {self.new_mae:.4f} → {verdict} ({self.version})")


class ModelStore:
    """Versions of each forecaster kind on disk and the one in use (``current.json``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _current(self) -> dict[str, str]:
        path = self.directory / CURRENT_FILE
        if not path.is_file():
            return {}
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ForecastError(f"{path}: unreadable ({exc})") from None
        if not isinstance(value, dict):
            raise ForecastError(f"{path}: not a table of kind -> version")
        return value

    def current_dir(self, kind: str) -> Path | None:
        version = self._current().get(kind)
        return self.directory / kind / version if version else None

    def load_current(self, kind: str) -> Any | None:
        """The forecaster in use for ``kind`` (None if none was accepted yet)."""
        directory = self.current_dir(kind)
        return load_forecaster(directory) if directory is not None else None

    def save(self, forecaster: Any, kind: str, metrics: dict[str, Any]) -> str:
        """Write a new version (not yet in use); returns its name."""
        version = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        forecaster.save(self.directory / kind / version, metrics=metrics)
        return version

    def promote(self, kind: str, version: str) -> None:
        current = self._current()
        current[kind] = version
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{CURRENT_FILE}.tmp"
        tmp.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.directory / CURRENT_FILE)

    def metrics(self, kind: str) -> dict[str, Any]:
        directory = self.current_dir(kind)
        return dict(read_metadata(directory).get("metrics", {})) if directory is not None else {}


def retrain_once(store: ModelStore, kind: str, candidate: Any, history: pd.DataFrame, now: pd.Timestamp,
                 timezone: str, settings: RetrainSettings, exogenous: pd.DataFrame | None = None) -> RetrainOutcome:
    """One A/B cycle: fit a candidate, score it and the current model on the same days, keep the better.

    ``candidate`` (untrained) is fitted on the window before the test days; ``history`` must end at ``now``.
    """
    history = history[history.index < now]
    if history.empty:
        raise ForecastError(f"retrain {kind}: no history before {now}")
    days = (now - history.index[0]).total_seconds() / 86400.0
    if days < settings.min_history_days:
        raise ForecastError(f"retrain {kind}: {days:.1f} days of history, at least {settings.min_history_days:g} "
                            f"are needed")
    test_start = now - pd.Timedelta(days=settings.test_days)
    train = history[(history.index >= now - pd.Timedelta(days=settings.window_days)) & (history.index < test_start)]
    candidate.fit(train)
    new_mae = score(candidate, history, test_start, timezone, settings, exogenous)
    current = store.load_current(kind)
    old_mae = score(current, history, test_start, timezone, settings, exogenous) if current is not None else None
    replaced = old_mae is None or new_mae < old_mae
    ab = {"test_start": str(test_start), "test_end": str(now), "old_mae": old_mae, "new_mae": new_mae,
          "replaced": replaced}
    version = store.save(candidate, kind, {"training_mae": new_mae, "ab": ab})
    if replaced:
        store.promote(kind, version)
    else:
        version = store._current()[kind]
    outcome = RetrainOutcome(kind, str(test_start), str(now), (str(train.index[0]), str(train.index[-1])), old_mae,
                             new_mae, replaced, version)
    log.info(outcome.line())
    return outcome


# --- the background process ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RetrainJob:
    """Everything a retraining process needs, picklable: where the history and models are, and how."""

    history_dir: str
    model_dir: str
    timezone: str
    step_minutes: float
    now: str
    settings: RetrainSettings
    candidates: tuple[tuple[str, bytes], ...]  # (kind, pickled untrained forecaster)


def run_job(job: RetrainJob) -> list[RetrainOutcome]:
    """The body of the background process: read the history, run one cycle per kind."""
    import pickle

    from scenarios.history.store import read_history

    now = pd.Timestamp(job.now)
    start = now - pd.Timedelta(days=job.settings.window_days)
    history = read_history(Path(job.history_dir), job.timezone, start=start, end=now, step_minutes=job.step_minutes)
    store = ModelStore(Path(job.model_dir))
    outcomes = []
    for kind, blob in job.candidates:
        candidate = pickle.loads(blob)  # noqa: S301 - our own object, pickled by the parent process
        outcomes.append(retrain_once(store, kind, candidate, history, now, job.timezone, job.settings))
    return outcomes


class RetrainWorker:
    """Runs :func:`run_job` in one child process; ``poll()`` never blocks."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._future: Future[list[RetrainOutcome]] | None = None

    @property
    def busy(self) -> bool:
        return self._future is not None and not self._future.done()

    def submit(self, job: RetrainJob) -> bool:
        """Start ``job`` unless one is running (returns whether it started)."""
        if self.busy:
            return False
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self._future = self._pool.submit(run_job, job)
        return True

    def poll(self) -> list[RetrainOutcome] | None:
        """The finished job's outcomes (once), else None; a failed job is logged and yields []."""
        if self._future is None or not self._future.done():
            return None
        future, self._future = self._future, None
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - a failed retraining keeps the current model; the house goes on
            log.error("retraining failed, the current models stay: %s: %s", type(exc).__name__, exc)
            return []

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def settings_dict(settings: RetrainSettings) -> dict[str, float]:
    """The settings as plain JSON data (kept beside each stored model)."""
    return asdict(settings)
