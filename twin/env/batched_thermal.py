"""The rooms of N houses: the RC network in modal form, windows and blinds, over a leading axis.

``HouseDynamics``' thermal part (``_integrate_thermal``, ``_occupants_look_around``,
``_switch_windows``, ``_exo_forcing``, the heater's modal forcing) for many houses. Each house is
in the modal basis of its own window state (closed or aired); everything that lives in a basis
is taken from the house's own one.

The modal step is exact for any interval of constant forcing, and two steps of ``a`` and ``b``
seconds are one of ``a + b`` (to rounding). So time is only *accumulated* per house
(``pending_s``) while the forcing stays the same — the battery reaching a SOC limit or a car
arriving splits an interval for the meter, not for the rooms — and the modes are brought up to
date (:meth:`BatchedThermal.flush`) when the forcing is about to change or the air temperature is
read. Most steps then cost one modal step for all houses, with the twin's own cached factors.
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
        self._modals = modals
        self._rates_stack = np.stack([m.rates_per_s for m in modals])
        self._to_air_t = _both([m.to_air.T for m in modals])
        self._to_temps_t = _both([m.to_temps.T for m in modals])
        self._to_modes_t = _both([m.to_modes.T for m in modals])
        self._heat_to_modal_t = _both([m.heat_to_modal.T for m in modals])
        self._heater_modal_t = _both([h.T for h in twin._heater_modal])
        # Each basis's own matrices, for windows switching the same way in every house that switches.
        self._to_temps_sep = [np.ascontiguousarray(m.to_temps.T) for m in modals]
        self._to_modes_sep = [np.ascontiguousarray(m.to_modes.T) for m in modals]
        self._heater_modal_sep = [np.ascontiguousarray(h.T) for h in twin._heater_modal]
        self._forcing_exo = twin._forcing_exo
        # Both window states' forcing interleaved, row 2·step + window state: one gather of each house's own
        # row per look-around (only when the house airs).
        self._forcing_exo_rows = (np.stack(twin._forcing_exo, axis=1).reshape(-1, nodes) if self.airing
                                  else None)
        exo = twin.exo
        self._outdoor_c = exo.series["outdoor_temp_c"]
        self._upper_c = exo.comfort_upper_c
        self._occupants = twin.house.occupants
        # The solar gain a lowered blind holds back, per step and room [W] (solar · blinds · (1 - factor),
        # with blinds 0/1: the same products as HouseDynamics._exo_forcing).
        self._solar_kept_w = exo.solar_w * (1.0 - self._occupants.blinds_solar_factor)
        self._blinds_to_modal_t = _both([m.heat_to_modal[:, exo.solar_node].T for m in modals])
        self._room_weights = twin._room_weights
        self._initial_temp_c = twin.scenario.initial_room_temp_c
        self._mass_node = twin.thermal.mass_node
        self.modes = np.zeros((n, nodes))
        self.windows_open = np.zeros(n, dtype=bool)
        self.blinds_down = np.zeros((n, rooms), dtype=bool)
        self.occupant_step = np.full(n, -1, dtype=np.intp)
        self._air_c = np.zeros((n, rooms))
        self.pending_s = np.zeros(n)  # seconds of the present forcing not yet applied to the modes
        self._pending = False
        self._stacked_factors: dict[float, tuple[np.ndarray, np.ndarray]] = {}  # per length: both bases' factors
        # Per length: every house's factors in its basis, kept up to date as windows switch (they switch in a
        # few houses per data step; gathering all houses' rows at every flush costs more).
        self._house_factors: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._step_forcing = np.zeros((n, nodes))  # weather and gains of the data step
        self._heat_forcing = np.zeros((n, nodes))  # the heaters that are on
        self._forcing = np.zeros((n, nodes))  # their sum, what the modal step reads

    def reset(self, rows: np.ndarray, lower_c: np.ndarray) -> None:
        """Houses ``rows`` start afresh (windows closed, blinds up); ``lower_c``: their comfort lower bounds now.

        The nodes start as ``SimHouse.reset_to`` starts them: at the scenario's initial room
        temperature, else 1 K above each room's lower bound (a room's mass node with its room).
        Call :meth:`set_heat` afterwards (the heaters' forcing is not reset here).
        """
        nodes = self.modes.shape[1]
        if self._initial_temp_c is not None:
            temps_c = np.full((len(rows), nodes), float(self._initial_temp_c))
        else:
            temps_c = np.empty((len(rows), nodes))
            temps_c[:, : self.n_rooms] = lower_c + 1.0
            has_mass = self._mass_node >= 0
            temps_c[:, self._mass_node[has_mass]] = temps_c[:, : self.n_rooms][:, has_mass]
        self.flush()
        self.modes[rows] = temps_c @ self._to_modes_t[0]
        self.windows_open[rows] = False
        self._windows_changed(rows)
        self.blinds_down[rows] = False
        self.occupant_step[rows] = -1
        self._air_c[rows] = self.modes[rows] @ self._to_air_t[0]
        self._step_forcing[rows] = self._forcing_exo[0][0]  # as SimHouse: step 0 until the occupants look around

    @property
    def air_c(self) -> np.ndarray:
        """Air temperature of every room now [°C], ``(houses, rooms)`` (a new array after every change)."""
        self.flush()
        return self._air_c

    def set_heat(self, relay_f: np.ndarray) -> None:
        """The heaters' modal forcing for relay states ``relay_f`` (0/1 per house and room)."""
        self.flush()
        self._heat_forcing = self._per_basis(relay_f, self._heater_modal_t)
        self._forcing = self._step_forcing + self._heat_forcing

    def step(self, i: np.ndarray, dt_s: np.ndarray, relay_f: np.ndarray, looked: bool = False) -> None:
        """Advance every house by its ``dt_s`` in data step ``i`` (``dt_s = 0``: unchanged).

        At a house's first interval in a new data step its occupants look around first (with the
        air temperature reached by then); the step itself is only booked (:meth:`flush` applies it).
        ``looked``: the caller knows every house with ``dt_s > 0`` has looked around in step ``i`` already.
        """
        if not looked:
            look = i != self.occupant_step
            look &= dt_s > 0.0
            if np.count_nonzero(look):
                self.flush()
                self._occupants_look_around(i, look, relay_f)
        self.pending_s += dt_s
        self._pending = True

    def flush(self) -> None:
        """Apply every house's pending seconds to its modes (exactly: one modal step each)."""
        if not self._pending:
            return
        self._pending = False
        dt = self.pending_s
        self.pending_s = np.zeros_like(dt)
        mixed = self.airing and np.count_nonzero(self.windows_open)
        if not np.count_nonzero(dt != dt[0]):  # the common case: everyone the same length, the twin's own cache
            length = float(dt[0])
            if mixed:
                per_house = self._house_factors.get(length)
                if per_house is None:
                    if len(self._house_factors) >= 4:  # few lengths recur (the decision interval); keep it small
                        self._house_factors.clear()
                    per_house = self._house_factors[length] = self._gather_factors(length, slice(None))
                decay, gain = per_house
            else:
                decay, gain = self._modals[0].factors(length)
        else:
            rates = self._rates_stack[self.windows_open.astype(np.intp)] if mixed else self._rates_stack[0]
            decay, gain = modal_factors_v(rates, dt)
        self.modes = modal_step_v(self.modes, self._forcing, decay, gain)
        self._air_c = self._per_basis(self.modes, self._to_air_t)

    def _gather_factors(self, length: float, rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        """Each of houses ``rows``' modal factors for ``length`` seconds in the basis it is in."""
        stacked = self._stacked_factors.get(length)
        if stacked is None:
            pairs = [m.factors(length) for m in self._modals]
            stacked = self._stacked_factors[length] = (np.stack([p[0] for p in pairs]),
                                                       np.stack([p[1] for p in pairs]))
        basis = self.windows_open[rows].astype(np.intp)
        return stacked[0][basis], stacked[1][basis]

    def _windows_changed(self, rows: np.ndarray) -> None:
        """Houses ``rows`` changed basis: their rows of the kept per-house factors follow."""
        for length, (decay, gain) in self._house_factors.items():
            decay[rows], gain[rows] = self._gather_factors(length, rows)

    def _per_basis(self, rows: np.ndarray, matrices_t: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """``rows @ matrix[windows_open]`` per house (the basis each house is in).

        ``matrices_t`` is ``(closed, [closed | aired])`` (see :func:`_both`): one product for all.
        """
        closed, both = matrices_t
        if not self.airing or not np.count_nonzero(self.windows_open):
            out: np.ndarray = rows @ closed
            return out
        product = rows @ both
        width = closed.shape[1]
        out = np.where(self.windows_open[:, None], product[:, width:], product[:, :width])
        return out

    def _occupants_look_around(self, i: np.ndarray, look: np.ndarray, relay_f: np.ndarray) -> None:
        """At each data point: air the house or close the windows; lower or raise blinds."""
        occ = self._occupants
        air = self._air_c  # up to date: step() flushed
        if self.airing:
            mean_air = air @ self._room_weights
            open_next = windows_open_next_v(self.windows_open, mean_air, self._outdoor_c[i], occ)
            switch = look & (open_next != self.windows_open)
            if np.count_nonzero(switch):
                self._switch_windows(np.nonzero(switch)[0], relay_f)
        blinds = blinds_down_next(air, self._upper_c[i], self.blinds_down, occ)
        if np.count_nonzero(look) == len(look):  # the usual case: every house starts a data step together
            self.blinds_down = blinds
            self.occupant_step = i
            self._step_forcing = self._exo_forcing(i)
        else:
            self.blinds_down = np.where(look[:, None], blinds, self.blinds_down)
            self.occupant_step = np.where(look, i, self.occupant_step)
            self._step_forcing = np.where(look[:, None], self._exo_forcing(i), self._step_forcing)
        self._forcing = self._step_forcing + self._heat_forcing

    def _switch_windows(self, rows: np.ndarray, relay_f: np.ndarray) -> None:
        """Open or close the windows of houses ``rows``: their modes move to the other basis.

        Only those houses are converted (``HouseDynamics._switch_windows``: modes → node
        temperatures in the old basis → modes in the new one); the heaters' forcing follows the basis.
        """
        was_open = self.windows_open[rows]
        if len(rows) == 1 or not np.count_nonzero(was_open != was_open[0]):  # the usual case: one way for all
            old, new = (1, 0) if was_open[0] else (0, 1)
            temps = self.modes[rows] @ self._to_temps_sep[old]
            self.modes[rows] = temps @ self._to_modes_sep[new]
            self._heat_forcing[rows] = relay_f[rows] @ self._heater_modal_sep[new]
            self.windows_open[rows] = not was_open[0]
            self._windows_changed(rows)
            return
        nodes = self.modes.shape[1]
        both_temps = self.modes[rows] @ self._to_temps_t[1]  # [closed | aired] conversions of each row
        temps = np.where(was_open[:, None], both_temps[:, nodes:], both_temps[:, :nodes])
        both_modes = temps @ self._to_modes_t[1]
        self.modes[rows] = np.where(was_open[:, None], both_modes[:, :nodes], both_modes[:, nodes:])
        both_heat = relay_f[rows] @ self._heater_modal_t[1]
        self._heat_forcing[rows] = np.where(was_open[:, None], both_heat[:, :nodes], both_heat[:, nodes:])
        self.windows_open[rows] = ~was_open
        self._windows_changed(rows)

    def _exo_forcing(self, i: np.ndarray) -> np.ndarray:
        """Modal forcing of weather and gains during each house's data step ``i``, blinds included."""
        if not self.airing:
            closed: np.ndarray = self._forcing_exo[0][i]
            if np.count_nonzero(self.blinds_down):
                # The blocked solar gain enters each room's solar node: heat_to_modal's columns of those nodes.
                closed = closed - (self._solar_kept_w[i] * self.blinds_down) @ self._blinds_to_modal_t[0]
            return closed
        assert self._forcing_exo_rows is not None
        forcing: np.ndarray = self._forcing_exo_rows[2 * i + self.windows_open]  # each house's window state
        if np.count_nonzero(self.blinds_down):
            # Each house's basis' columns of the blocked gain's modal forcing: f - b per element, as before.
            blocked = (self._solar_kept_w[i] * self.blinds_down) @ self._blinds_to_modal_t[1]
            width = forcing.shape[1]
            if np.count_nonzero(self.windows_open):
                forcing = forcing - np.where(self.windows_open[:, None], blocked[:, width:], blocked[:, :width])
            else:
                forcing = forcing - blocked[:, :width]
        return forcing


def _both(matrices: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(closed, [closed | aired])`` of a matrix per window state, C-contiguous."""
    return np.ascontiguousarray(matrices[0]), np.ascontiguousarray(np.concatenate(matrices, axis=1))
