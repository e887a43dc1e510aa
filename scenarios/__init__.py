"""Scenarios for the twin: synthetic generator, real Czech prices, issued-forecast error model, catalog.

* :mod:`scenarios.prices` — ``read_ote_dayahead`` (OTE CSV → hourly EUR/kWh), ``Tariff``, ``apply_tariff``.
* :mod:`scenarios.synthetic_spec` — ``SyntheticSpec`` and its component parameters.
* :mod:`scenarios.synthetic` — ``generate`` (a seeded ``twin.scenario.Scenario`` from a ``SyntheticSpec``).
* :mod:`scenarios.calendar` — ``scenario_index`` and the vectorised calendar of an index (``calendar_of``).
* :mod:`scenarios.forecast_errors` — ``LeadTimeErrorForecasts`` (a ``ForecastModel``).
* :mod:`scenarios.catalog` — named, versioned specs in ``scenarios/specs`` (entry points
  ``pems.scenarios`` and ``pems.scenario_files``).
* :mod:`scenarios.historical` — recorded data (CSV/Parquet) through a TOML mapping; bundled historical
  scenarios (same entry points).
"""
