"""Retraining keeps the better model (A/B on the most recent week), in a background process; drift alerts."""

from __future__ import annotations

import json
import pickle
import time

import numpy as np
import pandas as pd
import pytest
from forecast_data import load_history

from controllers.forecasting.base import ForecastError
from controllers.forecasting.boosting import BoostingParams
from controllers.forecasting.drift import DriftMonitor
from controllers.forecasting.features import Calendar
from controllers.forecasting.load import LoadForecaster
from controllers.forecasting.retrain import ModelStore, RetrainJob, RetrainSettings, RetrainWorker, retrain_once
from scenarios.history.store import write_partitions

TZ = "Europe/Paris"
SETTINGS = RetrainSettings(every_days=7, window_days=91, test_days=7, min_history_days=14)


def _shifted_history() -> pd.DataFrame:
    """Seven weeks of load; from day 28 on the house uses twice as much (a heat pump arrived)."""
    history = load_history(days=49, step_min=60, seed=4)
    shift = history.index >= history.index[0] + pd.Timedelta(days=28)
    history.loc[shift, "base_load_kw"] = history.loc[shift, "base_load_kw"] * 2.0 + 0.5
    return history


def _candidate(rounds: int = 150) -> LoadForecaster:
    return LoadForecaster(Calendar(TZ, "FR"), params=BoostingParams(rounds=rounds))


def test_retraining_keeps_the_better_model_and_logs_both_scores(tmp_path):
    history = _shifted_history()
    store = ModelStore(tmp_path / "models")
    first = retrain_once(store, "load", _candidate(), history, history.index[0] + pd.Timedelta(days=28), TZ, SETTINGS)
    assert first.replaced and first.old_mae is None
    now = history.index[-1] + pd.Timedelta(hours=1)
    second = retrain_once(store, "load", _candidate(), history, now, TZ, SETTINGS)
    assert second.replaced and second.new_mae < second.old_mae  # the old model never saw the new regime
    assert store.current_dir("load").name == second.version
    worse = retrain_once(store, "load", _candidate(rounds=1), history, now, TZ, SETTINGS)  # barely trained
    assert not worse.replaced and worse.new_mae > worse.old_mae
    assert store.current_dir("load").name == second.version  # the better model stays in use
    assert len(list((tmp_path / "models" / "load").iterdir())) == 3  # every candidate kept, with its scores
    metrics = store.metrics("load")
    assert metrics["ab"]["old_mae"] == pytest.approx(second.old_mae)
    assert metrics["ab"]["new_mae"] == pytest.approx(second.new_mae)
    assert "current" in worse.line() and "candidate" in worse.line()
    reloaded = ModelStore(tmp_path / "models").load_current("load")  # after a restart: the accepted model
    assert reloaded.training and reloaded.training == store.load_current("load").training


def test_retraining_refuses_too_little_history(tmp_path):
    history = load_history(days=10, step_min=60)
    with pytest.raises(ForecastError, match="10.0 days of history, at least 14"):
        retrain_once(ModelStore(tmp_path), "load", _candidate(), history, history.index[-1], TZ, SETTINGS)


def test_background_worker_runs_the_cycle_in_another_process(tmp_path):
    history = _shifted_history()
    write_partitions(tmp_path / "history", history, TZ)
    store = ModelStore(tmp_path / "models")
    retrain_once(store, "load", _candidate(), history, history.index[0] + pd.Timedelta(days=28), TZ, SETTINGS)
    job = RetrainJob(str(tmp_path / "history"), str(tmp_path / "models"), TZ, 60.0,
                     str(history.index[-1] + pd.Timedelta(hours=1)), SETTINGS, (("load", pickle.dumps(_candidate())),))
    worker = RetrainWorker()
    try:
        assert worker.submit(job)
        assert not worker.submit(job)  # one job at a time
        outcomes = None
        for _ in range(1200):  # waiting for the child process, not timing it
            outcomes = worker.poll()
            if outcomes is not None:
                break
            time.sleep(0.1)
    finally:
        worker.close()
    assert outcomes is not None and len(outcomes) == 1 and outcomes[0].replaced
    assert json.loads((tmp_path / "models" / "current.json").read_text())["load"] == outcomes[0].version


def test_drift_alerts_once_per_crossing():
    monitor = DriftMonitor("load", training_mae=0.2, factor=1.5, window=10)
    assert all(monitor.update(1.0, 1.2) is None for _ in range(20))  # at the training error
    alerts = [monitor.update(1.0, 1.5) for _ in range(20)]  # 2.5× the training error
    fired = [a for a in alerts if a is not None]
    assert len(fired) == 1 and fired[0].rolling_mae > 0.3 and "1.5×" in fired[0].message()
    assert all(monitor.update(1.0, 1.1) is None for _ in range(20))  # back under: re-armed
    assert any(monitor.update(1.0, 2.0) is not None for _ in range(20))
    assert monitor.update(np.nan, 1.0) is None
