"""N twins of one house stepped in lockstep: ``HouseDynamics``' event loop over a leading array axis.

Every house keeps its own clock. One *sub-step* advances every house still short of its target
time to its own next event — the earliest of the data step's end, the target, a lease ending,
a thermostat tick (only while no lease holds the relays), an EV arrival or departure, the battery
reaching a SOC limit or the car becoming full — by its own ``dt`` (0 for a house already there),
then handles each house's due events under boolean masks. Sub-steps repeat until every house
has arrived; a house whose events are few simply stands still (``dt = 0`` changes nothing, in
the modal basis ``e^{-λ·0} = 1``).

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
from twin.ev import charger_power_kw_v, time_to_full_s_v
from twin.grid import grid_flows_v, limit_violation_kw_v
from twin.house import SimHouse
from twin.house_state import EVENT_EPS_S, NO_LEASE
from twin.occupants import blinds_down_next, thermostat_relays, windows_open_next_v
from twin.thermal import modal_factors_v, modal_step_v

#: Rows of :attr:`BatchedDynamics.meter`, as the fields of ``twin.house_state.Meter``.
METER_FIELDS = ("pv_kwh", "pv_curtailed_kwh", "base_load_kwh", "heating_kwh", "ev_kwh", "battery_charge_kwh",
                "battery_discharge_kwh", "import_kwh", "export_kwh", "cost", "grid_limit_violation_kwh",
                "ev_unmet_kwh")
(PV, CURTAILED, LOAD, HEATING, EV, CHARGE, DISCHARGE, IMPORT, EXPORT, COST, VIOLATION, UNMET) = range(
    len(METER_FIELDS))
SC = MODE_CODE[BatteryMode.SELF_CONSUMPTION]
_SIGNED = {MODE_CODE[BatteryMode.CHARGE_FROM_GRID]: 1.0, MODE_CODE[BatteryMode.POWER_SETPOINT]: 1.0,
           MODE_CODE[BatteryMode.DISCHARGE_TO_GRID]: -1.0}


class BatchedDynamics:
    """The state of ``num_envs`` twins of ``twin``'s house and scenario, advanced together.

    Parameters
    ----------
    twin
        A built :class:`~twin.house.SimHouse`: its model and exogenous arrays are shared, never changed.
    num_envs
        Number of houses.
    """

    def __init__(self, twin: SimHouse, num_envs: int) -> None:
        self.twin = twin
        house = twin.house
        self.n = n = num_envs
        self.step_s = twin.step_s
        self.battery = house.battery
        self.charger = house.ev_charger
        self.grid = house.grid
        self.occupants = house.occupants
        self.n_rooms = rooms = twin._n_rooms
        modals = twin._modals
        self.airing = modals[1] is not modals[0]
        nodes = twin.thermal.n_nodes
        # Per window state (0 closed, 1 open): the basis and what lives in it.
        self._rates = np.stack([m.rates_per_s for m in modals])
        self._to_air_t = [np.ascontiguousarray(m.to_air.T) for m in modals]
        self._to_temps_t = [np.ascontiguousarray(m.to_temps.T) for m in modals]
        self._to_modes_t = [np.ascontiguousarray(m.to_modes.T) for m in modals]
        self._heat_to_modal_t = [np.ascontiguousarray(m.heat_to_modal.T) for m in modals]
        self._heater_modal_t = [np.ascontiguousarray(h.T) for h in twin._heater_modal]
        self._forcing_exo = twin._forcing_exo
        exo = twin.exo
        series = exo.series
        self.pv_kw, self.load_kw = series["pv_power_kw"], series["base_load_kw"]
        self.import_price, self.export_price = series["import_price_per_kwh"], series["export_price_per_kwh"]
        self.outdoor_c = series["outdoor_temp_c"]
        self.lower_c, self.upper_c = exo.comfort_lower_c, exo.comfort_upper_c
        self._solar_w, self._solar_node = exo.solar_w, exo.solar_node
        self._blinds_keep = 1.0 - self.occupants.blinds_solar_factor
        self._heater_kw = twin._heater_kw
        self._room_weights = twin._room_weights
        self._on_below_c, self._off_above_c = twin._thermostat_on_below, twin._thermostat_off_above
        self._thermostat_period_s = twin._thermostat_period_s
        self._initial_temp_c = twin.scenario.initial_room_temp_c
        self._mass_node = twin.thermal.mass_node
        # EV sessions, padded with one that never comes (index = number of sessions).
        sessions = twin._sessions
        self.departure_s = np.array([*twin._departure_s, np.inf])
        self.arrival_s = np.array([*twin._arrival_s, np.inf])
        self.departure_epoch_s = np.array([*(s.departure.timestamp() for s in sessions), np.inf])
        self.charge_limit_kwh = np.array([*(s.charge_limit_kwh for s in sessions), np.inf])
        self.capacity_kwh = np.array([*(s.capacity_kwh for s in sessions), 1.0])
        self.target_soc = np.array([*(s.target_soc for s in sessions), 0.0])
        self.arrival_soc = np.array([*(s.arrival_soc for s in sessions), 0.0])
        # The state, one row per house.
        self.t_s = np.zeros(n)
        self.modes = np.zeros((n, nodes))
        self.windows_open = np.zeros(n, dtype=bool)
        self.blinds_down = np.zeros((n, rooms), dtype=bool)
        self.occupant_step = np.full(n, -1, dtype=np.intp)
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
        self.session_event_s = np.full(n, np.inf)  # the next arrival or departure
        self.meter = np.zeros((len(METER_FIELDS), n))
        self.relay_switches = np.zeros(n, dtype=np.int64)
        self.interval_start_s = np.zeros(n)
        # Caches derived from the state.
        self.air_c = np.zeros((n, rooms))
        self._step_forcing = np.zeros((n, nodes))
        self._forcing_heat = np.zeros((n, nodes))
        self.heat_kw = np.zeros(n)
        self._all = np.ones(n, dtype=bool)

    # --- starting -------------------------------------------------------------------------------------

    def reset(self, which: np.ndarray, start_s: np.ndarray) -> None:
        """Start the houses where ``which`` is True afresh at ``start_s`` (as ``SimHouse.reset_to``)."""
        start = start_s[which]
        rows = np.nonzero(which)[0]
        twin = self.twin
        nodes = self.modes.shape[1]
        if self._initial_temp_c is not None:
            temps = np.full((len(rows), nodes), float(self._initial_temp_c))
        else:
            temps = np.empty((len(rows), nodes))
            temps[:, : self.n_rooms] = self.lower_c[self._index(start)] + 1.0
            has_mass = self._mass_node >= 0
            temps[:, self._mass_node[has_mass]] = temps[:, : self.n_rooms][:, has_mass]
        self.t_s[rows] = start
        self.modes[rows] = temps @ self._to_modes_t[0]
        self.windows_open[rows] = False
        self.blinds_down[rows] = False
        self.occupant_step[rows] = -1
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
        # The first session that has not departed by the start (one already home connects at once).
        self.ev_session[rows] = np.searchsorted(self.departure_s[:-1], start + EVENT_EPS_S, side="right")
        self.ev_connected[rows] = False
        self.ev_energy_kwh[rows] = 0.0
        self.meter[:, rows] = 0.0
        self.relay_switches[rows] = 0
        self.interval_start_s[rows] = start
        self.air_c[rows] = self.modes[rows] @ self._to_air_t[0]
        self._step_forcing[rows] = self._forcing_exo[0][0]
        self._on_relays_changed()
        self._update_session_event()
        self._process_events(which)

    # --- commands ----------------------------------------------------------------------------------------

    def apply_relays(self, relays: np.ndarray, given: np.ndarray, until_s: np.ndarray) -> None:
        """``SimHouse.apply``'s relay part: the new states and their lease where ``given``."""
        self._set_relays(np.where(given[:, None], relays, self.relay_on))
        self.relay_lease_s = np.where(given, until_s, self.relay_lease_s)

    def apply_battery(self, mode: np.ndarray, power_kw: np.ndarray, reserve_soc: np.ndarray, given: np.ndarray,
                      until_s: np.ndarray) -> None:
        """``SimHouse.apply``'s battery part (``power_kw`` as in ``BatteryCommand``)."""
        signed = np.zeros(self.n)
        for code, sign in _SIGNED.items():
            signed = np.where(mode == code, sign * power_kw, signed)
        np.copyto(self.battery_mode, mode, where=given)
        np.copyto(self.battery_kw, signed, where=given)
        np.copyto(self.battery_reserve_soc, reserve_soc, where=given)
        self.battery_lease_s = np.where(given, until_s, self.battery_lease_s)

    def apply_ev(self, power_kw: np.ndarray, given: np.ndarray, until_s: np.ndarray) -> None:
        """``SimHouse.apply``'s charger part."""
        np.copyto(self.ev_request_kw, np.maximum(0.0, power_kw), where=given)
        self.ev_lease_s = np.where(given, until_s, self.ev_lease_s)

    # --- the event loop ------------------------------------------------------------------------------------

    def _index(self, t_s: np.ndarray) -> np.ndarray:
        index: np.ndarray = ((t_s + EVENT_EPS_S) // self.step_s).astype(np.intp)
        return index

    def powers(self, i: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ev_kw, battery_kw, battery_limit_soc)`` of every house, held until its next event."""
        ev_kw: np.ndarray | float = 0.0
        if self.charger is not None:
            limit = self.charge_limit_kwh[self.ev_session]
            ev_kw = np.where(self.ev_connected, charger_power_kw_v(self.ev_request_kw, self.ev_energy_kwh, limit,
                                                                   self.charger), 0.0)
        if self.battery is None:
            return np.zeros(self.n) + ev_kw, np.zeros(self.n), np.full(self.n, np.nan)
        net = self.load_kw[i] + self.heat_kw + ev_kw - self.pv_kw[i]
        batt_kw, limit_soc = inverter_power_v(self.battery_mode, self.battery_kw, self.battery_reserve_soc,
                                              self.soc, net, self.battery)
        return np.zeros(self.n) + ev_kw, batt_kw, limit_soc

    def advance_to(self, t_end_s: np.ndarray) -> None:
        """Process every house's events up to its own ``t_end_s`` (``HouseDynamics.advance_to``)."""
        eps = EVENT_EPS_S
        while True:
            t = self.t_s
            active = t < t_end_s - eps
            if not active.any():
                return
            i = self._index(t)
            t_next = np.minimum((i + 1) * self.step_s, t_end_s)
            leased = self.relay_lease_s > t
            if self.n_rooms:
                t_next = np.minimum(t_next, np.where(leased, self.relay_lease_s, self.thermostat_next_s))
            else:
                t_next = np.where(leased, np.minimum(t_next, self.relay_lease_s), t_next)
            t_next = np.where(self.battery_lease_s > t, np.minimum(t_next, self.battery_lease_s), t_next)
            t_next = np.where(self.ev_lease_s > t, np.minimum(t_next, self.ev_lease_s), t_next)
            t_next = np.minimum(t_next, self.session_event_s)
            ev_kw, batt_kw, limit_soc = self.powers(i)
            if self.battery is not None:
                t_next = np.minimum(t_next, t + time_to_soc_s_v(self.soc, limit_soc, batt_kw, self.battery))
            if self.charger is not None:
                limit = self.charge_limit_kwh[self.ev_session]
                t_next = np.minimum(t_next, t + time_to_full_s_v(self.ev_energy_kwh, limit, ev_kw, self.charger))
            t_next = np.where(active, t_next, t)
            dt = t_next - t
            self._integrate(i, dt, ev_kw, batt_kw)
            self.t_s = t_next
            if self.battery is not None:
                land = (batt_kw != 0.0) & (np.abs(self.soc - limit_soc) < 1e-7)
                self.soc = np.where(land, limit_soc, self.soc)  # the limit event itself: land exactly on it
            self._process_events(active)

    def _integrate(self, i: np.ndarray, dt: np.ndarray, ev_kw: np.ndarray, batt_kw: np.ndarray) -> None:
        """Advance every house by its ``dt`` seconds of constant inputs (data step ``i``) and meter it."""
        m = self.meter
        dt_h = dt / 3600.0
        heat_kw = self.heat_kw
        pv = self.pv_kw[i]
        load = self.load_kw[i]
        imp, exp, curtailed = grid_flows_v(load + heat_kw + ev_kw + batt_kw - pv, pv, self.grid.export_limit_kw)
        m[PV] += (pv - curtailed) * dt_h
        m[CURTAILED] += curtailed * dt_h
        m[LOAD] += load * dt_h
        m[HEATING] += heat_kw * dt_h
        m[EV] += ev_kw * dt_h
        m[IMPORT] += imp * dt_h
        m[EXPORT] += exp * dt_h
        m[COST] += (imp * self.import_price[i] - exp * self.export_price[i]) * dt_h
        m[VIOLATION] += limit_violation_kw_v(imp, exp, self.grid.import_limit_kw, self.grid.export_limit_kw) * dt_h
        if self.battery is not None:
            m[CHARGE] += np.maximum(batt_kw, 0.0) * dt_h
            m[DISCHARGE] -= np.minimum(batt_kw, 0.0) * dt_h
            self.soc = self.soc + soc_rate_per_s_v(batt_kw, self.battery) * dt
        if self.charger is not None:
            limit = self.charge_limit_kwh[self.ev_session]
            charged = np.minimum(limit, self.ev_energy_kwh + ev_kw * self.charger.efficiency * dt_h)
            self.ev_energy_kwh = np.where(ev_kw > 0.0, charged, self.ev_energy_kwh)
        if self.n_rooms:
            self._integrate_thermal(i, dt)

    def _integrate_thermal(self, i: np.ndarray, dt: np.ndarray) -> None:
        look = (i != self.occupant_step) & (dt > 0.0)
        if look.any():
            self._occupants_look_around(i, look)
        forcing = self._step_forcing + self._forcing_heat
        if self.airing and self.windows_open.any():
            rates = self._rates[self.windows_open.astype(np.intp)]
            decay, gain = modal_factors_v(rates, dt)
            self.modes = modal_step_v(self.modes, forcing, decay, gain)
            self.air_c = self._per_basis(self.modes, self._to_air_t)
        else:
            decay, gain = modal_factors_v(self._rates[0], dt)
            self.modes = modal_step_v(self.modes, forcing, decay, gain)
            self.air_c = self.modes @ self._to_air_t[0]

    def _per_basis(self, rows: np.ndarray, matrices_t: list[np.ndarray]) -> np.ndarray:
        """``rows @ matrices_t[windows_open]`` per house (the basis each house is in)."""
        closed = rows @ matrices_t[0]
        if not self.windows_open.any():
            return closed
        out: np.ndarray = np.where(self.windows_open[:, None], rows @ matrices_t[1], closed)
        return out

    def _occupants_look_around(self, i: np.ndarray, look: np.ndarray) -> None:
        """At each data point: air the house or close the windows; lower or raise blinds."""
        occ = self.occupants
        air = self.air_c
        if self.airing:
            mean_air = air @ self._room_weights
            open_next = windows_open_next_v(self.windows_open, mean_air, self.outdoor_c[i], occ)
            switch = look & (open_next != self.windows_open)
            if switch.any():
                temps = self._per_basis(self.modes, self._to_temps_t)
                self.windows_open = np.where(switch, open_next, self.windows_open)
                self.modes = np.where(switch[:, None], self._per_basis(temps, self._to_modes_t), self.modes)
                self._on_relays_changed()  # the heater's modal forcing depends on the basis
        blinds = blinds_down_next(air, self.upper_c[i], self.blinds_down, occ)
        self.blinds_down = np.where(look[:, None], blinds, self.blinds_down)
        self.occupant_step = np.where(look, i, self.occupant_step)
        self._step_forcing = np.where(look[:, None], self._exo_forcing(i), self._step_forcing)

    def _exo_forcing(self, i: np.ndarray) -> np.ndarray:
        """Modal forcing of weather and gains during each house's data step ``i``, blinds included."""
        forcing = self._forcing_exo[0][i]
        if self.airing and self.windows_open.any():
            forcing = np.where(self.windows_open[:, None], self._forcing_exo[1][i], forcing)
        if self.blinds_down.any():
            blocked_w = self._solar_w[i] * self.blinds_down * self._blinds_keep
            nodes_w = np.zeros_like(forcing)
            nodes_w[:, self._solar_node] = blocked_w
            forcing = forcing - self._per_basis(nodes_w, self._heat_to_modal_t)
        return forcing

    def _process_events(self, due: np.ndarray) -> None:
        """Handle everything due at each house's ``t_s`` where ``due``: leases, thermostat, EV sessions."""
        t = self.t_s
        t_eps = t + EVENT_EPS_S
        ended = due & (self.relay_lease_s != NO_LEASE) & (self.relay_lease_s <= t_eps)
        if ended.any():
            self.relay_lease_s = np.where(ended, NO_LEASE, self.relay_lease_s)
            self.thermostat_next_s = np.where(ended, t, self.thermostat_next_s)
        ended = due & (self.battery_lease_s != NO_LEASE) & (self.battery_lease_s <= t_eps)
        if ended.any():
            self.battery_lease_s = np.where(ended, NO_LEASE, self.battery_lease_s)
            self.battery_mode = np.where(ended, SC, self.battery_mode)
            self.battery_kw = np.where(ended, 0.0, self.battery_kw)
            self.battery_reserve_soc = np.where(ended, np.nan, self.battery_reserve_soc)
        ended = due & (self.ev_lease_s != NO_LEASE) & (self.ev_lease_s <= t_eps)
        if ended.any():
            self.ev_lease_s = np.where(ended, NO_LEASE, self.ev_lease_s)
            self.ev_request_kw = np.where(ended, np.nan, self.ev_request_kw)
        if self.n_rooms:
            tick = due & (self.relay_lease_s == NO_LEASE) & (self.thermostat_next_s <= t_eps)
            if tick.any():
                lower = self.lower_c[self._index(t)]
                relays = thermostat_relays(self.air_c, lower, self.relay_on, self._on_below_c, self._off_above_c)
                self._set_relays(np.where(tick[:, None], relays, self.relay_on))
                self.thermostat_next_s = np.where(tick, t + self._thermostat_period_s, self.thermostat_next_s)
        if not (due & (self.session_event_s <= t_eps)).any():
            return
        k = self.ev_session
        depart = due & self.ev_connected & (self.departure_s[k] <= t_eps)
        if depart.any():
            unmet = np.maximum(0.0, self.target_soc[k] * self.capacity_kwh[k] - self.ev_energy_kwh)
            self.meter[UNMET] += np.where(depart, unmet, 0.0)
            self.ev_connected = self.ev_connected & ~depart
            self.ev_session = k = k + depart
        arrive = due & ~self.ev_connected & (self.arrival_s[k] <= t_eps)
        if arrive.any():
            self.ev_connected = self.ev_connected | arrive
            self.ev_energy_kwh = np.where(arrive, self.arrival_soc[k] * self.capacity_kwh[k], self.ev_energy_kwh)
        self._update_session_event()

    def _update_session_event(self) -> None:
        k = self.ev_session
        self.session_event_s = np.where(self.ev_connected, self.departure_s[k], self.arrival_s[k])

    def _set_relays(self, relays: np.ndarray) -> None:
        changed = relays != self.relay_on
        if changed.any():
            self.relay_switches += changed.sum(axis=1)
            self.relay_on = relays
            self._on_relays_changed()

    def _on_relays_changed(self) -> None:
        relay_f = self.relay_on.astype(float)
        self.heat_kw = relay_f @ self._heater_kw if self.n_rooms else np.zeros(self.n)
        self._forcing_heat = self._per_basis(relay_f, self._heater_modal_t)

    def take_interval(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Close every house's interval: ``(meter rows, relay switches, durations [s])``; the meter
        starts again at zero."""
        meter, switches = self.meter, self.relay_switches
        duration_s = self.t_s - self.interval_start_s
        self.meter = np.zeros_like(meter)
        self.relay_switches = np.zeros_like(switches)
        self.interval_start_s = self.t_s.copy()
        return meter, switches, duration_s
