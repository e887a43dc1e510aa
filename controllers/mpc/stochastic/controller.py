"""``StochasticMpcController``: the MPC re-planning with the two-stage stochastic program.

Everything but the solve is the deterministic :class:`~controllers.mpc.controller.MpcController`
(state estimate, execution of the plan's current block, fallback chain, plan log); the solve is
:class:`~controllers.mpc.stochastic.optimizer.StochasticOptimizer`.
"""

from __future__ import annotations

from controllers.mpc.controller import MpcController
from controllers.mpc.estimator import StateEstimator
from controllers.mpc.settings import MpcSettings
from controllers.mpc.stochastic.optimizer import StochasticOptimizer
from controllers.mpc.stochastic.settings import StochasticSettings
from twin.config import HouseConfig


class StochasticMpcController(MpcController):
    """Stochastic MPC: expected cost + λ·CVaR over a reduced scenario tree (see the package docs)."""

    def __init__(self, house: HouseConfig, settings: MpcSettings | None = None,
                 stochastic: StochasticSettings | None = None, *, decision_interval_s: float = 300.0,
                 estimator: StateEstimator | None = None) -> None:
        # Set before the base class builds (and prepares) the optimizer through _make_optimizer.
        self.stochastic = stochastic or StochasticSettings()
        super().__init__(house, settings, decision_interval_s=decision_interval_s, estimator=estimator)
        self.optimizer: StochasticOptimizer

    def _make_optimizer(self) -> StochasticOptimizer:
        return StochasticOptimizer(self.house, self.settings, self.stochastic)

    def __repr__(self) -> str:
        return (f"StochasticMpcController(solver={self.settings.solver!r}, scenarios={self.stochastic.scenarios}, "
                f"risk_weight={self.stochastic.risk_weight})")
