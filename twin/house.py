"""SimHouse: the discrete-event twin of a house, implementing the ``Plant`` protocol.

The physics — the state advanced exactly from event to event, between piecewise-constant
inputs — is ``twin.house_dynamics.HouseDynamics``, which ``SimHouse`` extends with what a runner
and an emulator use: the SimPy clock, the ``Plant`` protocol, leases ending early, snapshots and
metered intervals.

The house lives on a SimPy clock: ``observe()`` and ``apply()`` first bring it to
``env.now``, processing every internal event on the way in time order. Time is seconds since
the scenario's start (``t_s``); :meth:`SimHouse.timestamp` converts.
"""

from __future__ import annotations

import bisect
import math
from datetime import datetime

import numpy as np
import simpy

from twin import battery as bat
from twin import ev as evm
from twin.config import HouseConfig
from twin.contracts import SELF_CONSUMPTION, Command, Forecast, Observation, epoch_seconds, observation_of
from twin.errors import TwinError
from twin.grid import grid_flows
from twin.house_dynamics import HouseDynamics
from twin.house_state import EVENT_EPS_S, NO_LEASE, HouseState, IntervalRecord, Meter
from twin.scenario import Scenario

__all__ = ["EVENT_EPS_S", "NO_LEASE", "HouseState", "IntervalRecord", "Meter", "SimHouse"]

_NOT_STALE: frozenset[str] = frozenset()

class SimHouse(HouseDynamics):
    """The twin of ``house`` living through ``scenario`` on the SimPy clock ``env``.

    ``horizon_s`` is how far ahead forecasts reach. The scenario starts at ``env.now``.
    """

    def __init__(self, house: HouseConfig, scenario: Scenario, env: simpy.Environment | None = None,
                 horizon_s: float = 48 * 3600.0) -> None:
        self.env = env if env is not None else simpy.Environment()
        self._env_offset_s = float(self.env.now)
        super().__init__(house, scenario, horizon_s)
        self.reset_to(0.0)

    # --- construction ------------------------------------------------------------------------------

    def reset_to(self, start_s: float) -> None:
        """Start afresh at scenario second ``start_s``, as if the scenario began there.

        The state is what a house built on ``scenario.window(start, ...)`` starts with (rooms,
        battery, a car already home connected with its arrival SOC, empty meter), without
        rebuilding the exogenous arrays — how an RL environment starts episodes mid-scenario.
        The SimPy clock is not moved: drive a house reset this way with :meth:`advance_to`.
        """
        if not 0.0 <= start_s < self.duration_s:
            raise TwinError(f"cannot start at t = {start_s} s, the scenario spans [0, {self.duration_s}) s")
        self.state = self._initial_state(float(start_s))
        self._on_state_replaced()
        self._process_events(float(start_s))

    def _initial_state(self, start_s: float = 0.0) -> HouseState:
        n_nodes = self.thermal.n_nodes
        if self.scenario.initial_room_temp_c is not None:
            temps = np.full(n_nodes, float(self.scenario.initial_room_temp_c))
        else:
            temps = np.empty(n_nodes)
            temps[: self._n_rooms] = self.exo.comfort_lower_c[self._step_index(start_s)] + 1.0
            for j in range(self._n_rooms):
                if self.thermal.mass_node[j] >= 0:
                    temps[self.thermal.mass_node[j]] = temps[j]
        b = self.house.battery
        soc = math.nan
        if b is not None:
            initial = self.scenario.initial_battery_soc
            soc = bat.clamp(b.initial_soc if initial is None else initial, b.soc_min, b.soc_max)
        # The first session that has not departed by the start (one already home connects at once).
        session = bisect.bisect_right(self._departure_s, start_s + EVENT_EPS_S)
        return HouseState(
            t_s=start_s, modes=self._modals[0].to_modes @ temps, relay_on=np.zeros(self._n_rooms, dtype=bool),
            relay_since_s=start_s, relay_lease_s=NO_LEASE, thermostat_next_s=start_s, battery_soc=soc,
            battery_cmd=SELF_CONSUMPTION, battery_lease_s=NO_LEASE, ev_request_kw=None, ev_lease_s=NO_LEASE,
            ev_session=session, ev_connected=False, ev_energy_kwh=0.0, meter=Meter.zeros(self._n_rooms),
            blinds_down=np.zeros(self._n_rooms, dtype=bool), interval_start_s=start_s)

    # --- time --------------------------------------------------------------------------------------

    @property
    def t_s(self) -> float:
        """Seconds since the scenario's start, up to which the state is advanced."""
        return self.state.t_s

    def timestamp(self, t_s: float) -> datetime:
        """Wall time (house's time zone) of scenario second ``t_s``."""
        return datetime.fromtimestamp(self._start_epoch + t_s, self._tz)

    def seconds(self, when: datetime) -> float:
        """Scenario seconds of a tz-aware ``when``."""
        return when.timestamp() - self._start_epoch

    def sync(self) -> None:
        """Advance the state to the SimPy clock."""
        self.advance_to(self.env.now - self._env_offset_s)

    def node_temps_c(self) -> np.ndarray:
        """Temperature of every thermal node [°C]: air nodes in room order, then mass nodes."""
        temps: np.ndarray = self.modal.to_temps @ self.state.modes
        return temps

    # --- Plant protocol ----------------------------------------------------------------------------

    def observe(self) -> Observation:
        self.sync()
        st = self.state
        t = st.t_s
        i = self._step_index(t)
        series = self.exo.series
        pv, load = self._pv_kw[i], self._load_kw[i]
        ev_kw, batt_kw, _ = self._powers(i)
        imp, exp, curtailed = grid_flows(load + self._heat_kw + ev_kw + batt_kw - pv, pv,
                                         self.house.grid.export_limit_kw)
        ev_soc, needed, departure = math.nan, 0.0, None
        if st.ev_connected:
            s = self._sessions[st.ev_session]
            ev_soc = st.ev_energy_kwh / s.capacity_kwh
            needed = max(0.0, s.target_soc * s.capacity_kwh - st.ev_energy_kwh)
            departure = s.departure
        h = self.horizon_steps
        model = self.scenario.forecasts
        lower, upper = self.exo.comfort_lower_c, self.exo.comfort_upper_c
        forecast = Forecast(
            start=self._step_times[min(i, self.exo.n_steps - 1)], step_s=self.step_s, horizon_steps=h,
            load=lambda: model.issue(series, i, h),
            comfort=lambda: (lower[i:i + h], upper[i:i + h]),
        )
        epoch_s = self._start_epoch + t
        when = datetime.fromtimestamp(epoch_s, self._tz)
        if not epoch_s.is_integer():
            epoch_s = when.timestamp()  # the datetime keeps microseconds: epoch_s must be time's exactly
        # Observation(time=…, room_temp_c=…, …, forecast=…, stale=frozenset(), epoch_time=…), in field order.
        return observation_of(
            when, self._air_c, lower[i], upper[i], st.relay_on, self._outdoor_c[i], pv - curtailed, load, imp - exp,
            st.battery_soc, batt_kw, st.ev_connected, ev_soc, needed, departure, self._import_price[i],
            self._export_price[i], forecast, _NOT_STALE, (when, epoch_s))

    def apply(self, command: Command) -> None:
        """Hand each commanded device its lease; a command already expired changes nothing."""
        self.sync()
        st = self.state
        until_s = epoch_seconds(command.until) - self._start_epoch
        if until_s <= st.t_s + EVENT_EPS_S:
            return
        if command.relay_on is not None:
            if len(command.relay_on) != self._n_rooms:
                raise TwinError(f"command has {len(command.relay_on)} relay states, the house has "
                                f"{self._n_rooms} rooms")
            if command.relay_on != self._relay_tuple:  # most commands keep the relays as they are
                self._set_relays(np.fromiter(command.relay_on, dtype=bool, count=self._n_rooms))
            st.relay_lease_s = until_s
        if command.battery is not None and self.house.battery is not None:
            st.battery_cmd = command.battery
            st.battery_lease_s = until_s
        if command.ev_power_kw is not None and self.house.ev_charger is not None:
            st.ev_request_kw = max(0.0, command.ev_power_kw)
            st.ev_lease_s = until_s

    def end_leases(self, relays: bool = True, battery: bool = True, ev: bool = True) -> None:
        """End the chosen devices' leases now: each falls back to its own behaviour at once.

        What a real device does when its controller goes offline (last will, or a goodbye):
        relays → local thermostat, battery → SELF_CONSUMPTION, charger → its default.
        """
        self.sync()
        st = self.state
        if relays and st.relay_lease_s != NO_LEASE:
            st.relay_lease_s = st.t_s
        if battery and st.battery_lease_s != NO_LEASE:
            st.battery_lease_s = st.t_s
        if ev and st.ev_lease_s != NO_LEASE:
            st.ev_lease_s = st.t_s
        self._process_events(st.t_s)

    def next_power_change_s(self) -> float:
        """When a device's power next changes by itself [scenario s]; ``inf`` when none is on its way.

        The battery reaching a SOC limit, or the car becoming full.

        For an emulator that publishes meter readings when the power changes, as real meters do.
        """
        self.sync()
        st = self.state
        t = st.t_s
        ev_kw, batt_kw, limit_soc = self._powers(self._step_index(t))
        t_next = math.inf
        if batt_kw != 0.0:
            t_next = t + bat.time_to_soc_s(st.battery_soc, limit_soc, batt_kw, self.house.battery)  # type: ignore[arg-type]  # batt_kw != 0 only with a battery
        if ev_kw > 0.0:
            limit = self._charge_limit_kwh[st.ev_session]
            t_next = min(t_next, t + evm.time_to_full_s(st.ev_energy_kwh, limit, ev_kw, self.house.ev_charger))  # type: ignore[arg-type]  # ev_kw > 0 only with a charger
        return t_next

    # --- snapshots and intervals -------------------------------------------------------------------

    def snapshot(self) -> HouseState:
        """A copy of the full state; :meth:`restore` brings the house back to it."""
        return self.state.copy()

    def restore(self, snapshot: HouseState) -> None:
        self.state = snapshot.copy()
        self._on_state_replaced()

    def take_interval(self) -> IntervalRecord:
        """Close the interval that ends now: its meter and end state; start a new one."""
        self.sync()
        st = self.state
        self._meter_relay_time(st.t_s)
        ev_soc = math.nan
        if st.ev_connected:
            ev_soc = st.ev_energy_kwh / self._sessions[st.ev_session].capacity_kwh
        record = IntervalRecord(
            start_s=st.interval_start_s, end_s=st.t_s, meter=st.meter, room_temp_c=self._air_c,
            relay_on=st.relay_on, battery_soc=st.battery_soc, ev_connected=st.ev_connected, ev_soc=ev_soc)
        st.meter = Meter.zeros(self._n_rooms)
        st.interval_start_s = st.t_s
        return record
