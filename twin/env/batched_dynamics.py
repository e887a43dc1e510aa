"""N twins of one house stepped in lockstep: ``HouseDynamics``' event loop over a leading array axis.

Every house keeps its own clock. One *sub-step* advances every house still short of its target
time to its own next event — the earliest of the data step's end, the target, a lease ending,
a thermostat tick (only while no lease holds the relays), an EV arrival or departure, the battery
reaching a SOC limit or the car becoming full — by its own ``dt`` (0 for a house already there),
then handles each house's due events under boolean masks (a battery reaching its limit is
handled within the sub-step: :meth:`BatchedDynamics._idle_rest`). Sub-steps repeat until every
house has arrived; a house whose events are few stands still (``dt = 0``: ``e^{-λ·0} = 1``). When
only a few houses are left (a car arrived, left or became full within the step), their sub-step
runs in Python with the scalar physics functions (``twin.env.batched_stragglers``).

The physics is the twin's own: :class:`~twin.house_dynamics.HouseDynamics` builds the model (RC
network in modal form, exogenous arrays, EV sessions) and this class reads it; the rules are the
vectorised siblings in ``twin.battery``, ``twin.ev``, ``twin.grid``, ``twin.thermal`` and
``twin.occupants``. The operations are those of the scalar loop, in the same order, so the
result equals the single twin's to rounding (``tests/twin/test_env_batched.py``).

Not kept (the environments do not read them): each room's heating energy and the relays'
``relay_since_s``; relay switches are counted per house, not per room.
"""

from __future__ import annotations

import numpy as np

from twin.battery import MODE_CODE, inverter_power_v, soc_rate_per_s_v, time_to_soc_s_v
from twin.contracts import BatteryMode
from twin.env.batched_meter import METER_FIELDS, UNMET, MeterPieces
from twin.env.batched_sessions import EvSessions
from twin.env.batched_stragglers import (
    BATTERY_EVENT,
    EV_EVENT,
    MAX_STRAGGLERS,
    RELAY_EVENT,
    SESSION_EVENT,
    advance_stragglers,
    idle_rest,
)
from twin.env.batched_thermal import BatchedThermal
from twin.ev import charger_power_kw_v, time_to_full_s_v
from twin.house import SimHouse
from twin.house_state import EVENT_EPS_S, NO_LEASE
from twin.occupants import thermostat_relays

SC = MODE_CODE[BatteryMode.SELF_CONSUMPTION]
#: ``commanded_power_kw``'s sign per mode code (0: the power follows the house).
_SIGN = np.array([{BatteryMode.CHARGE_FROM_GRID: 1.0, BatteryMode.POWER_SETPOINT: 1.0,
                   BatteryMode.DISCHARGE_TO_GRID: -1.0}.get(mode, 0.0) for mode in BatteryMode])


class BatchedDynamics:
    """The state of ``num_envs`` twins of ``twin``'s house and scenario, advanced together.

    Parameters
    ----------
    twin
        A built :class:`~twin.house.SimHouse`: its model and exogenous arrays are shared, never changed.
    num_envs
        Number of houses.
    may_backup
        False when no battery command will be ``BACKUP_RESERVE`` (skips that branch).
    """

    def __init__(self, twin: SimHouse, num_envs: int, may_backup: bool = True) -> None:
        self.twin = twin
        house = twin.house
        self.n = n = num_envs
        self.step_s = twin.step_s
        self.battery = house.battery
        self.charger = house.ev_charger
        self.grid = house.grid
        self.may_backup = may_backup
        self.n_rooms = rooms = twin._n_rooms
        self.thermal = BatchedThermal(twin, n)
        exo = twin.exo
        series = exo.series
        self.pv_kw, self.load_kw = series["pv_power_kw"], series["base_load_kw"]
        self.import_price, self.export_price = series["import_price_per_kwh"], series["export_price_per_kwh"]
        self.outdoor_c = series["outdoor_temp_c"]
        self.lower_c, self.upper_c = exo.comfort_lower_c, exo.comfort_upper_c
        self._heater_kw = twin._heater_kw
        self._on_below_c, self._off_above_c = twin._thermostat_on_below, twin._thermostat_off_above
        self._thermostat_period_s = twin._thermostat_period_s
        self.sessions = EvSessions.of(twin)
        # The state, one row (column of events_s, meter) per house.
        self.t_s = np.zeros(n)
        self.relay_on = np.zeros((n, rooms), dtype=bool)
        self.relay_lease_s = np.full(n, NO_LEASE)
        self.thermostat_next_s = np.zeros(n)
        self.soc = np.full(n, np.nan)
        self.battery_mode = np.full(n, SC, dtype=np.intp)
        self.battery_kw = np.zeros(n)  # signed commanded power (``commanded_power_kw``)
        self.battery_reserve_soc = np.full(n, np.nan)
        self.battery_lease_s = np.full(n, NO_LEASE)
        self.ev_request_kw = np.full(n, np.nan)  # NaN: no request (the charger's own behaviour)
        self.ev_lease_s = np.full(n, NO_LEASE)
        self.ev_session = np.zeros(n, dtype=np.intp)
        self.ev_connected = np.zeros(n, dtype=bool)
        self.ev_energy_kwh = np.zeros(n)
        self.events_s = np.full((4, n), np.inf)  # what is scheduled, by kind (RELAY_EVENT, ...); inf: nothing
        self.meter = np.zeros((len(METER_FIELDS), n))
        self._pieces = MeterPieces(twin, n)
        self.relay_switches = np.zeros(n, dtype=np.int64)
        self.interval_start_s = np.zeros(n)
        # Caches derived from the state.
        self.heat_kw = np.zeros(n)
        self._relay_f = np.zeros((n, rooms))
        self._ev_limit_kwh = np.full(n, np.inf)  # charge limit of each house's present session
        # The charger's power until the next change of request, car or session, or the car becoming full.
        self._ev_kw: np.ndarray | None = None
        self._zeros = np.zeros(n)
        self._nans = np.full(n, np.nan)
        self._now: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._step_at: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # see data_step_now

    @property
    def air_c(self) -> np.ndarray:
        """Air temperature of every room [°C], ``(houses, rooms)``."""
        return self.thermal.air_c

    # --- starting -------------------------------------------------------------------------------------

    def reset(self, which: np.ndarray, start_s: np.ndarray) -> None:
        """Start the houses where ``which`` is True afresh at ``start_s`` (as ``SimHouse.reset_to``)."""
        start = start_s[which]
        rows = np.nonzero(which)[0]
        twin = self.twin
        self.thermal.reset(rows, self.lower_c[self._index(start)])
        self.t_s[rows] = start
        self._step_at = None  # the clocks moved in place
        self.relay_on[rows] = False
        self.relay_lease_s[rows] = NO_LEASE
        self.thermostat_next_s[rows] = start
        if self.battery is not None:
            b = self.battery
            initial = twin.scenario.initial_battery_soc
            soc = b.initial_soc if initial is None else initial
            self.soc[rows] = b.soc_min if soc < b.soc_min else b.soc_max if soc > b.soc_max else soc
        self.battery_mode[rows] = SC
        self.battery_kw[rows] = 0.0
        self.battery_reserve_soc[rows] = np.nan
        self.battery_lease_s[rows] = NO_LEASE
        self.ev_request_kw[rows] = np.nan
        self.ev_lease_s[rows] = NO_LEASE
        self._ev_kw = None
        # The first session that has not departed by the start (one already home connects at once).
        self.ev_session[rows] = np.searchsorted(self.sessions.departure_s[:-1], start + EVENT_EPS_S, side="right")
        self.ev_connected[rows] = False
        self.ev_energy_kwh[rows] = 0.0
        self.events_s[:, rows] = np.inf
        self.events_s[RELAY_EVENT, rows] = start if self.n_rooms else np.inf
        self.events_s[SESSION_EVENT, rows] = self.sessions.arrival_s[self.ev_session[rows]]
        self._ev_limit_kwh[rows] = self.sessions.charge_limit_kwh[self.ev_session[rows]]
        self.meter[:, rows] = 0.0
        self.relay_switches[rows] = 0
        self.interval_start_s[rows] = start
        self._on_relays_changed()
        self._process_events(which)

    # --- commands ----------------------------------------------------------------------------------------

    def apply_relays(self, relays: np.ndarray, given: np.ndarray, until_s: np.ndarray, all_given: bool = False) -> None:
        """``SimHouse.apply``'s relay part: the new states and their lease where ``given`` (``all_given``: all)."""
        self._set_relays(relays if all_given else np.where(given[:, None], relays, self.relay_on))
        np.copyto(self.relay_lease_s, until_s, where=given)
        np.copyto(self.events_s[RELAY_EVENT], until_s, where=given)
        self._now = None

    def apply_battery(self, mode: np.ndarray, power_kw: np.ndarray, reserve_soc: np.ndarray, given: np.ndarray,
                      until_s: np.ndarray) -> None:
        """``SimHouse.apply``'s battery part (``power_kw`` as in ``BatteryCommand``)."""
        np.copyto(self.battery_mode, mode, where=given)
        np.copyto(self.battery_kw, power_kw * _SIGN[mode], where=given)  # commanded_power_kw()
        np.copyto(self.battery_reserve_soc, reserve_soc, where=given)
        np.copyto(self.battery_lease_s, until_s, where=given)
        np.copyto(self.events_s[BATTERY_EVENT], until_s, where=given)
        self._now = None

    def apply_ev(self, power_kw: np.ndarray, given: np.ndarray, until_s: np.ndarray) -> None:
        """``SimHouse.apply``'s charger part."""
        np.copyto(self.ev_request_kw, np.maximum(0.0, power_kw), where=given)
        self._ev_kw = None
        np.copyto(self.ev_lease_s, until_s, where=given)
        np.copyto(self.events_s[EV_EVENT], until_s, where=given)
        self._now = None

    # --- the event loop ------------------------------------------------------------------------------------

    def _index(self, t_s: np.ndarray) -> np.ndarray:
        index: np.ndarray = ((t_s + EVENT_EPS_S) // self.step_s).astype(np.intp)
        return index

    def powers(self, i: np.ndarray, pv_kw: np.ndarray, load_kw: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ev_kw, battery_kw, battery_limit_soc)`` of every house at data step ``i``, held until its next event."""
        if self.charger is not None:
            ev_kw = self._ev_kw
            if ev_kw is None:  # the charger's power changes only at events (see _ev_kw)
                ev_kw = charger_power_kw_v(self.ev_request_kw, self.ev_energy_kwh, self._ev_limit_kwh, self.charger)
                ev_kw *= self.ev_connected
                self._ev_kw = ev_kw
        else:
            ev_kw = self._zeros
        if self.battery is None:
            return ev_kw, self._zeros, self._nans
        net = load_kw + self.heat_kw
        net += ev_kw
        net -= pv_kw
        batt_kw, limit_soc = inverter_power_v(self.battery_mode, self.battery_kw, self.battery_reserve_soc,
                                              self.soc, net, self.battery, may_backup=self.may_backup)
        return ev_kw, batt_kw, limit_soc

    def now(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(i, pv_kw, load_kw, ev_kw, battery_kw)`` of every house now (for its observation)."""
        if self._now is None:
            i, pv, load = self.data_step_now()
            ev_kw, batt_kw, _ = self.powers(i, pv, load)
            self._now = (i, pv, load, ev_kw, batt_kw)
        return self._now

    def data_step_now(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(i, pv_kw, load_kw)``: each house's data step now and its PV and load (kept while the clocks stand)."""
        t = self.t_s
        cached = self._step_at
        if cached is not None and cached[0] is t:
            return cached[1], cached[2], cached[3]
        i = self._index(t)
        pv, load = self.pv_kw[i], self.load_kw[i]
        self._step_at = (t, i, pv, load)
        return i, pv, load

    def advance_to(self, t_end_s: np.ndarray) -> None:
        """Process every house's events up to its own ``t_end_s`` (``HouseDynamics.advance_to``)."""
        until_s = t_end_s - EVENT_EPS_S
        b, c = self.battery, self.charger
        while True:
            t = self.t_s
            i, pv, load = self.data_step_now()
            active = t < until_s
            n_active = np.count_nonzero(active)
            if not n_active:  # the powers now are computed when asked (now()): the observation may not need them
                self._pieces.book(self.meter)
                return
            if n_active <= MAX_STRAGGLERS and advance_stragglers(self, np.flatnonzero(active).tolist(), i, t_end_s):
                continue  # the last few houses (a car arrived, left or became full) in Python: cheaper than arrays
            ev_kw, batt_kw, limit_soc = self.powers(i, pv, load)
            everyone = n_active == self.n  # no mask needed (the usual first sub-step)
            # The next event: the earliest of everything scheduled (events_s: leases, thermostat, car).
            t_next = (i + 1) * self.step_s
            np.minimum(t_next, t_end_s, out=t_next)
            np.minimum(t_next, np.minimum.reduce(self.events_s, axis=0), out=t_next)
            charging = None
            if c is not None:  # the car becoming full (skipped when no car charges: nothing to compute)
                charging = ev_kw > 0.0
                if charging.any():
                    to_full_s = time_to_full_s_v(self.ev_energy_kwh, self._ev_limit_kwh, ev_kw, c, charging)
                    np.minimum(t_next, np.add(to_full_s, t, out=to_full_s), out=t_next)
                else:
                    charging = None
            rate = t_limit = None
            if b is not None:  # the battery reaching its SOC limit
                rate = soc_rate_per_s_v(batt_kw, b)
                moving = batt_kw != 0.0
                to_limit_s = time_to_soc_s_v(self.soc, limit_soc, batt_kw, b, rate, moving)
                t_limit = np.add(to_limit_s, t, out=to_limit_s)
                if self.may_backup:  # a reserve may move the limits once there: the limit is an event of its own
                    np.minimum(t_next, t_limit, out=t_next)
            if not everyone:
                np.copyto(t_next, t, where=~active)
            split, t_a = None, t_next
            if t_limit is not None and not self.may_backup:
                split = t_limit < t_next  # the houses whose battery reaches its limit first (see _idle_rest)
                if split.any():
                    t_a = np.minimum(t_limit, t_next)
                else:
                    split = None
            self._integrate(i, t_a - t, ev_kw, batt_kw, rate, charging)
            if rate is not None:
                land = np.abs(self.soc - limit_soc) < 1e-7  # NaN limit (battery idle): False
                np.copyto(self.soc, limit_soc, where=land)  # the limit event itself: land exactly on it
            if split is not None:
                self._idle_rest(i, t_next - t_a, ev_kw, charging, split)
            self.t_s = t_next
            self._process_events(active, everyone)

    def _idle_rest(self, i: np.ndarray, dt: np.ndarray, ev_kw: np.ndarray, charging: np.ndarray | None,
                   split: np.ndarray) -> None:
        """The rest of a sub-step (``dt``, 0 s but where ``split``) after a battery reached its SOC limit.

        The scalar loop lands on the limit and goes on with the battery idle: with the same mode, command and
        house load and the SOC on the limit it headed for, ``inverter_power`` gives zero (without a reserve,
        whose limits could move: ``may_backup`` False). So a battery limit costs no sub-step of its own: only
        the split houses' cars and rooms move on (their occupants looked around in the first piece).
        """
        rows = np.flatnonzero(split)
        if len(rows) <= MAX_STRAGGLERS:  # usually one or two houses: in Python
            idle_rest(self, rows.tolist(), i, dt, ev_kw)
            return
        if charging is not None:
            charging = charging & split
            if not charging.any():
                charging = None
        self._integrate(i, dt, ev_kw, self._zeros, None, charging, looked=True)

    def _integrate(self, i: np.ndarray, dt: np.ndarray, ev_kw: np.ndarray, batt_kw: np.ndarray,
                   soc_rate: np.ndarray | None, charging: np.ndarray | None, looked: bool = False) -> None:
        """Advance every house by its ``dt`` seconds of constant inputs (data step ``i``).

        ``looked``: every house that moves has had its occupants look around in data step ``i`` already.

        The battery, the car and the rooms move now; the meter only records the piece (its data
        step, powers and length) and books every piece of the step at once (``MeterPieces.book``).
        """
        dt_h = dt / 3600.0
        self._pieces.record(i, dt_h, self.heat_kw, ev_kw, batt_kw, self.meter)
        if soc_rate is not None:
            self.soc += soc_rate * dt
        if charging is not None and self.charger is not None:
            charged = np.minimum(self._ev_limit_kwh, self.ev_energy_kwh + ev_kw * self.charger.efficiency * dt_h)
            np.copyto(self.ev_energy_kwh, charged, where=charging)
            if np.count_nonzero(charging & (charged >= self._ev_limit_kwh - 1e-9)):
                self._ev_kw = None  # a car became full: its charger stops
        if self.n_rooms:
            self.thermal.step(i, dt, self._relay_f, looked)

    def _process_events(self, due_houses: np.ndarray, everyone: bool = False) -> None:
        """Handle everything due at each house's ``t_s`` where ``due_houses`` (``everyone``: all True).

        Leases ending, thermostat ticks, EV departures and arrivals (``HouseDynamics._process_events``).
        """
        t = self.t_s
        due = self.events_s <= t + EVENT_EPS_S
        if not everyone:
            due &= due_houses
        count = np.count_nonzero  # per row: count_nonzero(axis=...) takes a slow path
        relay_due, battery_due, ev_due, session_due = count(due[0]), count(due[1]), count(due[2]), count(due[3])
        events = self.events_s
        self._now = None
        if battery_due:
            ended = due[BATTERY_EVENT]
            self.battery_lease_s[ended] = NO_LEASE
            self.battery_mode[ended] = SC
            self.battery_kw[ended] = 0.0
            self.battery_reserve_soc[ended] = np.nan
            events[BATTERY_EVENT, ended] = np.inf
        if ev_due:
            ended = due[EV_EVENT]
            self.ev_lease_s[ended] = NO_LEASE
            self.ev_request_kw[ended] = np.nan
            self._ev_kw = None
            events[EV_EVENT, ended] = np.inf
        if relay_due:
            # A relay lease ending hands the relays to the thermostat, which ticks at once.
            tick = due[RELAY_EVENT]
            self.relay_lease_s[tick] = NO_LEASE
            lower = self.lower_c[self._index(t)]
            relays = thermostat_relays(self.air_c, lower, self.relay_on, self._on_below_c, self._off_above_c)
            self._set_relays(np.where(tick[:, None], relays, self.relay_on))
            np.copyto(self.thermostat_next_s, t + self._thermostat_period_s, where=tick)
            np.copyto(events[RELAY_EVENT], self.thermostat_next_s, where=tick)
        if session_due:
            sessions = self.sessions
            k = self.ev_session
            depart = due[SESSION_EVENT] & self.ev_connected
            if np.count_nonzero(depart):
                unmet = np.maximum(0.0, sessions.target_kwh[k] - self.ev_energy_kwh)
                self.meter[UNMET] += np.where(depart, unmet, 0.0)
                self.ev_connected = self.ev_connected & ~depart
                self.ev_session = k = k + depart
            arrive = due_houses & ~self.ev_connected & (sessions.arrival_s[k] <= t + EVENT_EPS_S)
            if np.count_nonzero(arrive):
                self.ev_connected = self.ev_connected | arrive
                self.ev_energy_kwh = np.where(arrive, sessions.arrival_kwh[k], self.ev_energy_kwh)
            events[SESSION_EVENT] = np.where(self.ev_connected, sessions.departure_s[k], sessions.arrival_s[k])
            self._ev_limit_kwh = sessions.charge_limit_kwh[k]
            self._ev_kw = None

    def _set_relays(self, relays: np.ndarray) -> None:
        changed = relays != self.relay_on
        if np.count_nonzero(changed):
            self.relay_switches += np.add.reduce(changed, axis=1, dtype=np.int64)
            self.relay_on = relays
            self._on_relays_changed()

    def _on_relays_changed(self) -> None:
        self._relay_f = relay_f = self.relay_on.astype(float)
        self.heat_kw = relay_f @ self._heater_kw if self.n_rooms else np.zeros(self.n)
        self.thermal.set_heat(relay_f)

    def take_interval(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Close every house's interval: ``(meter rows, relay switches, durations [s])``; the meter starts at zero."""
        meter, switches = self.meter, self.relay_switches
        duration_s = self.t_s - self.interval_start_s
        self.meter = np.zeros_like(meter)
        self.relay_switches = np.zeros_like(switches)
        self.interval_start_s = self.t_s.copy()
        return meter, switches, duration_s
