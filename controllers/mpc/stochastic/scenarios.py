"""Scenarios of the stochastic MPC: a tree of whole trajectories from quantiles, and its reduction.

A scenario is one :class:`~controllers.mpc.inputs.PlanInputs` — every block of the horizon — so
correlation over the horizon is built in: the PV branch P10 is a cloudy *day*, not an
independent draw per block. Each uncertain input gets three branches, P10 / P50 / P90, whose
distance from P50 grows with the lead time (√(lead / ramp), capped at the full spread); the
P50 trajectory is the issued forecast. Probabilities follow Swanson's rule (0.3 / 0.4 / 0.3),
the three-point discretisation of a distribution from its P10, P50 and P90. Prices are only
uncertain beyond the published day-ahead horizon.

:func:`fast_forward` (Heitsch & Römisch 2003) keeps the ``n`` scenarios that best represent the
tree and moves each dropped scenario's probability to its nearest kept one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from controllers.mpc.blocking import BlockGrid
from controllers.mpc.inputs import PlanInputs
from controllers.mpc.stochastic.settings import StochasticSettings

#: The branches of every uncertain input: standard-normal-free positions (−1 = P10, +1 = P90) and weights.
BRANCHES = (-1.0, 0.0, 1.0)
SWANSON = (0.3, 0.4, 0.3)


@dataclass(frozen=True, slots=True)
class ScenarioSet:
    """Scenarios (their inputs) with probabilities summing to 1; ``branches[i]`` = (pv, load, price) positions."""

    inputs: tuple[PlanInputs, ...]
    probabilities: np.ndarray
    branches: tuple[tuple[float, float, float], ...]

    def __len__(self) -> int:
        return len(self.inputs)


def lead_scale(grid: BlockGrid, ramp_h: float) -> np.ndarray:
    """How much of the full spread applies to each block: √(lead / ramp), capped at 1 (lead at the block's middle)."""
    middle_h = (grid.edges_s[:-1] + grid.edges_s[1:]) / 2 / 3600.0
    scale: np.ndarray = np.minimum(1.0, np.sqrt(middle_h / ramp_h))
    return scale


def published_until_s(start: pd.Timestamp, hour: float) -> float:
    """Seconds from ``start`` (local time) to the end of the last published day-ahead price."""
    midnight = start.normalize()
    days = 2 if start.hour + start.minute / 60.0 >= hour else 1
    end = midnight + pd.DateOffset(days=days)
    return float((end - start).total_seconds())


def scenario_inputs(base: PlanInputs, grid: BlockGrid, s: StochasticSettings, pv_cap_kw: float,
                    pv: float, load: float, price: float) -> PlanInputs:
    """``base`` (the P50 forecast) moved to branch positions ``pv``, ``load``, ``price`` (−1 P10 … +1 P90)."""
    scale = lead_scale(grid, s.spread_ramp_h)
    start = pd.Timestamp(base.start)
    unknown = grid.edges_s[:-1] >= published_until_s(start, s.price_publication_hour) - 1e-6
    price_factor = 1.0 + price * s.price_spread * scale * unknown
    return replace(
        base,
        pv_kw=np.clip(base.pv_kw * (1.0 + pv * s.pv_spread * scale), 0.0, pv_cap_kw),
        base_load_kw=np.maximum(base.base_load_kw * (1.0 + load * s.load_spread * scale), 0.0),
        import_price_per_kwh=base.import_price_per_kwh * price_factor,
        export_price_per_kwh=base.export_price_per_kwh * price_factor,
        # A clear sky (more PV) is a colder one in the heating season, an overcast one milder.
        outdoor_c=base.outdoor_c - pv * s.temp_spread_c * scale,
    )


def scenario_tree(base: PlanInputs, grid: BlockGrid, s: StochasticSettings, pv_cap_kw: float) -> ScenarioSet:
    """The full 3 × 3 × 3 tree (PV × base load × price), probabilities the products of Swanson's weights."""
    inputs, probabilities, branches = [], [], []
    for (pv, p_pv), (load, p_load), (price, p_price) in itertools.product(
            zip(BRANCHES, SWANSON, strict=True), repeat=3):
        inputs.append(scenario_inputs(base, grid, s, pv_cap_kw, pv, load, price))
        probabilities.append(p_pv * p_load * p_price)
        branches.append((pv, load, price))
    return ScenarioSet(tuple(inputs), np.asarray(probabilities), tuple(branches))


def distances(tree: ScenarioSet, grid: BlockGrid) -> np.ndarray:
    """Pairwise distance of the scenarios.

    Per input, the block-length-weighted L1 distance of the trajectories, each input normalised by
    its largest pairwise distance (so each counts alike).
    """
    dt_h = grid.durations_h
    total = np.zeros((len(tree), len(tree)))
    for name in ("pv_kw", "base_load_kw", "import_price_per_kwh", "outdoor_c"):
        values = np.stack([getattr(x, name) for x in tree.inputs])
        d = np.abs(values[:, None, :] - values[None, :, :]) @ dt_h
        if d.max() > 0:
            total += d / d.max()
    return total


def fast_forward(tree: ScenarioSet, n: int, grid: BlockGrid) -> ScenarioSet:
    """Forward selection of ``n`` scenarios; each dropped one's probability goes to its nearest kept one."""
    if n >= len(tree):
        return tree
    p = tree.probabilities
    c = distances(tree, grid)
    left = list(range(len(tree)))
    kept: list[int] = []
    for _ in range(n):
        # z_u: the probability-weighted distance of the other remaining scenarios if u were kept.
        z = [sum(p[k] * c[k, u] for k in left if k != u) for u in left]
        chosen = left[int(np.argmin(z))]
        kept.append(chosen)
        left.remove(chosen)
        c = np.minimum(c, c[:, [chosen]])  # distance to the nearest kept scenario so far
    full = distances(tree, grid)
    probabilities = np.zeros(len(kept))
    for j in range(len(tree)):
        probabilities[int(np.argmin([full[j, k] for k in kept]))] += p[j]
    return ScenarioSet(tuple(tree.inputs[k] for k in kept), probabilities, tuple(tree.branches[k] for k in kept))
