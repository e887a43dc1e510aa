"""Forecasters learned from recorded history, usable by any controller.

* :mod:`~controllers.forecasting.pv` — ``PvForecaster``: pvlib physical model + XGBoost residual, P10/P50/P90,
  rolling 7-day bias correction.
* :mod:`~controllers.forecasting.load` — ``LoadForecaster``: XGBoost direct multi-horizon, calendar and
  holidays, lags 24 h / 168 h, temperature.
* :mod:`~controllers.forecasting.prices` — ``PriceForecaster``: published day-ahead prices, a learned forecast
  beyond them.
* :mod:`~controllers.forecasting.persistence` — trained models on disk with metadata; ``load_forecaster``.
* :mod:`~controllers.forecasting.evaluate`, :mod:`~controllers.forecasting.metrics` — backtests, metrics by
  lead time; ``pems forecast evaluate`` (:mod:`~controllers.forecasting.cli`).
* :mod:`~controllers.forecasting.wrapper` — ``LearnedForecasts``: wraps any controller so that it plans with
  these forecasts instead of the scenario's.
"""
