"""Gradient-boosted trees (XGBoost) for the forecasters: one mean model and one multi-quantile model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from controllers.forecasting.base import QUANTILES, ForecastError, sort_quantiles


@dataclass(frozen=True, slots=True)
class BoostingParams:
    """XGBoost settings shared by the mean and the quantile model."""

    rounds: int = 300
    max_depth: int = 5
    learning_rate: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.9
    min_child_weight: float = 5.0
    seed: int = 0
    # One thread by default: with busy cores, XGBoost's OpenMP threads spin against each other and a
    # 2-thread fit measured 17× slower than a 1-thread one on the shared 2-core machine. 0: all cores.
    threads: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.rounds <= 10_000:
            raise ForecastError(f"rounds = {self.rounds} is outside [1, 10000]")
        if not 1 <= self.max_depth <= 16:
            raise ForecastError(f"max_depth = {self.max_depth} is outside [1, 16]")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ForecastError(f"learning_rate = {self.learning_rate} is outside (0, 1]")

    def xgb(self) -> dict[str, Any]:
        params = {"tree_method": "hist", "max_depth": self.max_depth, "eta": self.learning_rate,
                  "subsample": self.subsample, "colsample_bytree": self.colsample_bytree,
                  "min_child_weight": self.min_child_weight, "seed": self.seed, "verbosity": 0}
        if self.threads:
            params["nthread"] = self.threads
        return params


class BoostedQuantiles:
    """A mean model (squared error) and a P10/P50/P90 model (pinball loss) on the same features."""

    def __init__(self, features: tuple[str, ...], params: BoostingParams | None = None) -> None:
        self.features = tuple(features)
        self.params = params or BoostingParams()
        self.mean: xgb.Booster | None = None
        self.quantile: xgb.Booster | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> BoostedQuantiles:
        """Train both models.

        ``weight`` (per row) weights the mean model's squared errors only, so that the
        quantiles stay quantiles of the rows' distribution.
        """
        ok = np.isfinite(y)
        if ok.sum() < 50:
            raise ForecastError(f"only {int(ok.sum())} training rows; need at least 50")
        names = list(self.features)
        base = self.params.xgb()
        weighted = xgb.DMatrix(x[ok], label=y[ok], weight=None if weight is None else weight[ok], feature_names=names)
        self.mean = xgb.train({**base, "objective": "reg:squarederror"}, weighted, self.params.rounds)
        plain = weighted if weight is None else xgb.DMatrix(x[ok], label=y[ok], feature_names=names)
        self.quantile = xgb.train({**base, "objective": "reg:quantileerror",
                                   "quantile_alpha": np.asarray(QUANTILES)}, plain, self.params.rounds)
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, quantiles)``: shapes (n,) and (n, len(QUANTILES)), quantiles sorted."""
        if self.mean is None or self.quantile is None:
            raise ForecastError("the model is not trained (call fit or load it)")
        data = xgb.DMatrix(x, feature_names=list(self.features))
        mean = self.mean.predict(data)
        q = self.quantile.predict(data).reshape(len(x), len(QUANTILES))
        return mean.astype(float), sort_quantiles(q.astype(float))

    def save(self, directory: Path, prefix: str) -> list[str]:
        if self.mean is None or self.quantile is None:
            raise ForecastError("cannot save an untrained model")
        names = [f"{prefix}_mean.json", f"{prefix}_quantiles.json"]
        self.mean.save_model(directory / names[0])
        self.quantile.save_model(directory / names[1])
        return names

    @classmethod
    def load(cls, directory: Path, prefix: str, features: tuple[str, ...], params: dict[str, Any]) -> BoostedQuantiles:
        model = cls(tuple(features), BoostingParams(**params))
        model.mean, model.quantile = xgb.Booster(), xgb.Booster()
        for booster, name in ((model.mean, f"{prefix}_mean.json"), (model.quantile, f"{prefix}_quantiles.json")):
            path = directory / name
            if not path.is_file():
                raise ForecastError(f"{directory}: model file {name} is missing")
            try:
                booster.load_model(path)
            except xgb.core.XGBoostError as exc:
                raise ForecastError(f"{path}: not a readable XGBoost model ({exc})") from None
        return model

    def describe(self) -> dict[str, Any]:
        return {"features": list(self.features), "params": asdict(self.params),
                "quantiles": list(QUANTILES)}


def dumps(data: dict[str, Any]) -> str:
    """``data`` as indented, key-sorted JSON text (for the saved models' metadata)."""
    return json.dumps(data, indent=2, sort_keys=True, default=str)
