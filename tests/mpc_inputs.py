"""Hand-made inputs for the MPC's optimisation (no twin, no forecasts): flat unless overridden."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from controllers.mpc.inputs import PlanInputs
from controllers.mpc.solve import Optimizer

START = datetime(2024, 1, 15, tzinfo=ZoneInfo("Europe/Prague"))


def flat_inputs(opt: Optimizer, **overrides) -> PlanInputs:
    """A winter night: 0 °C outside, no sun, 0.5 kW base load, flat prices, rooms at 21 °C in [20, 24]."""
    k, n, r = opt.grid.n_blocks, opt.rc.n_nodes, opt.rc.n_rooms
    b = opt.house.battery
    inputs = PlanInputs(
        start=START, outdoor_c=np.zeros(k), pv_kw=np.zeros(k), base_load_kw=np.full(k, 0.5),
        import_price_per_kwh=np.full(k, 0.25), export_price_per_kwh=np.full(k, 0.05),
        node_gains_w=np.zeros((k, n)), comfort_lower_c=np.full((k, r), 20.0), comfort_upper_c=np.full((k, r), 24.0),
        initial_temps_c=np.full(n, 21.0), battery_kwh=b.soc_min * b.capacity_kwh if b else 0.0,
        ev_fraction=np.zeros(k), ev_need_kwh=0.0, terminal_price_per_kwh=0.25)
    return replace(inputs, **overrides)


def block_hours(opt: Optimizer) -> np.ndarray:
    """Start of each block in hours from the plan's start."""
    return opt.grid.edges_s[:-1] / 3600.0
