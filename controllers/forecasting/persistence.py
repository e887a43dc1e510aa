"""Trained forecasters on disk: one directory with the XGBoost models and ``metadata.json``.

``metadata.json`` holds the format version, the forecaster's kind and class, the project
version, when and on what window it was trained, its features and parameters, the
libraries it was trained with, its configuration and any metrics it was evaluated with.
The directory is written atomically (it appears complete or not at all).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from controllers.forecasting.base import Forecaster, ForecastError
from controllers.forecasting.boosting import BoostedQuantiles
from twin.output import atomic_directory, json_ready

FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def write_model_dir(directory: Path, forecaster: Any, models: dict[str, BoostedQuantiles],
                    metrics: dict[str, Any] | None = None) -> Path:
    """Write ``forecaster`` (its ``kind``, ``target``, ``config()``, ``training``) and its models."""
    if not forecaster.training:
        raise ForecastError("cannot save a forecaster that was not trained")
    directory = Path(directory)
    with atomic_directory(directory, marker=METADATA_FILE) as tmp:
        files = {name: model.save(tmp, name) for name, model in models.items()}
        metadata = {
            "format_version": FORMAT_VERSION,
            "kind": forecaster.kind,
            "class": f"{type(forecaster).__module__}.{type(forecaster).__qualname__}",
            "target": forecaster.target,
            "project_version": _version("pems-twin"),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "training_window": forecaster.training,
            "models": {name: dict(model.describe(), files=files[name]) for name, model in models.items()},
            "libraries": {p: _version(p) for p in ("xgboost", "pvlib", "pandas", "numpy", "holidays")},
            "config": forecaster.config(),
            "metrics": metrics or {},
        }
        (tmp / METADATA_FILE).write_text(json.dumps(json_ready(metadata), indent=2) + "\n", encoding="utf-8")
    return directory


def read_metadata(directory: Path) -> dict[str, Any]:
    """The metadata of a saved forecaster; ForecastError when missing, unreadable or another format."""
    path = Path(directory) / METADATA_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ForecastError(f"{directory}: not a saved forecaster (no {METADATA_FILE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ForecastError(f"{path}: unreadable metadata ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ForecastError(f"{path}: format_version {meta.get('format_version')!r} is not {FORMAT_VERSION}")
    if not isinstance(meta, dict):
        raise ForecastError(f"{path}: metadata is not a JSON object")
    return meta


def read_model_dir(directory: Path, kind: str) -> tuple[dict[str, Any], dict[str, BoostedQuantiles]]:
    """The metadata and models of a saved forecaster of ``kind``."""
    directory = Path(directory)
    meta = read_metadata(directory)
    if meta.get("kind") != kind:
        raise ForecastError(f"{directory}: holds a {meta.get('kind')!r} forecaster, not {kind!r}")
    models = {}
    for name, desc in meta["models"].items():
        models[name] = BoostedQuantiles.load(directory, name, tuple(desc["features"]), desc["params"])
    return meta, models


def load_forecaster(directory: Path) -> Forecaster:
    """Load any saved forecaster, dispatching on its kind."""
    from controllers.forecasting.load import LoadForecaster
    from controllers.forecasting.prices import PriceForecaster
    from controllers.forecasting.pv import PvForecaster

    loaders: dict[str, Callable[[Path], Forecaster]] = {
        "pv": PvForecaster.load, "load": LoadForecaster.load, "price": PriceForecaster.load}
    meta = read_metadata(directory)
    loader = loaders.get(str(meta.get("kind")))
    if loader is None:
        raise ForecastError(f"{directory}: unknown forecaster kind {meta.get('kind')!r}")
    return loader(Path(directory))
