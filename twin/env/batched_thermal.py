"""The rooms of N houses: the RC network in modal form, windows and blinds, over a leading axis.

``HouseDynamics``' thermal part (``_integrate_thermal``, ``_occupants_look_around``,
``_switch_windows``, ``_exo_forcing``, the heater's modal forcing) for many houses. Each house is
in the modal basis of its own window state (closed or aired); everything that lives in a basis
is taken from the house's own one.
"""

from __future__ import annotations

import numpy as np

from twin.house import SimHouse
from twin.occupants import blinds_down_next, windows_open_next_v
from twin.thermal import modal_factors_v, modal_step_v


class BatchedThermal:
    """Thermal state of ``num_envs`` houses of ``twin``'s model (shared, read only)."""

    def __init__(self, twin: SimHouse, num_envs: int) -> None:
        modals = twin._modals
        self.airing = modals[1] is not modals[0]
        n, rooms, nodes = num_envs, twin._n_rooms, twin.thermal.n_nodes
        self.n_rooms = rooms
        # Per window state (0 closed, 1 aired): the basis and what lives in it (transposed: rows are houses).
        self._rates = [m.rates_per_s for m in modals]
        self._rates_stack = np.stack(self._rates)
        self._to_air_t = [np.ascontiguousarray(m.to_air.T) for m in modals]
        self._to_temps_t = [np.ascontiguousarray(m.to_temps.T) for m in modals]
        self._to_modes_t = [np.ascontiguousarray(m.to_modes.T) for m in modals]
        self._heat_to_modal_t = [np.ascontiguousarray(m.heat_to_modal.T) for m in modals]
        self._heater_modal_t = [np.ascontiguousarray(h.T) for h in twin._heater_modal]
        self._forcing_exo = twin._forcing_exo
        exo = twin.exo
        self._outdoor_c = exo.series["outdoor_temp_c"]
        self._upper_c = exo.comfort_upper_c
        self._solar_w, self._solar_node = exo.solar_w, exo.solar_node
        self._occupants = twin.house.occupants
        self._blinds_keep = 1.0 - self._occupants.blinds_solar_factor
        self._room_weights = twin._room_weights
        self.modes = np.zeros((n, nodes))
        self.windows_open = np.zeros(n, dtype=bool)
        self.blinds_down = np.zeros((n, rooms), dtype=bool)
        self.occupant_step = np.full(n, -1, dtype=np.intp)
        self.air_c = np.zeros((n, rooms))
        self._step_forcing = np.zeros((n, nodes))  # weather and gains of the data step
        self._heat_forcing = np.zeros((n, nodes))  # the heaters that are on
        self._forcing = np.zeros((n, nodes))  # their sum, what the modal step reads

    def reset(self, rows: np.ndarray, temps_c: np.ndarray) -> None:
        """Houses ``rows`` start afresh with node temperatures ``temps_c`` (windows closed, blinds up).

        Call :meth:`set_heat` afterwards (the heaters' forcing is not reset here).
        """
        self.modes[rows] = temps_c @ self._to_modes_t[0]
        self.windows_open[rows] = False
        self.blinds_down[rows] = False
        self.occupant_step[rows] = -1
        self.air_c[rows] = self.modes[rows] @ self._to_air_t[0]
        self._step_forcing[rows] = self._forcing_exo[0][0]  # as SimHouse: step 0 until the occupants look around

    def set_heat(self, relay_f: np.ndarray) -> None:
        """The heaters' modal forcing for relay states ``relay_f`` (0/1 per house and room)."""
        self._heat_forcing = self._per_basis(relay_f, self._heater_modal_t)
        self._forcing = self._step_forcing + self._heat_forcing

    def step(self, i: np.ndarray, dt_s: np.ndarray, relay_f: np.ndarray) -> None:
        """Advance every house by its ``dt_s`` in data step ``i`` (``dt_s = 0``: unchanged)."""
        look = i != self.occupant_step
        look &= dt_s > 0.0
        if np.count_nonzero(look):
            self._occupants_look_around(i, look, relay_f)
        if self.airing and np.count_nonzero(self.windows_open):
            decay, gain = modal_factors_v(self._rates_stack[self.windows_open.astype(np.intp)], dt_s)
            self.modes = modal_step_v(self.modes, self._forcing, decay, gain)
            self.air_c = self._per_basis(self.modes, self._to_air_t)
        else:
            decay, gain = modal_factors_v(self._rates[0], dt_s)
            self.modes = modal_step_v(self.modes, self._forcing, decay, gain)
            self.air_c = self.modes @ self._to_air_t[0]

    def _per_basis(self, rows: np.ndarray, matrices_t: list[np.ndarray]) -> np.ndarray:
        """``rows @ matrices_t[windows_open]`` per house (the basis each house is in)."""
        closed: np.ndarray = rows @ matrices_t[0]
        if not self.airing or not np.count_nonzero(self.windows_open):
            return closed
        out: np.ndarray = np.where(self.windows_open[:, None], rows @ matrices_t[1], closed)
        return out

    def _occupants_look_around(self, i: np.ndarray, look: np.ndarray, relay_f: np.ndarray) -> None:
        """At each data point: air the house or close the windows; lower or raise blinds."""
        occ = self._occupants
        air = self.air_c
        if self.airing:
            mean_air = air @ self._room_weights
            open_next = windows_open_next_v(self.windows_open, mean_air, self._outdoor_c[i], occ)
            switch = look & (open_next != self.windows_open)
            if np.count_nonzero(switch):
                temps = self._per_basis(self.modes, self._to_temps_t)
                self.windows_open = np.where(switch, open_next, self.windows_open)
                self.modes = np.where(switch[:, None], self._per_basis(temps, self._to_modes_t), self.modes)
                self._heat_forcing = self._per_basis(relay_f, self._heater_modal_t)  # depends on the basis
        blinds = blinds_down_next(air, self._upper_c[i], self.blinds_down, occ)
        self.blinds_down = np.where(look[:, None], blinds, self.blinds_down)
        self.occupant_step = np.where(look, i, self.occupant_step)
        self._step_forcing = np.where(look[:, None], self._exo_forcing(i), self._step_forcing)
        self._forcing = self._step_forcing + self._heat_forcing

    def _exo_forcing(self, i: np.ndarray) -> np.ndarray:
        """Modal forcing of weather and gains during each house's data step ``i``, blinds included."""
        forcing = self._forcing_exo[0][i]
        if self.airing and np.count_nonzero(self.windows_open):
            forcing = np.where(self.windows_open[:, None], self._forcing_exo[1][i], forcing)
        if np.count_nonzero(self.blinds_down):
            blocked_w = self._solar_w[i] * self.blinds_down * self._blinds_keep
            nodes_w = np.zeros_like(forcing)
            nodes_w[:, self._solar_node] = blocked_w
            forcing = forcing - self._per_basis(nodes_w, self._heat_to_modal_t)
        return forcing
