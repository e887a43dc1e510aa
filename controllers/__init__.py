"""Controllers of the house: rule-based, MPC (Pyomo), learned forecasts, RL policies, estimation."""
