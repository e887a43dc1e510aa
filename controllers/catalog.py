"""Controllers this package registers (entry point ``pems.controllers``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from controllers.rule_based import RuleBasedController
from twin.contracts import Controller
from twin.registry import ControllerContext, ControllerEntry

if TYPE_CHECKING:
    from controllers.mpc.stochastic import StochasticMpcController


def _mpc(ctx: ControllerContext, perfect_foresight: bool = False) -> Controller:
    from controllers.mpc import MpcController, MpcSettings  # Pyomo is imported only when an MPC is made
    from controllers.mpc.stochastic.settings import StochasticSettings

    # The stochastic MPC's own options (scenarios=…, risk_weight=…) are not the MPC's: one bench
    # command hands the same options to every controller.
    stochastic = StochasticSettings.names()
    settings = MpcSettings().with_options({k: v for k, v in ctx.options.items() if k not in stochastic})
    return MpcController(ctx.house, settings, decision_interval_s=ctx.decision_interval_s,
                         perfect_foresight=perfect_foresight)


def _mpc_stochastic(ctx: ControllerContext) -> StochasticMpcController:
    from controllers.mpc import MpcSettings
    from controllers.mpc.stochastic import StochasticMpcController, StochasticSettings

    options = dict(ctx.options)
    names = StochasticSettings.names()
    stochastic = StochasticSettings().with_options({k: v for k, v in options.items() if k in names})
    settings = MpcSettings().with_options({k: v for k, v in options.items() if k not in names})
    return StochasticMpcController(ctx.house, settings, stochastic, decision_interval_s=ctx.decision_interval_s)


def _mpc_learned(ctx: ControllerContext) -> Controller:
    from controllers.mpc_learned import make_mpc_learned  # the forecasters (XGBoost) only when asked for

    return make_mpc_learned(ctx)


def catalog() -> list[ControllerEntry]:
    """Controllers this package registers: rule-based, mpc, mpc-oracle, mpc-learned."""
    return [
        ControllerEntry(
            name="rule-based",
            description="Today's house: room thermostats with hysteresis, battery self-consumption, EV at full power",
            make=lambda ctx: RuleBasedController(ctx.house),
        ),
        ControllerEntry(
            name="mpc",
            description="Model-predictive control: Pyomo MILP over 48 h (move-blocked), re-planned every 15 min",
            make=_mpc,
            uses_forecasts=True,
        ),
        ControllerEntry(
            name="mpc-learned",
            description="The MPC planning with PV, load and price forecasts learned from the data before the run",
            make=_mpc_learned,
            needs_history=True,
            uses_forecasts=True,
        ),
        ControllerEntry(
            name="mpc-stochastic",
            description="Two-stage stochastic MPC: expected cost + CVaR over a reduced 27-scenario tree "
                        "(PV, load, price P10/P50/P90)",
            make=_mpc_stochastic,
            uses_forecasts=True,
        ),
        ControllerEntry(
            name="oracle",
            description="The MPC shown the actual future instead of forecasts: the bound on what planning can save",
            make=lambda ctx: _mpc(ctx, perfect_foresight=True),
            needs_scenario=True,
            uses_forecasts=True,
        ),
    ]


