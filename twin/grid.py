"""Grid connection: import/export split and the inverter's export limitation. Pure functions."""

from __future__ import annotations

import numpy as np


def grid_flows(net_kw: float, pv_kw: float, export_limit_kw: float) -> tuple[float, float, float]:
    """``(import_kw, export_kw, curtailed_pv_kw)`` for a net demand ``net_kw`` (+ import).

    Export above ``export_limit_kw`` is avoided by curtailing PV (what a hybrid inverter's
    export limitation does); export the PV cannot explain (e.g. a battery discharging to the
    grid at night) is left as is and shows up as a limit violation.
    """
    if net_kw >= 0.0:
        return net_kw, 0.0, 0.0
    export = -net_kw
    excess = export - export_limit_kw
    if excess <= 0.0:
        return 0.0, export, 0.0
    curtailed = excess if excess < pv_kw else pv_kw
    return 0.0, export - curtailed, curtailed


def limit_violation_kw(import_kw: float, export_kw: float, import_limit_kw: float, export_limit_kw: float) -> float:
    """How far the connection is above its import or export limit [kW]."""
    return max(0.0, import_kw - import_limit_kw) + max(0.0, export_kw - export_limit_kw)


# --- vectorised siblings: the same rules over a leading axis of houses (numpy arrays) ---------------

def grid_flows_v(net_kw: np.ndarray, pv_kw: np.ndarray, export_limit_kw: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`grid_flows` element-wise: ``(import_kw, export_kw, curtailed_pv_kw)``."""
    export = -net_kw
    curtailed = _curtailed_v(export, pv_kw, export_limit_kw)
    if export_limit_kw < 0.0:  # (the configuration bounds the limit at 0: never taken there)
        importing = net_kw >= 0.0
        curtailed = np.where(importing, 0.0, curtailed)
        return np.where(importing, net_kw, 0.0), np.where(importing, 0.0, export - curtailed), curtailed
    # With a limit >= 0, curtailment needs export, so an importing house has none; its "export - 0" is
    # <= 0 and an exporting one's export - curtailed >= 0: both clamps at 0 are grid_flows' branches.
    return np.maximum(net_kw, 0.0), np.maximum(export - curtailed, 0.0), curtailed


def curtailed_pv_kw_v(net_kw: np.ndarray, pv_kw: np.ndarray, export_limit_kw: float) -> np.ndarray:
    """The ``curtailed_pv_kw`` of :func:`grid_flows_v` alone (fewer array operations)."""
    curtailed = _curtailed_v(-net_kw, pv_kw, export_limit_kw)
    if export_limit_kw < 0.0:
        curtailed = np.where(net_kw >= 0.0, 0.0, curtailed)
    return curtailed


def _curtailed_v(export_kw: np.ndarray, pv_kw: np.ndarray, export_limit_kw: float) -> np.ndarray:
    """PV curtailed to keep ``export_kw`` within the limit, for a house exporting (``export_kw > 0``)."""
    excess = export_kw - export_limit_kw
    curtailed: np.ndarray = np.where(excess <= 0.0, 0.0, np.minimum(excess, pv_kw))
    return curtailed


def limit_violation_kw_v(import_kw: np.ndarray, export_kw: np.ndarray, import_limit_kw: float,
                         export_limit_kw: float) -> np.ndarray:
    """:func:`limit_violation_kw` element-wise [kW]."""
    over: np.ndarray = np.maximum(0.0, import_kw - import_limit_kw) + np.maximum(0.0, export_kw - export_limit_kw)
    return over
