"""A plan: what one solve decided for every block of the horizon, and what it had to give up.

Arrays are per block (``n_blocks`` rows) unless said otherwise; powers are block means [kW].
``relaxed`` names every soft constraint the plan relaxed and by how much (empty when none):

- ``comfort_margin_kh`` / ``comfort_band_kh`` / ``comfort_above_kh``: Σ over rooms and block ends
  of how far the plan lets a room fall below lower + margin / below the comfort band / rise above
  it (which heating cannot always prevent), × block length [K·h];
- ``ev_shortfall_kwh``: energy the car will lack at departure (or at the horizon's end);
- ``import_over_limit_kwh``: import above the connection limit;
- ``curtailed_kwh``: PV the plan has to curtail (export above its limit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from controllers.mpc.blocking import BlockGrid
from twin.contracts import PlanStatus

#: The soft constraints a plan may relax (see the module docstring).
RELAXATIONS = ("comfort_margin_kh", "comfort_band_kh", "comfort_above_kh", "ev_shortfall_kwh",
               "import_over_limit_kwh", "curtailed_kwh")
#: Relaxations smaller than this are not reported.
RELAXATION_EPS = 1e-4


@dataclass(frozen=True, eq=False)
class Plan:
    """One solve's decisions over the horizon, starting at ``start``."""

    start: datetime
    grid: BlockGrid
    status: PlanStatus  # OPTIMAL or FEASIBLE
    objective: float
    bound: float | None
    method: str  # how it was found: "lp" (integral relaxation), "lp+dispatch", "milp"
    solve_time_s: float
    duty: np.ndarray  # (blocks, rooms) heater duty cycle 0..1
    battery_kw: np.ndarray  # + charge / − discharge
    battery_kwh: np.ndarray  # (blocks + 1,) energy stored at block edges
    ev_kw: np.ndarray  # charger power while the car is there (0 or in [min, max])
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    temps_c: np.ndarray  # (blocks + 1, nodes) predicted node temperatures at block edges
    energy_cost: float  # at the forecast prices [currency]
    relaxed: Mapping[str, float] = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        if self.bound is None:
            return None
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-9)

    def age_s(self, when: datetime) -> float:
        return when.timestamp() - self.start.timestamp()

    def covers(self, when: datetime) -> bool:
        """Whether ``when`` lies within the plan's horizon."""
        return 0.0 <= self.age_s(when) < self.grid.horizon_s

    def block_at(self, when: datetime) -> int:
        """The block in force at ``when`` (clipped to the horizon)."""
        return self.grid.block_at(self.age_s(when))

    def heating_kw(self, heater_kw: np.ndarray) -> np.ndarray:
        """Planned heating power per block [kW]."""
        heating_kw: np.ndarray = self.duty @ heater_kw
        return heating_kw

    def summary(self) -> dict[str, float | str | None]:
        """One flat row for the plan log."""
        row: dict[str, float | str | None] = {
            "status": self.status.value, "method": self.method, "objective": self.objective, "bound": self.bound,
            "gap": self.gap, "solve_time_s": self.solve_time_s, "energy_cost": self.energy_cost,
            "battery_kw_now": float(self.battery_kw[0]), "ev_kw_now": float(self.ev_kw[0]),
            "grid_import_kw_now": float(self.grid_import_kw[0]),
        }
        for key in RELAXATIONS:
            row[f"relaxed_{key}"] = float(self.relaxed.get(key, 0.0))
        return row


def relaxations(**amounts: float) -> dict[str, float]:
    """The non-negligible ones of ``amounts``."""
    return {k: float(v) for k, v in amounts.items() if v > RELAXATION_EPS}
