"""The meter of N twins: ``HouseDynamics._integrate``'s metering, booked per step rather than per sub-step.

Each sub-step of a step (a *piece*: its data step, heating, charger and battery powers, length)
is recorded; :meth:`MeterPieces.book` meters all of them at once over a ``(piece, house)`` axis.
Every piece adds ``rate · dt_h`` to each field, and the pieces are summed in the order they came,
so the totals are the single twin's.
"""

from __future__ import annotations

import numpy as np

from twin.grid import grid_flows_v, limit_violation_kw_v
from twin.house import SimHouse

#: Rows of :attr:`BatchedDynamics.meter`, as the fields of ``twin.house_state.Meter``.
METER_FIELDS = ("pv_kwh", "pv_curtailed_kwh", "base_load_kwh", "heating_kwh", "ev_kwh", "battery_charge_kwh",
                "battery_discharge_kwh", "import_kwh", "export_kwh", "cost", "grid_limit_violation_kwh",
                "ev_unmet_kwh")
(PV, CURTAILED, LOAD, HEATING, EV, CHARGE, DISCHARGE, IMPORT, EXPORT, COST, VIOLATION, UNMET) = range(
    len(METER_FIELDS))


class MeterPieces:
    """The pieces recorded since the last booking, for ``num_envs`` houses of ``twin``'s house and scenario."""

    #: At most this many pieces before booking: fewer than numpy's 8-way unrolled (pairwise) sums,
    #: so the reduction over pieces is sequential.
    MAX_PIECES = 7

    def __init__(self, twin: SimHouse, num_envs: int) -> None:
        n, pieces = num_envs, self.MAX_PIECES
        series = twin.exo.series
        self._pv_kw, self._load_kw = series["pv_power_kw"], series["base_load_kw"]
        self._import_price, self._export_price = series["import_price_per_kwh"], series["export_price_per_kwh"]
        self._grid = twin.house.grid
        self._battery = twin.house.battery is not None
        self._step = np.zeros((pieces, n), dtype=np.intp)
        self._h = np.zeros((pieces, n))
        self._battery_kw = np.zeros((pieces, n))
        self._count = 0
        self._rates = np.zeros((len(METER_FIELDS), pieces, n))  # each field's rate in each piece
        # The heating and charger powers are recorded straight into their rows of the rates.
        self._heat_kw, self._ev_kw = self._rates[HEATING], self._rates[EV]

    def record(self, i: np.ndarray, dt_h: np.ndarray, heat_kw: np.ndarray, ev_kw: np.ndarray,
               battery_kw: np.ndarray, meter: np.ndarray) -> None:
        """One piece of every house: data step ``i``, ``dt_h`` hours (0: none) at these powers [kW]."""
        k = self._count
        if k == self.MAX_PIECES:
            self.book(meter)
            k = 0
        self._step[k] = i
        self._h[k] = dt_h
        self._heat_kw[k] = heat_kw
        self._ev_kw[k] = ev_kw
        self._battery_kw[k] = battery_kw
        self._count = k + 1

    def open(self, i: np.ndarray, meter: np.ndarray) -> int:
        """A piece of length 0 for every house (data step ``i``), filled in house by house with :meth:`put`.

        Its slot. The other houses' powers in it are left as they were (finite: zero hours of them add 0).
        """
        k = self._count
        if k == self.MAX_PIECES:
            self.book(meter)
            k = 0
        self._step[k] = i
        self._h[k] = 0.0
        self._count = k + 1
        return k

    def put(self, k: int, house: int, dt_h: float, heat_kw: float, ev_kw: float, battery_kw: float) -> None:
        """House ``house``'s part of piece ``k`` (from :meth:`open`): ``dt_h`` hours at these powers [kW]."""
        self._h[k, house] = dt_h
        self._heat_kw[k, house] = heat_kw
        self._ev_kw[k, house] = ev_kw
        self._battery_kw[k, house] = battery_kw

    def book(self, meter: np.ndarray) -> None:
        """Book the recorded pieces on the meter: ``HouseDynamics._integrate``'s metering of each piece.

        Every piece adds ``rate · dt_h`` to each meter field, in the order the pieces came (the
        reduction over the piece axis is sequential), so the sums are the scalar loop's.
        """
        k = self._count
        if not k:
            return
        self._count = 0
        i, dt_h = self._step[:k], self._h[:k]
        heat_kw, ev_kw, batt_kw = self._heat_kw[:k], self._ev_kw[:k], self._battery_kw[:k]
        r = self._rates[:, :k]
        pv, load = self._pv_kw[i], np.take(self._load_kw, i, out=r[LOAD])
        imp, exp, curtailed = grid_flows_v(load + heat_kw + ev_kw + batt_kw - pv, pv, self._grid.export_limit_kw)
        np.subtract(pv, curtailed, out=r[PV])
        r[CURTAILED] = curtailed
        r[IMPORT] = imp
        r[EXPORT] = exp
        np.subtract(imp * self._import_price[i], exp * self._export_price[i], out=r[COST])
        grid = self._grid
        if imp.max() > grid.import_limit_kw or exp.max() > grid.export_limit_kw:
            r[VIOLATION] = limit_violation_kw_v(imp, exp, grid.import_limit_kw, grid.export_limit_kw)
        else:  # within both limits: max(0, ·) + max(0, ·) is 0 + 0
            r[VIOLATION] = 0.0
        if self._battery:
            np.maximum(batt_kw, 0.0, out=r[CHARGE])
            np.minimum(batt_kw, 0.0, out=r[DISCHARGE])
            np.negative(r[DISCHARGE], out=r[DISCHARGE])
        booked = r * dt_h
        booked[:, 0] += meter  # (meter + piece 1) + piece 2 …: the scalar loop's order
        np.add.reduce(booked, axis=1, out=meter)
