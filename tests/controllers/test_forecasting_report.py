"""forecast evaluate: a test file separate from the training file, MAPE with a stated floor, baselines on the
model's rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from forecast_data import load_history
from typer.testing import CliRunner

from controllers.forecasting.cli import register
from controllers.forecasting.evaluate import report

MAPPING = """
[historical]
timezone = "Europe/Paris"
country = "FR"
step_minutes = 60
[[historical.sources]]
file = "@data"
time_column = "time"
[historical.sources.columns]
base_load_kw = { column = "load", unit = "kW" }
"""


def _scored(n: int = 48) -> pd.DataFrame:
    issued = pd.Timestamp("2024-05-01 12:00", tz="Europe/Paris")
    target = pd.date_range(issued, periods=n, freq="h")
    actual = np.where(np.arange(n) % 24 < 6, 0.001, 1.0)  # idle nights
    return pd.DataFrame({"issued": issued, "target": target, "lead_h": np.arange(n, dtype=float),
                         "actual": actual, "point": actual + 0.1, "persistence": actual + 0.3,
                         "day_ahead": np.arange(n) >= 12, "target_day": target.tz_localize(None).normalize()})


def test_mape_ignores_near_zero_actuals_and_says_so():
    rep = report(_scored(), "load")
    assert rep.tables["model"].loc["all", "mape_pct"] == pytest.approx(10.0)  # not 10,000 % from the idle hours
    assert any("MAPE counts only actuals above" in n and "10 % of the mean actual" in n for n in rep.notes)


def test_persistence_is_scored_on_exactly_the_models_rows():
    scored = _scored()
    scored.loc[:9, "point"] = np.nan  # the model has no forecast for the first 10 steps
    rep = report(scored, "load")
    assert rep.tables["model"].loc["all", "n"] == rep.tables["persistence"].loc["all", "n"] == 38
    assert any("same 38 of 48" in n for n in rep.notes)


def _write(path, frame):  # noqa: ANN001
    pd.DataFrame({"time": frame.index.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "load": frame["base_load_kw"].to_numpy()}).to_csv(path, index=False)


def test_evaluate_with_a_separate_test_file(tmp_path):
    history = load_history(days=42, step_min=60, seed=2)
    cut = history.index[0] + pd.Timedelta(days=35)
    _write(tmp_path / "train.csv", history[history.index < cut])
    _write(tmp_path / "test.csv", history[history.index >= cut])
    (tmp_path / "m.toml").write_text(MAPPING, encoding="utf-8")
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    answer = runner.invoke(app, ["forecast", "evaluate", "--kind", "load", "--data", str(tmp_path / "train.csv"),
                                 "--mapping", str(tmp_path / "m.toml"), "--test-data", str(tmp_path / "test.csv"),
                                 "--rounds", "30", "--out", str(tmp_path / "out")])
    assert answer.exit_code == 0, answer.output
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert pd.Timestamp(summary["test"][0]) >= cut  # every forecast issued in the test file
    assert pd.Timestamp(summary["train_until"]) == cut
    overlap = runner.invoke(app, ["forecast", "evaluate", "--kind", "load", "--data", str(tmp_path / "train.csv"),
                                  "--mapping", str(tmp_path / "m.toml"), "--test-data", str(tmp_path / "train.csv")])
    assert overlap.exit_code == 2 and "not after the training data" in overlap.output
