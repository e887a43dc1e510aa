"""Settings of the stochastic MPC: the scenario tree, its reduction and the risk measure.

One frozen dataclass, checked on construction like :class:`~controllers.mpc.settings.MpcSettings`
(which still holds everything the deterministic MPC has: blocks, solver, penalties, …).
Spreads are the distance of the P10 and P90 trajectories from the P50 one once the lead time is
long (``spread_ramp_h`` and more; shorter leads scale by √(lead / ramp)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from twin.errors import ConfigError


def _ranged(lo: float, hi: float, unit: str = "", *, default: Any) -> Any:
    return field(default=default, metadata={"range": (lo, hi), "unit": unit})


@dataclass(frozen=True, slots=True)
class StochasticSettings:
    """How the stochastic MPC builds its scenarios and weighs risk.

    The full tree has 3 branches (P10, P50, P90, weighted 0.3 / 0.4 / 0.3 by Swanson's rule) for
    each of PV, base load and price: 27 scenarios, reduced by fast-forward selection to
    ``scenarios``. Outdoor temperature moves with the PV branch (a clear winter sky is a cold one).
    The objective is expected cost + ``risk_weight`` · CVaR at ``cvar_alpha`` of the scenario cost.
    """

    #: 9: re-plan p95 0.9 s on the reference house (2.7 × the deterministic MPC's; 1.1 s over a
    #: winter day), see docs/results/2026-12-05-stochastic-mpc.md §1 (2026-12-06).
    scenarios: int = _ranged(1, 27, default=9)
    cvar_alpha: float = _ranged(0.0, 0.99, default=0.9)
    risk_weight: float = _ranged(0.0, 100.0, default=0.3)
    pv_spread: float = _ranged(0.0, 1.0, "share of P50", default=0.4)
    load_spread: float = _ranged(0.0, 1.0, "share of P50", default=0.1)
    price_spread: float = _ranged(0.0, 1.0, "share of P50", default=0.2)
    temp_spread_c: float = _ranged(0.0, 10.0, "K", default=1.5)
    spread_ramp_h: float = _ranged(0.1, 48.0, "h", default=6.0)
    #: The first solve after a reset starts the solver cold (no basis to start from): it may take this
    #: long; later re-plans have ``MpcSettings.time_limit_s``.
    cold_time_limit_s: float = _ranged(0.1, 3600.0, "s", default=120.0)
    #: Day-ahead prices for the next day are published at this local hour; before it only today's are known.
    price_publication_hour: float = _ranged(0.0, 24.0, "h", default=13.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            lo, hi = f.metadata["range"]
            value = getattr(self, f.name)
            unit = f" {f.metadata['unit']}" if f.metadata.get("unit") else ""
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{f.name} must be a number, got {value!r}", f.name)
            if not math.isfinite(value) or not lo <= value <= hi:
                raise ConfigError(f"{f.name} = {value!r} is outside the allowed range [{lo}, {hi}]{unit}", f.name)
        if not isinstance(self.scenarios, int):
            raise ConfigError(f"scenarios must be a whole number, got {self.scenarios!r}", "scenarios")

    @classmethod
    def names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))

    def with_options(self, options: Mapping[str, str]) -> StochasticSettings:
        """A copy with fields set from text (``{"scenarios": "3", "risk_weight": "0"}``)."""
        changes: dict[str, Any] = {}
        for key, text in options.items():
            if key not in self.names():
                raise ConfigError(f"unknown stochastic MPC option {key!r}; options: {', '.join(sorted(self.names()))}",
                                  key)
            kind = int if key == "scenarios" else float
            try:
                changes[key] = kind(text)
            except ValueError:
                raise ConfigError(f"stochastic MPC option {key} = {text!r} is not a {kind.__name__}", key) from None
        return replace(self, **changes)
