"""Linear RC thermal network of the rooms, integrated exactly for piecewise-constant inputs.

Nodes: the air node of every room (indices ``0..n_rooms-1``, in room order), then the mass
node of every 2-node room. With capacitances ``C`` [J/K], a conductance matrix ``K`` [W/K]
(Laplacian of the couplings plus each node's conductance to outdoors on the diagonal) and
``g_out`` [W/K] the conductance of each node to outdoors::

    C dT/dt = -K T + g_out T_out + q        (q: heat injected into each node [W])

so ``dT/dt = A T + b_out T_out + C⁻¹ q`` with ``A = -C⁻¹ K``. For inputs held constant over
``dt``, the exact solution is ``T(dt) = Φ T(0) + γ_out T_out + Γ q`` where ``Φ = e^{A dt}`` and
``[γ_out Γ] = ∫₀^dt e^{A s} ds [b_out C⁻¹]``.

:func:`discretize` computes these by one matrix exponential of the augmented matrix
``[[A, B], [0, 0]] dt`` (Van Loan). The twin uses the same exponential in modal form
(:class:`ModalThermal`): ``K`` is symmetric and, with every room losing heat to outdoors,
positive definite, so ``S = C^-½ K C^-½ = U Λ Uᵀ`` with ``Λ > 0`` and
``e^{A dt} = C^-½ U e^{-Λ dt} Uᵀ C^½``. In modal coordinates ``z = Uᵀ C^½ T`` every mode
decays on its own, ``z(dt) = e^{-λ dt} z + (1 - e^{-λ dt}) / λ · Uᵀ C^-½ f`` (``f`` the heat
flows into the nodes, W): the matrix exponential for *any* interval length costs one
element-wise exponential, cached per length.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from twin.config import Coupling, RoomConfig


@dataclass(frozen=True, slots=True)
class ThermalMatrices:
    """Continuous-time model ``dT/dt = A T + b_out T_out + c_inv q``."""

    a: np.ndarray  # (n, n) [1/s]
    b_out: np.ndarray  # (n,) [1/s]
    c_inv: np.ndarray  # (n,) [K/J]
    n_rooms: int
    mass_node: np.ndarray  # (n_rooms,) index of each room's mass node, or -1

    @property
    def n_nodes(self) -> int:
        n: int = self.a.shape[0]
        return n


def build_matrices(rooms: Sequence[RoomConfig], couplings: Sequence[Coupling],
                   windows_open: bool = False) -> ThermalMatrices:
    """Assemble the RC network of ``rooms`` and their ``couplings`` (pure function).

    With ``windows_open`` each room's window ventilation adds to its air node's conductance
    to outdoors.
    """
    n_rooms = len(rooms)
    mass_node = np.full(n_rooms, -1, dtype=np.intp)
    n = n_rooms
    for i, room in enumerate(rooms):
        if room.has_mass:
            mass_node[i] = n
            n += 1
    capacitance = np.empty(n)
    conductance = np.zeros((n, n))
    g_out = np.zeros(n)

    def link(i: int, j: int, g: float) -> None:
        conductance[i, i] += g
        conductance[j, j] += g
        conductance[i, j] -= g
        conductance[j, i] -= g

    index = {r.name: i for i, r in enumerate(rooms)}
    for i, room in enumerate(rooms):
        capacitance[i] = room.air_capacitance_j_per_k
        g_out[i] = room.outdoor_conductance_w_per_k + (room.window_ventilation_w_per_k if windows_open else 0.0)
        if room.mass_capacitance_j_per_k is not None and room.air_mass_conductance_w_per_k is not None:
            m = mass_node[i]  # has_mass: both given
            capacitance[m] = room.mass_capacitance_j_per_k
            g_out[m] = room.mass_outdoor_conductance_w_per_k
            link(i, m, room.air_mass_conductance_w_per_k)
    for c in couplings:
        link(index[c.rooms[0]], index[c.rooms[1]], c.conductance_w_per_k)
    conductance[np.diag_indices(n)] += g_out
    c_inv = 1.0 / capacitance
    return ThermalMatrices(a=-c_inv[:, None] * conductance, b_out=c_inv * g_out, c_inv=c_inv,
                           n_rooms=n_rooms, mass_node=mass_node)


def discretize(m: ThermalMatrices, dt_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Φ, γ_out, Γ)`` for a step of ``dt_s`` seconds with constant inputs.

    ``T(dt) = Φ @ T + γ_out * T_out + Γ @ q``, with ``q`` in W per node.
    """
    n = m.n_nodes
    aug = np.zeros((2 * n + 1, 2 * n + 1))
    aug[:n, :n] = m.a
    aug[:n, n] = m.b_out
    aug[:n, n + 1:] = np.diag(m.c_inv)
    expm = scipy.linalg.expm(aug * dt_s)
    return expm[:n, :n], expm[:n, n].copy(), expm[:n, n + 1:].copy()


def step(temps_c: np.ndarray, outdoor_temp_c: float, heat_w: np.ndarray, m: ThermalMatrices,
         dt_s: float) -> np.ndarray:
    """Node temperatures after ``dt_s`` with constant outdoor temperature and heat inputs."""
    phi, gamma_out, gamma = discretize(m, dt_s)
    temps: np.ndarray = phi @ temps_c + gamma_out * outdoor_temp_c + gamma @ heat_w
    return temps


class ModalThermal:
    """The RC network in modal coordinates: exact steps of any length at element-wise cost."""

    def __init__(self, m: ThermalMatrices, max_cached_steps: int = 512) -> None:
        self.matrices = m
        c_inv = m.c_inv
        conductance = -m.a / c_inv[:, None]
        sqrt_c_inv = np.sqrt(c_inv)
        sym = sqrt_c_inv[:, None] * conductance * sqrt_c_inv[None, :]
        lam, u = np.linalg.eigh(0.5 * (sym + sym.T))
        if m.n_nodes and lam.min() <= 0:
            raise ValueError("thermal network has a node without a heat path to outdoors")
        self.rates_per_s = lam
        self.to_temps = sqrt_c_inv[:, None] * u  # T = to_temps @ z
        self.to_modes = u.T * (1.0 / sqrt_c_inv)[None, :]  # z = to_modes @ T
        self.heat_to_modal = u.T * sqrt_c_inv[None, :]  # modal input of node heat flows [W]
        self.g_out_w_per_k = m.b_out / c_inv
        self.n_rooms = m.n_rooms
        self.to_air = np.ascontiguousarray(self.to_temps[: m.n_rooms])
        self._max = max_cached_steps
        self._cache: OrderedDict[float, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def modal_input(self, outdoor_temp_c: np.ndarray | float, heat_w: np.ndarray) -> np.ndarray:
        """Modal forcing of outdoor temperature [°C] and node heat flows [W] (last axis: nodes)."""
        flows = np.multiply.outer(outdoor_temp_c, self.g_out_w_per_k) + heat_w
        forcing: np.ndarray = flows @ self.heat_to_modal.T
        return forcing

    def factors(self, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        """``(e^{-λ dt}, (1 - e^{-λ dt}) / λ)`` for a step of ``dt_s`` seconds."""
        hit = self._cache.get(dt_s)
        if hit is not None:
            return hit
        decay = np.exp(-self.rates_per_s * dt_s)
        gain = -np.expm1(-self.rates_per_s * dt_s) / self.rates_per_s
        value = (decay, gain)
        self._cache[dt_s] = value
        if len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return value

    def step(self, modes: np.ndarray, forcing: np.ndarray, dt_s: float) -> np.ndarray:
        decay, gain = self.factors(dt_s)
        stepped: np.ndarray = decay * modes + gain * forcing
        return stepped


def modal_factors_v(rates_per_s: np.ndarray, dt_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`ModalThermal.factors` of many houses, each with its own step length (no cache).

    ``rates_per_s`` is one basis's ``(nodes,)`` rates or one row per house ``(houses, nodes)``;
    ``dt_s`` is ``(houses,)``. A zero ``dt_s`` gives ``(1, 0)``: that house stays exactly where it is.
    The same floating-point operations as :meth:`ModalThermal.factors` (negations are exact).
    """
    exponent = np.multiply(rates_per_s, dt_s[:, None])
    np.negative(exponent, out=exponent)
    decay: np.ndarray = np.exp(exponent)
    gain: np.ndarray = np.expm1(exponent)
    gain /= rates_per_s
    np.negative(gain, out=gain)
    return decay, gain


def modal_step_v(modes: np.ndarray, forcing: np.ndarray, decay: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """:meth:`ModalThermal.step` over a leading axis of houses, from :func:`modal_factors_v`."""
    stepped: np.ndarray = decay * modes + gain * forcing
    return stepped
