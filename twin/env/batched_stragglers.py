"""The last few houses of a sub-step loop, moved in plain Python with the scalar physics functions.

After the first sub-step of a step (every house at once, as arrays) usually only a few houses are
still short of their target: a car arrived, left or became full inside the step. A lockstep
sub-step costs ≈ 90 numpy calls however few houses it moves; for one or a few houses the scalar
functions the single twin uses (``twin.ev.charger_power_kw``, ``twin.battery.inverter_power``,
``time_to_soc_s``, ``time_to_full_s``, ``soc_rate_per_s``) cost several times less.
:func:`advance_stragglers` does for each such house what a sub-step of
:meth:`~twin.env.batched_dynamics.BatchedDynamics.advance_to` does for it: the same operations on the
same numbers in the same order (the vectorised siblings equal the scalar functions bit for bit), so
the houses end where the array sub-step would have taken them. What it does not cover — the
occupants looking around at a new data step, a backup-reserve command, a relay lease or thermostat
tick falling due — goes back to the arrays (the whole sub-step, or that house's events).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from twin.battery import MODE_CODES, inverter_power, soc_rate_per_s, time_to_soc_s
from twin.contracts import BatteryCommand, BatteryMode
from twin.env.batched_meter import UNMET
from twin.ev import charger_power_kw, time_to_full_s
from twin.grid import grid_flows
from twin.house_state import EVENT_EPS_S, NO_LEASE

if TYPE_CHECKING:
    from twin.env.batched_dynamics import BatchedDynamics

#: Rows of ``BatchedDynamics.events_s``: the relays' lease end (or, without a lease, the thermostat's next
#: tick), the battery's and the charger's lease ends, the car's next arrival or departure.
RELAY_EVENT, BATTERY_EVENT, EV_EVENT, SESSION_EVENT = range(4)
#: At most this many houses are moved in Python; more take the array sub-step (≈ 90 calls, any number of houses).
MAX_STRAGGLERS = 10
_SC = MODE_CODES.index(BatteryMode.SELF_CONSUMPTION)
_BACKUP = MODE_CODES.index(BatteryMode.BACKUP_RESERVE)
_DISCHARGE = MODE_CODES.index(BatteryMode.DISCHARGE_TO_GRID)


def advance_stragglers(dyn: BatchedDynamics, rows: list[int], i: np.ndarray, t_end_s: np.ndarray) -> bool:
    """One sub-step of houses ``rows`` (every house still short of its ``t_end_s``), in Python.

    ``i`` is every house's data step now. Returns False, having changed nothing, when one of them
    needs what only the array sub-step does (its occupants look around first, or a backup reserve).
    """
    thermal = dyn.thermal if dyn.n_rooms else None
    for h in rows:
        if thermal is not None and thermal.occupant_step[h] != i[h]:
            return False
        if dyn.battery is not None and dyn.may_backup and dyn.battery_mode[h] == _BACKUP:
            return False
    pieces, meter = dyn._pieces, dyn.meter
    slot = pieces.open(i, meter)
    rests: list[tuple[int, float, float, float, float]] = []  # (house, t_a, t_next, ev_kw, heat_kw)
    t_s = dyn.t_s = dyn.t_s.copy()  # moved in place below: the caller's reference to the clocks stays as it was
    ends: list[tuple[int, float]] = []
    for h in rows:
        t, ih, heat_kw = float(t_s[h]), int(i[h]), float(dyn.heat_kw[h])
        t_next, t_a, ev_kw, batt_kw, rate, limit_soc = _piece(dyn, h, t, ih, float(t_end_s[h]), heat_kw)
        _integrate(dyn, h, t_a - t, ev_kw)
        pieces.put(slot, h, (t_a - t) / 3600.0, heat_kw, ev_kw, batt_kw)
        if rate is not None:
            soc = float(dyn.soc[h]) + rate * (t_a - t)
            if abs(soc - limit_soc) < 1e-7:  # the limit event itself: land exactly on it (NaN: never)
                soc = limit_soc
            dyn.soc[h] = soc
        if t_a != t_next:
            rests.append((h, t_a, t_next, ev_kw, heat_kw))
        ends.append((h, t_next))
    if rests:  # the batteries that reached their limit: idle for the rest of the sub-step (BatchedDynamics._idle_rest)
        slot = pieces.open(i, meter)
        for h, t_a, t_next, ev_kw, heat_kw in rests:
            _integrate(dyn, h, t_next - t_a, ev_kw)
            pieces.put(slot, h, (t_next - t_a) / 3600.0, heat_kw, ev_kw, 0.0)
    relay_due: list[int] = []
    for h, t_next in ends:
        t_s[h] = t_next
        if dyn.events_s[RELAY_EVENT, h] <= t_next + EVENT_EPS_S:
            relay_due.append(h)  # the thermostat reads the rooms: that house's events as arrays
        else:
            _process_events(dyn, h, t_next)
    dyn._step_at = None
    dyn._now = None
    if relay_due:
        due = np.zeros(dyn.n, dtype=bool)
        due[relay_due] = True
        dyn._process_events(due)
    return True


def idle_rest(dyn: BatchedDynamics, rows: list[int], i: np.ndarray, dt: np.ndarray, ev_kw: np.ndarray) -> None:
    """``BatchedDynamics._idle_rest`` for houses ``rows`` (the others' ``dt`` is 0): their cars and rooms move on."""
    pieces = dyn._pieces
    slot = pieces.open(i, dyn.meter)
    for h in rows:
        dt_s, h_ev_kw = float(dt[h]), float(ev_kw[h])
        _integrate(dyn, h, dt_s, h_ev_kw)
        pieces.put(slot, h, dt_s / 3600.0, float(dyn.heat_kw[h]), h_ev_kw, 0.0)


def _piece(dyn: BatchedDynamics, h: int, t: float, i: int, t_end: float, heat_kw: float
           ) -> tuple[float, float, float, float, float | None, float]:
    """House ``h``'s next piece: ``(t_next, t_a, ev_kw, battery_kw, soc rate, limit soc)`` as ``advance_to`` has them.

    ``t_a`` is the battery reaching its SOC limit when that comes first (else ``t_next``). The SOC
    rate is None without a battery; the limit is NaN when the battery is idle.
    """
    ev_kw, batt_kw, limit_soc = _powers(dyn, h, i, heat_kw)
    t_next = (i + 1) * dyn.step_s
    t_next = min(t_next, t_end, *dyn.events_s[:, h].tolist())
    c, b = dyn.charger, dyn.battery
    if ev_kw > 0.0 and c is not None:
        t_next = min(t_next, time_to_full_s(float(dyn.ev_energy_kwh[h]), float(dyn._ev_limit_kwh[h]), ev_kw, c) + t)
    if b is None:
        return t_next, t_next, ev_kw, 0.0, None, math.nan
    t_limit = time_to_soc_s(float(dyn.soc[h]), limit_soc, batt_kw, b) + t
    rate = soc_rate_per_s(batt_kw, b)
    if dyn.may_backup:  # a reserve may move the limits once there: the limit ends the sub-step
        t_next = min(t_next, t_limit)
    return t_next, min(t_limit, t_next), ev_kw, batt_kw, rate, limit_soc


def _powers(dyn: BatchedDynamics, h: int, i: int, heat_kw: float) -> tuple[float, float, float]:
    """``BatchedDynamics.powers`` of house ``h`` in data step ``i``: ``(ev_kw, battery_kw, battery_limit_soc)``."""
    c, b = dyn.charger, dyn.battery
    ev_kw = 0.0
    if c is not None and dyn.ev_connected[h]:
        request = float(dyn.ev_request_kw[h])
        ev_kw = charger_power_kw(None if math.isnan(request) else request, float(dyn.ev_energy_kwh[h]),
                                 float(dyn._ev_limit_kwh[h]), c)
    if b is None:
        return ev_kw, 0.0, math.nan
    net = float(dyn.load_kw[i]) + heat_kw + ev_kw - float(dyn.pv_kw[i])
    mode, commanded_kw = int(dyn.battery_mode[h]), float(dyn.battery_kw[h])
    # The command back from (mode, signed power): a discharge's magnitude is the negated power (exact).
    command = BatteryCommand(MODE_CODES[mode], -commanded_kw if mode == _DISCHARGE else commanded_kw)
    return (ev_kw, *inverter_power(command, float(dyn.soc[h]), net, b))


def pv_kw_after_curtailment(dyn: BatchedDynamics, h: int, i: int) -> float:
    """House ``h``'s PV power now after the export limit's curtailment (the observation's), in data step ``i``.

    As ``FastBatch._observe`` computes it over the arrays; not with a backup reserve (``dyn.may_backup``).
    """
    heat_kw = float(dyn.heat_kw[h])
    ev_kw, batt_kw, _ = _powers(dyn, h, i, heat_kw)
    pv_kw = float(dyn.pv_kw[i])
    net_kw = float(dyn.load_kw[i]) + heat_kw + ev_kw + batt_kw - pv_kw
    return pv_kw - grid_flows(net_kw, pv_kw, dyn.grid.export_limit_kw)[2]


def _integrate(dyn: BatchedDynamics, h: int, dt: float, ev_kw: float) -> None:
    """House ``h``'s car and rooms over ``dt`` seconds (``BatchedDynamics._integrate`` without the battery)."""
    if ev_kw > 0.0 and dyn.charger is not None:
        limit = float(dyn._ev_limit_kwh[h])
        charged = min(limit, float(dyn.ev_energy_kwh[h]) + ev_kw * dyn.charger.efficiency * (dt / 3600.0))
        dyn.ev_energy_kwh[h] = charged
        if charged >= limit - 1e-9:
            dyn._ev_kw = None  # a car became full: its charger stops
    if dyn.n_rooms:
        dyn.thermal.pending_s[h] += dt  # the occupants looked around in this data step already
        dyn.thermal._pending = True


def _process_events(dyn: BatchedDynamics, h: int, t: float) -> None:
    """``BatchedDynamics._process_events`` for house ``h`` at ``t`` (no relay event due)."""
    events = dyn.events_s
    due_s = t + EVENT_EPS_S
    if events[BATTERY_EVENT, h] <= due_s:
        dyn.battery_lease_s[h] = NO_LEASE
        dyn.battery_mode[h] = _SC
        dyn.battery_kw[h] = 0.0
        dyn.battery_reserve_soc[h] = np.nan
        events[BATTERY_EVENT, h] = np.inf
    if events[EV_EVENT, h] <= due_s:
        dyn.ev_lease_s[h] = NO_LEASE
        dyn.ev_request_kw[h] = np.nan
        dyn._ev_kw = None
        events[EV_EVENT, h] = np.inf
    if events[SESSION_EVENT, h] <= due_s:
        sessions = dyn.sessions
        k, connected = int(dyn.ev_session[h]), bool(dyn.ev_connected[h])
        if connected:  # due while connected: the departure
            dyn.meter[UNMET, h] += max(0.0, float(sessions.target_kwh[k]) - float(dyn.ev_energy_kwh[h]))
            connected = False
            k += 1
        if sessions.arrival_s[k] <= due_s:
            connected = True
            dyn.ev_energy_kwh[h] = sessions.arrival_kwh[k]
        dyn.ev_connected[h], dyn.ev_session[h] = connected, k
        events[SESSION_EVENT, h] = sessions.departure_s[k] if connected else sessions.arrival_s[k]
        dyn._ev_limit_kwh[h] = sessions.charge_limit_kwh[k]
        dyn._ev_kw = None
