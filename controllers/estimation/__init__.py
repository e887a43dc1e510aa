"""Thermal identification and state estimation from measurements.

* :mod:`~controllers.estimation.identify` — fit the twin's RC network (air + mass per room, couplings, solar
  aperture) with SciPy least squares on multi-step simulation error; ``detect_phases`` of an experiment.
* :mod:`~controllers.estimation.kalman` — ``ThermalStateEstimator``: filterpy Kalman filter over every node
  (mass unmeasured); ``update(obs) -> node temperatures``.
* :mod:`~controllers.estimation.evaluate` — room-temperature error h hours ahead, open loop from the estimate.
* :mod:`~controllers.estimation.house_toml` — write a ``HouseConfig`` as TOML.
* :mod:`~controllers.estimation.cli` — ``pems identify``.
"""
