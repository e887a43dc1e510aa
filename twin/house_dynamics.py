"""The physics behind ``SimHouse``: the state advanced exactly from event to event.

Inputs are piecewise constant between events, so the state is advanced *exactly* from event
to event: the RC network by its matrix exponential, battery and car energy by integrating a
constant power, grid import/export and cost from the same constant powers. Events are the
scenario's data points, a command being applied, a lease running out, the local thermostat's
ticks (only while it rules the relays), EV arrival and departure, the battery reaching a SOC
limit and the car becoming full — the last two scheduled from the current power.

Room temperatures are kept in the RC network's modal coordinates (see ``twin.thermal``), where
the exact step for any interval length is element-wise.

Its own module because it is the hot loop, apart from what ``twin.house.SimHouse`` adds on top
(the SimPy clock, the ``Plant`` protocol, snapshots, intervals): a base class rather than free
functions, so that the loop keeps reading its caches as attributes and pays nothing per event
for the split.
"""

from __future__ import annotations

import math

import numpy as np

from twin import battery as bat
from twin import ev as evm
from twin.config import HouseConfig
from twin.contracts import SELF_CONSUMPTION
from twin.errors import TwinError
from twin.exogenous import build_exogenous
from twin.grid import grid_flows, limit_violation_kw
from twin.house_state import EVENT_EPS_S, NO_LEASE, HouseState
from twin.occupants import blinds_down_next, thermostat_relays, windows_open_next
from twin.scenario import Scenario
from twin.thermal import ModalThermal, build_matrices

__all__ = ["HouseDynamics"]


class HouseDynamics:
    """The model of ``house`` living through ``scenario``, and its event loop; ``state`` is set by a subclass.

    ``horizon_s`` is how far ahead the exogenous arrays reach past the scenario (for forecasts).
    """

    state: HouseState

    def __init__(self, house: HouseConfig, scenario: Scenario, horizon_s: float) -> None:
        self.house = house
        self.scenario = scenario
        self.step_s = scenario.step_s
        self.duration_s = scenario.duration_s
        self.horizon_steps = max(1, math.ceil(horizon_s / self.step_s))
        self.thermal = build_matrices(house.rooms, house.couplings)
        closed = ModalThermal(self.thermal)
        airing = any(r.window_ventilation_w_per_k > 0 for r in house.rooms)
        # One modal basis per window state: opening windows changes the network, not just its inputs.
        self._modals = (closed, ModalThermal(build_matrices(house.rooms, house.couplings, True)) if airing else closed)
        self.exo = build_exogenous(house, scenario, self.horizon_steps + 1, self.thermal.mass_node,
                                   self.thermal.n_nodes)
        self._forcing_exo = tuple(m.modal_input(self.exo.series["outdoor_temp_c"], self.exo.gain_w)
                                  for m in self._modals)
        # Python floats for the scalar inner loop (indexing a list beats indexing an ndarray).
        self._pv_kw = self.exo.series["pv_power_kw"].tolist()
        self._load_kw = self.exo.series["base_load_kw"].tolist()
        self._import_price = self.exo.series["import_price_per_kwh"].tolist()
        self._export_price = self.exo.series["export_price_per_kwh"].tolist()
        self._outdoor_c = self.exo.series["outdoor_temp_c"].tolist()
        self._step_times = list(scenario.index.to_pydatetime())
        self._tz = scenario.start.tzinfo
        self._start_epoch = scenario.start.timestamp()
        self._n_rooms = len(house.rooms)
        self._heater_kw = np.array([r.heater_power_kw for r in house.rooms])
        self._heater_modal = tuple(m.heat_to_modal[:, : self._n_rooms] * (self._heater_kw * 1000.0)[None, :]
                                   for m in self._modals)
        self._occupants = house.occupants
        self._room_weights = np.full(self._n_rooms, 1.0 / max(1, self._n_rooms))
        therm = house.thermostat
        self._thermostat_on_below = therm.offset_c - therm.hysteresis_c / 2
        self._thermostat_off_above = therm.offset_c + therm.hysteresis_c / 2
        self._thermostat_period_s = therm.period_s
        self._sessions = scenario.ev_sessions
        self._arrival_s = [s.arrival.timestamp() - self._start_epoch for s in self._sessions]
        self._departure_s = [s.departure.timestamp() - self._start_epoch for s in self._sessions]
        self._charge_limit_kwh = [s.charge_limit_kwh for s in self._sessions]  # a property: read once here
        # Each room's solar gain lands on a node of its own (its air or its mass node), so blocking it by
        # blinds is an assignment into zeros: the same sums as np.add.at at a fraction of its cost.
        self._solar_nodes_unique = len(set(self.exo.solar_node.tolist())) == len(self.exo.solar_node)

    @property
    def modal(self) -> ModalThermal:
        """The RC network in the basis of the current window state."""
        return self._modals[self.state.windows_open]

    def _on_state_replaced(self) -> None:
        """Rebuild the caches derived from the state (after construction or restore)."""
        self._air_c = self.modal.to_air @ self.state.modes
        self._air_c.flags.writeable = False
        self._step_forcing = self._exo_forcing(max(self.state.occupant_step, 0))
        self._on_relays_changed()  # also sets _forcing

    # --- the event loop ----------------------------------------------------------------------------

    def _step_index(self, t_s: float) -> int:
        return int((t_s + EVENT_EPS_S) // self.step_s)

    def _powers(self, i: int) -> tuple[float, float, float]:
        """``(ev_kw, battery_kw, battery_limit_soc)`` held until the next event."""
        st = self.state
        ev_kw = 0.0
        charger = self.house.ev_charger
        if st.ev_connected and charger is not None:
            ev_kw = evm.charger_power_kw(st.ev_request_kw, st.ev_energy_kwh,
                                         self._charge_limit_kwh[st.ev_session], charger)
        b = self.house.battery
        if b is None:
            return ev_kw, 0.0, math.nan
        net = self._load_kw[i] + self._heat_kw + ev_kw - self._pv_kw[i]
        batt_kw, limit = bat.inverter_power(st.battery_cmd, st.battery_soc, net, b)
        return ev_kw, batt_kw, limit

    def advance_to(self, t_end: float) -> None:
        """Process every event up to scenario second ``t_end`` (never beyond the scenario's end)."""
        if t_end > self.duration_s + EVENT_EPS_S:
            raise TwinError(f"cannot advance to t = {t_end} s, the scenario ends at {self.duration_s} s")
        while self.state.t_s < t_end - EVENT_EPS_S:
            self._advance_one(t_end)

    def _advance_one(self, t_end: float) -> None:
        st = self.state
        t = st.t_s
        i = self._step_index(t)
        # The next event: the earliest of everything scheduled (plain comparisons: this is the hot loop).
        t_next = (i + 1) * self.step_s
        if t_end < t_next:
            t_next = t_end
        if st.relay_lease_s > t:
            if st.relay_lease_s < t_next:
                t_next = st.relay_lease_s
        elif self._n_rooms and st.thermostat_next_s < t_next:
            t_next = st.thermostat_next_s
        if t < st.battery_lease_s < t_next:
            t_next = st.battery_lease_s
        if t < st.ev_lease_s < t_next:
            t_next = st.ev_lease_s
        k = st.ev_session
        if k < len(self._sessions):
            session_event = self._departure_s[k] if st.ev_connected else self._arrival_s[k]
            if session_event < t_next:
                t_next = session_event

        ev_kw, batt_kw, limit_soc = self._powers(i)
        if batt_kw != 0.0:
            t_next = min(t_next, t + bat.time_to_soc_s(st.battery_soc, limit_soc, batt_kw, self.house.battery))  # type: ignore[arg-type]  # batt_kw != 0 only with a battery
        if ev_kw > 0.0:
            limit = self._charge_limit_kwh[k]
            t_next = min(t_next, t + evm.time_to_full_s(st.ev_energy_kwh, limit, ev_kw, self.house.ev_charger))  # type: ignore[arg-type]  # ev_kw > 0 only with a charger
        dt = t_next - t
        if dt > 0.0:
            self._integrate(i, dt, ev_kw, batt_kw)
        st.t_s = t_next
        if batt_kw != 0.0 and abs(st.battery_soc - limit_soc) < 1e-7:
            st.battery_soc = limit_soc  # the limit event itself: land exactly on it
        self._process_events(t_next)

    def _integrate(self, i: int, dt: float, ev_kw: float, batt_kw: float) -> None:
        """Advance by ``dt`` seconds of constant inputs (data step ``i``) and meter it."""
        st = self.state
        m = st.meter
        dt_h = dt / 3600.0
        heat_kw = self._heat_kw
        pv = self._pv_kw[i]
        load = self._load_kw[i]
        imp, exp, curtailed = grid_flows(load + heat_kw + ev_kw + batt_kw - pv, pv, self.house.grid.export_limit_kw)
        m.pv_kwh += (pv - curtailed) * dt_h
        m.pv_curtailed_kwh += curtailed * dt_h
        m.base_load_kwh += load * dt_h
        m.heating_kwh += heat_kw * dt_h
        m.ev_kwh += ev_kw * dt_h
        m.import_kwh += imp * dt_h
        m.export_kwh += exp * dt_h
        m.cost += (imp * self._import_price[i] - exp * self._export_price[i]) * dt_h
        grid = self.house.grid
        over = limit_violation_kw(imp, exp, grid.import_limit_kw, grid.export_limit_kw)
        if over > 0.0:
            m.grid_limit_violation_kwh += over * dt_h
        if batt_kw != 0.0:
            if batt_kw > 0.0:
                m.battery_charge_kwh += batt_kw * dt_h
            else:
                m.battery_discharge_kwh -= batt_kw * dt_h
            st.battery_soc += bat.soc_rate_per_s(batt_kw, self.house.battery) * dt  # type: ignore[arg-type]  # batt_kw != 0 only with a battery
        if ev_kw > 0.0:
            limit = self._charge_limit_kwh[st.ev_session]
            st.ev_energy_kwh = min(limit, st.ev_energy_kwh + ev_kw * self.house.ev_charger.efficiency * dt_h)  # type: ignore[union-attr]  # ev_kw > 0 only with a charger
        if self._n_rooms:
            self._integrate_thermal(i, dt)

    def _integrate_thermal(self, i: int, dt: float) -> None:
        st = self.state
        if i != st.occupant_step:
            self._occupants_look_around(i)
        modal = self._modals[st.windows_open]
        st.modes = modal.step(st.modes, self._forcing, dt)
        air = modal.to_air @ st.modes
        air.flags.writeable = False  # shared with observations and records, replaced at every step
        self._air_c = air

    def _occupants_look_around(self, i: int) -> None:
        """At each data point: air the house or close the windows; lower or raise blinds."""
        st = self.state
        occ = self._occupants
        air = self._air_c
        upper = self.exo.comfort_upper_c[i]
        mean_air = float(air @ self._room_weights)
        outdoor = self._outdoor_c[i]
        if self._modals[1] is not self._modals[0]:
            open_next = windows_open_next(st.windows_open, mean_air, outdoor, occ)
            if open_next != st.windows_open:
                self._switch_windows(open_next)
        st.blinds_down = blinds_down_next(air, upper, st.blinds_down, occ)
        st.occupant_step = i
        self._step_forcing = self._exo_forcing(i)
        self._forcing = self._step_forcing + self._forcing_heat

    def _switch_windows(self, open_: bool) -> None:
        st = self.state
        temps = self._modals[st.windows_open].to_temps @ st.modes
        st.windows_open = open_
        st.modes = self._modals[open_].to_modes @ temps
        self._on_relays_changed()  # the heater's modal forcing depends on the basis

    def _exo_forcing(self, i: int) -> np.ndarray:
        """Modal forcing of weather and gains during data step ``i``, blinds taken into account."""
        st = self.state
        forcing = self._forcing_exo[st.windows_open][i]
        if st.blinds_down.any():
            blocked_w = self.exo.solar_w[i] * st.blinds_down * (1.0 - self._occupants.blinds_solar_factor)
            nodes_w = np.zeros(self.thermal.n_nodes)
            if self._solar_nodes_unique:
                nodes_w[self.exo.solar_node] = blocked_w
            else:
                np.add.at(nodes_w, self.exo.solar_node, blocked_w)
            forcing = forcing - self.modal.heat_to_modal @ nodes_w
        exo: np.ndarray = forcing
        return exo

    def _process_events(self, t: float) -> None:
        """Handle everything due at ``t``: leases ending, thermostat tick, EV departure/arrival."""
        st = self.state
        eps = EVENT_EPS_S
        if st.relay_lease_s != NO_LEASE and st.relay_lease_s <= t + eps:
            st.relay_lease_s = NO_LEASE
            st.thermostat_next_s = t
        if st.battery_lease_s != NO_LEASE and st.battery_lease_s <= t + eps:
            st.battery_lease_s = NO_LEASE
            st.battery_cmd = SELF_CONSUMPTION
        if st.ev_lease_s != NO_LEASE and st.ev_lease_s <= t + eps:
            st.ev_lease_s = NO_LEASE
            st.ev_request_kw = None
        if st.relay_lease_s == NO_LEASE and self._n_rooms and st.thermostat_next_s <= t + eps:
            self._thermostat_tick(t)
            st.thermostat_next_s = t + self._thermostat_period_s
        k = st.ev_session
        if k < len(self._sessions):
            s = self._sessions[k]
            if st.ev_connected and self._departure_s[k] <= t + eps:
                st.meter.ev_unmet_kwh += max(0.0, s.target_soc * s.capacity_kwh - st.ev_energy_kwh)
                st.ev_connected = False
                st.ev_session = k = k + 1
            if k < len(self._sessions) and not st.ev_connected and self._arrival_s[k] <= t + eps:
                st.ev_connected = True
                st.ev_energy_kwh = self._sessions[k].arrival_soc * self._sessions[k].capacity_kwh

    def _thermostat_tick(self, t: float) -> None:
        """Each room's own thermostat: hysteresis around its comfort lower bound + offset."""
        st = self.state
        lower = self.exo.comfort_lower_c[self._step_index(t)]
        self._set_relays(thermostat_relays(self._air_c, lower, st.relay_on, self._thermostat_on_below,
                                           self._thermostat_off_above))

    def _set_relays(self, relays: np.ndarray) -> None:
        st = self.state
        changed = relays != st.relay_on
        if changed.any():
            self._meter_relay_time(st.t_s)
            st.meter.relay_switches_room += changed
            st.relay_on = relays
            self._on_relays_changed()

    def _meter_relay_time(self, t: float) -> None:
        """Book each heater's energy since the last relay change (relays are constant in between)."""
        st = self.state
        if t > st.relay_since_s and self._n_rooms:
            st.meter.heating_room_kwh += self._heater_on_kw * ((t - st.relay_since_s) / 3600.0)
        st.relay_since_s = t

    def _on_relays_changed(self) -> None:
        relay_on = self.state.relay_on
        relay_on.flags.writeable = False  # shared with observations, never changed in place
        self._relay_tuple: tuple[bool, ...] = tuple(relay_on.tolist())
        self._relay_f = relay_on.astype(float)
        self._heater_on_kw = self._heater_kw * self._relay_f  # metered at every interval's end: the product once
        self._heat_kw = float(self._heater_kw @ self._relay_f) if self._n_rooms else 0.0
        self._forcing_heat: np.ndarray = self._heater_modal[self.state.windows_open] @ self._relay_f
        # Weather, gains and heaters together: they change at data steps and relay changes, not per event.
        self._forcing = self._step_forcing + self._forcing_heat
