"""Model-predictive control: a Pyomo MILP on a rolling, move-blocked horizon, and its oracle.

Modules, in the order a decision uses them: ``settings`` (MpcSettings), ``estimator`` (the
initial state), ``inputs`` (forecasts onto the block grid, ``blocking``), ``model`` (the
MILP, built once; ``rc_model`` its thermal part), ``solve`` (strategy within the time limit;
``solvers`` the back-ends), ``plan`` (the result), ``executor`` and ``dispatch`` (the plan
as device commands), ``controller`` (MpcController: re-planning and the fallback chain).
"""

from controllers.mpc.controller import MpcController
from controllers.mpc.settings import MpcSettings

__all__ = ["MpcController", "MpcSettings"]
