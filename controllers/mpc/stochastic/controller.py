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
        super().__init__(house, settings, decision_interval_s=decision_interval_s, estimator=estimator)
        self.stochastic = stochastic or StochasticSettings()
        self.optimizer: StochasticOptimizer = StochasticOptimizer(house, self.settings, self.stochastic)

    def __repr__(self) -> str:
        return (f"StochasticMpcController(solver={self.settings.solver!r}, scenarios={self.stochastic.scenarios}, "
                f"risk_weight={self.stochastic.risk_weight})")
