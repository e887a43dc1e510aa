"""``pems forecast retrain``: one retraining cycle (candidate vs the model in use, on the most recent week).

What a live run does weekly in the background, run by hand: on recorded data read through a mapping
(or the house's history folder with the built-in ``pems_history.toml`` mapping), train a candidate on
the ``--window-days`` before the last ``--test-days`` before ``--at``, score it and the model in use in
``--models`` on those test days, and keep the better one. Both scores are printed and stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape

from controllers.forecasting.cli import Kind, _build, _fail, parse_when
from twin.errors import TwinError

console = Console()
BUILTIN_MAPPING = Path(__file__).resolve().parents[2] / "scenarios" / "historical" / "mappings" / "pems_history.toml"


def retrain(
    kind: Annotated[Kind, typer.Option(help="What to forecast")],
    data: Annotated[Path, typer.Option(help="History folder (date=…/part-*.parquet) or a file the mapping reads")],
    models: Annotated[Path, typer.Option(help="Model store (kind/version/ + current.json); created if missing")],
    at: Annotated[str, typer.Option(help="'Now': the cycle uses data before this date (local midnight) or time")],
    mapping: Annotated[Path | None, typer.Option(help="Mapping TOML (default: the history folder's)")] = None,
    window_days: Annotated[float, typer.Option(help="Train on this many days before the test days")] = 91.0,
    test_days: Annotated[float, typer.Option(help="A/B test on the last N days before --at")] = 7.0,
    rounds: Annotated[int, typer.Option(help="Boosting rounds of the candidate")] = 300,
) -> None:
    """Train a candidate, score it and the model in use on the most recent days, keep the better one."""
    from controllers.forecasting.boosting import BoostingParams
    from controllers.forecasting.evaluate import BacktestSettings
    from controllers.forecasting.retrain import ModelStore, RetrainSettings, retrain_once
    from scenarios.historical.mapping import load_mapping
    from scenarios.historical.reader import read_historical

    try:
        loaded = load_mapping(mapping or BUILTIN_MAPPING)
        history, _ = read_historical(loaded, data)
        now = parse_when(at, loaded.timezone, "--at")
        settings = RetrainSettings(window_days=window_days, test_days=test_days,
                                   min_history_days=max(14.0, test_days + 1.0), horizon_hours=24.0)
        train_until = now - pd.Timedelta(days=test_days)
        candidate, _, _, _, _ = _build(kind, loaded, history[history.index < now],
                                       BacktestSettings(train_until=train_until, horizon_hours=24.0),
                                       BoostingParams(rounds=rounds), False, False)
        outcome = retrain_once(ModelStore(models), kind.value, candidate, history, now, loaded.timezone, settings)
    except TwinError as exc:
        raise _fail(str(exc)) from None
    console.print(escape(outcome.line()), highlight=False, soft_wrap=True)
    console.print_json(json.dumps({"kind": outcome.kind, "test": [outcome.test_start, outcome.test_end],
                                   "trained_on": list(outcome.trained_on), "old_mae": outcome.old_mae,
                                   "new_mae": outcome.new_mae, "replaced": outcome.replaced,
                                   "version": outcome.version}))
