"""Stochastic MPC: a two-stage program over scenarios from the forecasters' quantiles.

``settings`` (StochasticSettings), ``scenarios`` (the tree from quantiles and its fast-forward
reduction), ``model`` (the two-stage program over the deterministic MPC's model), ``optimizer``
(one solve), ``controller`` (StochasticMpcController).
"""

from controllers.mpc.stochastic.controller import StochasticMpcController
from controllers.mpc.stochastic.settings import StochasticSettings

__all__ = ["StochasticMpcController", "StochasticSettings"]
