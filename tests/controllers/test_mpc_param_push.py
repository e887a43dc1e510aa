"""The batched parameter push (``controllers.mpc.param_push``) gives HiGHS exactly what APPSI's own push does."""

from __future__ import annotations

import numpy as np
from builders import small_house
from mpc_inputs import block_hours, flat_inputs

from controllers.mpc.settings import MpcSettings
from controllers.mpc.solve import Optimizer

SHORT = ((900.0, 4 * 3600.0), (3600.0, 20 * 3600.0))


def sequence(opt: Optimizer) -> list:
    """Re-plans that move every kind of parameter: prices, PV, comfort, the car coming and going."""
    hours = block_hours(opt)
    k = opt.grid.n_blocks
    out = []
    for shift in range(4):
        prices = 0.2 + 0.15 * np.sin((hours + 3 * shift) / 3.0)
        present = ((hours + shift * 5) % 24 > 17).astype(float)  # the car is away, then back
        lower = np.where((hours + shift) % 24 < 6, 18.0, 20.5)
        out.append(flat_inputs(
            opt, import_price_per_kwh=prices, export_price_per_kwh=prices - 0.15 - 0.1 * (shift == 2),
            pv_kw=np.where((hours > 2 + shift) & (hours < 6 + shift), 3.0, 0.0),
            ev_fraction=present * (1 - 0.3 * shift / 4),
            ev_need_kwh=4.0 * shift, outdoor_c=np.full(k, -3.0 + shift),
            comfort_lower_c=np.repeat(lower[:, None], opt.rc.n_rooms, axis=1),
            battery_kwh=2.0 + shift, terminal_price_per_kwh=0.1 + 0.05 * shift))
    return out


def solve_all(batch: bool, strategy: str) -> list[float]:
    house = small_house(n_rooms=2, two_node=True)
    opt = Optimizer(house, MpcSettings(strategy=strategy, blocks=SHORT), batch_params=batch)
    opt.prepare()
    objectives = []
    for inputs in sequence(opt):
        plan, report = opt.solve(inputs)
        assert plan is not None, report.message
        objectives.append(plan.objective)
    return objectives


def test_batched_push_matches_appsi_push_on_every_strategy():
    for strategy in ("lp-first", "milp"):
        batched, reference = solve_all(True, strategy), solve_all(False, strategy)
        assert len(set(np.round(reference, 6))) > 1, "the sequence must change the problem"
        np.testing.assert_allclose(batched, reference, rtol=1e-9, atol=1e-9)


def test_push_covers_the_parameters_and_leaves_few_to_appsi():
    opt = Optimizer(small_house(n_rooms=2, two_node=True), MpcSettings(strategy="milp", blocks=SHORT))
    opt.prepare()
    push = opt.backend("milp")._push
    assert push is not None and push.handled > 10 * opt.grid.n_blocks
    assert push.fallbacks <= 2  # the objective's constant (a product of two parameters)
