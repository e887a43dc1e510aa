"""Move blocking: the grid's blocks and exact averages of piecewise-constant data over them."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.mpc.blocking import BlockGrid, block_means, values_at


def brute_force_means(values: np.ndarray, offset_s: float, step_s: float, edges: np.ndarray) -> np.ndarray:
    """Average by sampling every second (the definition, slowly)."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        t = offset_s + np.arange(lo, hi) + 0.5
        index = np.minimum((t // step_s).astype(int), len(values) - 1)
        out.append(values[index].mean())
    return np.array(out)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(-50, 50), min_size=2, max_size=12),
       offset=st.integers(0, 899), segments=st.sampled_from([((900.0, 3600.0),), ((300.0, 1800.0), (1800.0, 7200.0))]))
def test_block_means_match_the_definition(values, offset, segments):
    grid = BlockGrid.from_segments(segments)
    data = np.array(values)
    got = block_means(data, float(offset), 900.0, grid.edges_s)
    expected = brute_force_means(data, float(offset), 900.0, grid.edges_s)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_block_means_keep_trailing_axes_and_hold_the_last_value():
    data = np.array([[1.0, 10.0], [3.0, 30.0]])
    got = block_means(data, 0.0, 900.0, np.array([0.0, 1800.0, 3600.0]))
    np.testing.assert_allclose(got, [[2.0, 20.0], [3.0, 30.0]])


def test_values_at_boundaries_see_both_neighbours():
    data = np.array([10.0, 20.0, 30.0])
    before, after = values_at(data, 0.0, 900.0, np.array([900.0, 1350.0]))
    assert before.tolist() == [10.0, 20.0]  # at 900 s the step that ended and ...
    assert after.tolist() == [20.0, 20.0]  # ... the one that starts


def test_block_at():
    grid = BlockGrid.from_segments(((900.0, 3600.0), (3600.0, 7200.0)))
    assert [grid.block_at(t) for t in (0.0, 899.0, 900.0, 3599.0, 3600.0, 7199.0, 99999.0)] == [0, 0, 1, 3, 4, 4, 4]
