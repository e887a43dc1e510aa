"""The digital twin: contracts, pure physics, the simulated house, runner, run log, KPIs, safety."""
