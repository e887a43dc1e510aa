"""The MPC's own thermal model: the house's RC network, discretised exactly per block length.

Built from the house configuration (``twin.thermal``): every room's air node and, for 2-node
rooms, its mass node, with the couplings between rooms. The twin knows more than this model
(occupants airing the house, blinds), so prediction and reality differ as they would in a
real house. Heaters and internal gains heat the air node; solar gains through windows heat
the mass node (the air node of a 1-node room), as in the twin.

For a block of length ``dt`` with constant inputs, ``T⁺ = Φ T + γ T_out + Γ q`` exactly
(``twin.thermal.discretize``). The MILP uses a sparsified copy: coefficients below a
tolerance are dropped, and a dropped ``Φ`` entry is lumped onto the diagonal (it assumes the
far node is at this node's temperature, an error of tolerance × their difference), so a
house at a uniform temperature stays exactly at it; a heater's dropped effect on far nodes is
added to its own room, so no heat goes missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.config import HouseConfig
from twin.thermal import build_matrices, discretize

J_PER_KWH = 3.6e6


@dataclass(frozen=True, slots=True)
class StepMatrices:
    """``T⁺ = phi @ T + out * T_out + heat @ q_w``; ``duty`` = heat response per room at full duty."""

    phi: np.ndarray  # (nodes, nodes) [K/K]
    out: np.ndarray  # (nodes,) [K/K]
    heat: np.ndarray  # (nodes, nodes) [K/W]
    duty: np.ndarray  # (nodes, rooms) [K per full duty cycle of each room's heater]


class RcModel:
    """RC network of ``house`` as the MPC sees it."""

    def __init__(self, house: HouseConfig) -> None:
        self.matrices = build_matrices(house.rooms, house.couplings)
        self.n_rooms = len(house.rooms)
        self.n_nodes = self.matrices.n_nodes
        self.mass_node = self.matrices.mass_node
        self.heater_kw = np.array([r.heater_power_kw for r in house.rooms], dtype=float)
        self.capacitance_kwh_per_k = 1.0 / self.matrices.c_inv / J_PER_KWH
        self.internal_shares = np.asarray(house.internal_gain_shares(), dtype=float)
        self.solar_node = np.where(self.mass_node >= 0, self.mass_node, np.arange(self.n_rooms))
        self._exact: dict[float, StepMatrices] = {}

    def step(self, length_s: float) -> StepMatrices:
        """Exact matrices for a step of ``length_s`` seconds (cached)."""
        hit = self._exact.get(length_s)
        if hit is None:
            phi, out, heat = discretize(self.matrices, length_s)
            duty = heat[:, : self.n_rooms] * (self.heater_kw * 1000.0)[None, :]
            hit = StepMatrices(phi, out, heat, duty)
            self._exact[length_s] = hit
        return hit

    def sparse_step(self, length_s: float, tol: float) -> StepMatrices:
        """:meth:`step` with coefficients below ``tol`` dropped (``Φ``'s lumped onto its diagonal)."""
        exact = self.step(length_s)
        if tol <= 0.0:
            return exact
        phi = exact.phi.copy()
        small = np.abs(phi) < tol
        np.fill_diagonal(small, False)
        phi[np.diag_indices_from(phi)] += np.where(small, phi, 0.0).sum(axis=1)
        phi[small] = 0.0
        duty = exact.duty.copy()
        dropped = np.abs(duty) < tol
        dropped[np.arange(self.n_rooms), np.arange(self.n_rooms)] = False
        # A heater's dropped far-away effect is kept in its own room, so no heat goes missing.
        duty[np.arange(self.n_rooms), np.arange(self.n_rooms)] += np.where(dropped, duty, 0.0).sum(axis=0)
        duty[dropped] = 0.0
        return StepMatrices(phi, exact.out, exact.heat, duty)

    def node_gains_w(self, solar_w: np.ndarray, base_load_kw: np.ndarray) -> np.ndarray:
        """Heat into every node [W], shape (steps, nodes).

        From window solar gains (steps, rooms) [W] and the base load [kW] (dissipated in the
        rooms by their internal-gain shares).
        """
        steps = solar_w.shape[0]
        gains = np.zeros((steps, self.n_nodes))
        gains[:, : self.n_rooms] += np.asarray(base_load_kw, dtype=float)[:, None] * 1000.0 * self.internal_shares
        np.add.at(gains.T, self.solar_node, solar_w.T)
        return gains

    def advance(self, temps_c: np.ndarray, length_s: float, outdoor_c: float, heat_w: np.ndarray) -> np.ndarray:
        """Exact node temperatures after ``length_s`` with constant inputs (heat per node [W])."""
        m = self.step(length_s)
        temps: np.ndarray = m.phi @ temps_c + m.out * outdoor_c + m.heat @ heat_w
        return temps

    def heater_w(self, duty: np.ndarray) -> np.ndarray:
        """Heat per node [W] of each room's heater running at ``duty`` (0..1)."""
        q = np.zeros(self.n_nodes)
        q[: self.n_rooms] = np.asarray(duty, dtype=float) * self.heater_kw * 1000.0
        return q
