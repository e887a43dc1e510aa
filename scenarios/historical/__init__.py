"""Historical scenarios: recorded data (CSV/Parquet) read through a small TOML mapping.

* :mod:`~scenarios.historical.mapping` — parsing the mapping file (``[historical]``) into a
  :mod:`~scenarios.historical.mapping_spec` ``HistoricalMapping``: sources, columns, units, time zones
  and DST, gap policy.
* :mod:`~scenarios.historical.sources` — one source file on its own grid, in canonical units.
* :mod:`~scenarios.historical.reader` — ``read_historical(mapping) -> (frame, DataQuality)``.
* :mod:`~scenarios.historical.scenario` — ``build_scenario``; the ``pems.scenario_files`` loader.
* :mod:`~scenarios.historical.catalog` — bundled named scenarios (``specs/``), entry point ``pems.scenarios``.
"""
