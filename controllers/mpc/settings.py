"""Settings of the MPC: one frozen dataclass, checked on construction.

Every numeric field declares its allowed range and unit in its metadata (``twin.params``), so
an ``MpcSettings`` that exists is a valid one; a bad value raises
:class:`twin.errors.ConfigError` naming the field, the value and the range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from twin.errors import ConfigError
from twin.params import bounded, check_bounds

#: Solvers the MPC can use, all through Pyomo: HiGHS (highspy, persistent), GLPK (glpsol), CBC (cbc).
SOLVERS = ("highs", "glpk", "cbc")

#: How a plan is solved (see ``controllers.mpc.solve``).
STRATEGIES = ("lp-first", "milp")
ESTIMATORS = ("observer", "kalman", "air")

#: Default move blocking: 15-min blocks for the first 6 h, 1 h blocks to 24 h, 3 h blocks to 48 h.
DEFAULT_BLOCKS = ((900.0, 6 * 3600.0), (3600.0, 24 * 3600.0), (10800.0, 48 * 3600.0))


@dataclass(frozen=True, slots=True)
class MpcSettings:
    """How the MPC plans, solves and executes.

    ``blocks`` is the move-blocking grid: ``(block_length_s, until_s)`` segments, each filling
    the horizon from the previous segment's end up to ``until_s`` with blocks of
    ``block_length_s``; the last ``until_s`` is the horizon. Penalties are in the currency of
    the prices (EUR by default).
    """

    blocks: tuple[tuple[float, float], ...] = DEFAULT_BLOCKS
    replan_interval_s: float = bounded(60.0, 86400.0, "s", default=900.0)
    solver: str = "highs"
    strategy: str = "lp-first"
    mip_gap: float = bounded(0.0, 0.5, default=0.01)
    #: A plan within this of the best bound counts as optimal too (plans of a few cents would
    #: otherwise chase 1 % of nothing) [currency].
    mip_abs_gap: float = bounded(0.0, 100.0, "EUR", default=0.05)
    time_limit_s: float = bounded(0.1, 3600.0, "s", default=10.0)
    threads: int = bounded(1, 64, default=1)
    warm_start: bool = True
    #: Soft comfort: the plan aims at [lower + margin, upper]; the margin is cheap to use, the band is not.
    comfort_margin_c: float = bounded(0.0, 3.0, "K", default=0.3)
    comfort_margin_penalty_per_kh: float = bounded(0.0, 1000.0, "EUR/(K·h)", default=1.0)
    comfort_penalty_per_kh: float = bounded(0.0, 10000.0, "EUR/(K·h)", default=10.0)
    ev_shortfall_penalty_per_kwh: float = bounded(0.0, 1000.0, "EUR/kWh", default=2.0)
    import_limit_penalty_per_kwh: float = bounded(0.0, 10000.0, "EUR/kWh", default=10.0)
    curtailment_penalty_per_kwh: float = bounded(0.0, 1000.0, "EUR/kWh", default=1.0)
    peak_import_price_per_kw: float = bounded(0.0, 100.0, "EUR/kW", default=0.0)
    #: Stored energy left at the horizon's end is worth the horizon's mean import price × these weights.
    battery_terminal_weight: float = bounded(0.0, 2.0, default=1.0)
    thermal_terminal_weight: float = bounded(0.0, 2.0, default=0.5)
    #: Coefficients of the discretised RC model below this are dropped (|ΔT| in K per K or per full duty).
    model_coefficient_tol: float = bounded(0.0, 0.01, default=1e-4)
    #: Execution keeps the import the commands cause this far under the connection limit [kW].
    import_headroom_kw: float = bounded(0.0, 100.0, "kW", default=0.2)
    #: Executor: relay lease, and how far planned energy may lead or lag delivered energy (in 5-min slots).
    lease_s: float = bounded(60.0, 86400.0, "s", default=900.0)
    relay_hysteresis_slots: float = bounded(0.1, 10.0, default=1.0)
    #: Executor: a room closer than this to its lower bound heats whatever the plan says.
    comfort_guard_c: float = bounded(-5.0, 5.0, "K", default=0.1)
    #: ... judged against the highest lower bound of the coming ``guard_lookahead_s`` (0: the current one).
    guard_lookahead_s: float = bounded(0.0, 7200.0, "s", default=900.0)
    #: A plan older than this is not executed after a failed solve (the rule-based fallback takes over).
    last_plan_max_age_s: float = bounded(0.0, 14 * 86400.0, "s", default=48 * 3600.0)
    #: Mass temperatures are not measured: correct their prediction by this share of the air's error.
    observer_gain: float = bounded(0.0, 1.0, default=0.5)
    #: Where each solve starts: "observer" (the RC model run alongside, corrected by the air sensors),
    #: "kalman" (the filterpy Kalman filter over every node, ``controllers.estimation``), "air" (mass at air).
    estimator: str = "observer"
    #: Measured values are rounded to this many decimals (°C, kW, kWh, SOC) before planning. Far finer
    #: than any sensor, it makes the plan a function of what can be measured: a degenerate LP picks
    #: its vertex on last-bit differences, and the same house integrated in other time steps (the
    #: emulator's 60-s pieces against the simulation's 300-s intervals) differs in those bits.
    measurement_decimals: int = bounded(0, 12, default=6)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.solver not in SOLVERS:
            raise ConfigError(f"solver = {self.solver!r} is not one of {', '.join(SOLVERS)}", "solver")
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"estimator = {self.estimator!r} is not one of {', '.join(ESTIMATORS)}", "estimator")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy = {self.strategy!r} is not one of {', '.join(STRATEGIES)}", "strategy")
        _check_blocks(self.blocks)

    @property
    def horizon_s(self) -> float:
        return float(self.blocks[-1][1])

    def with_options(self, options: Mapping[str, str]) -> MpcSettings:
        """A copy with fields set from text: ``{"solver": "glpk", "time_limit_s": "5"}``.

        ``blocks`` as ``"900:21600,3600:86400"`` (``block_length_s:until_s`` segments).
        """
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, text in options.items():
            if key not in known:
                raise ConfigError(f"unknown MPC option {key!r}; options: {', '.join(known)}", key)
            current = getattr(self, key)
            try:
                if key == "blocks":
                    changes[key] = tuple(tuple(float(x) for x in part.split(":", 1)) for part in text.split(","))
                elif isinstance(current, bool):
                    if text.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(text)
                    changes[key] = text.lower() in ("true", "1")
                elif isinstance(current, int):
                    changes[key] = int(text)
                elif isinstance(current, float):
                    changes[key] = float(text)
                else:
                    changes[key] = str(text)
            except ValueError:
                expected = "list of block_length_s:until_s" if key == "blocks" else type(current).__name__
                raise ConfigError(f"MPC option {key} = {text!r} is not a {expected}", key) from None
        return replace(self, **changes)


def _check_blocks(blocks: Any) -> None:
    if not isinstance(blocks, tuple) or not blocks:
        raise ConfigError(f"blocks = {blocks!r} must be a non-empty tuple of (block_length_s, until_s)", "blocks")
    previous_end = 0.0
    for i, segment in enumerate(blocks):
        if not isinstance(segment, tuple) or len(segment) != 2:
            raise ConfigError(f"blocks[{i}] = {segment!r} must be (block_length_s, until_s)", "blocks")
        length, until = segment
        if not (isinstance(length, int | float) and 60.0 <= length <= 86400.0):
            raise ConfigError(f"blocks[{i}] block length {length!r} s is outside [60, 86400] s", "blocks")
        if not (isinstance(until, int | float) and until > previous_end):
            raise ConfigError(f"blocks[{i}] ends at {until!r} s, not after the previous segment's end "
                              f"{previous_end} s", "blocks")
        span = until - previous_end
        if abs(span / length - round(span / length)) > 1e-9:
            raise ConfigError(f"blocks[{i}]: {span} s from {previous_end} s to {until} s is not a whole number "
                              f"of {length} s blocks", "blocks")
        previous_end = until
    if previous_end > 14 * 86400.0:
        raise ConfigError(f"blocks: horizon {previous_end} s is longer than 14 days", "blocks")
