"""Move blocking: the horizon as a few blocks of growing length, and data averaged onto them.

Decisions are constant within a block, so a 48 h horizon needs 50 blocks instead of 192
quarter-hours (default grid). Forecast data are piecewise constant on the scenario's grid;
:func:`block_means` integrates them exactly over each block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class BlockGrid:
    """Blocks of the horizon, measured from the plan's start (the decision time).

    ``edges_s`` has one more entry than there are blocks: block ``k`` covers
    ``[edges_s[k], edges_s[k + 1])`` seconds after the start.
    """

    edges_s: np.ndarray

    @classmethod
    def from_segments(cls, segments: tuple[tuple[float, float], ...]) -> BlockGrid:
        """Blocks of ``block_length_s`` up to each segment's ``until_s`` (see ``MpcSettings.blocks``)."""
        edges = [0.0]
        for length, until in segments:
            first = edges[-1]
            n = round((until - first) / length)
            edges.extend(first + length * (i + 1) for i in range(n))
        values = np.array(edges, dtype=float)
        values.flags.writeable = False
        return cls(values)

    @property
    def n_blocks(self) -> int:
        return len(self.edges_s) - 1

    @property
    def durations_s(self) -> np.ndarray:
        return np.diff(self.edges_s)

    @property
    def durations_h(self) -> np.ndarray:
        return self.durations_s / 3600.0

    @property
    def horizon_s(self) -> float:
        return float(self.edges_s[-1])

    def lengths(self) -> tuple[float, ...]:
        """The distinct block lengths [s], in order of first use."""
        return tuple(dict.fromkeys(self.durations_s.tolist()))

    def block_at(self, elapsed_s: float) -> int:
        """Index of the block containing ``elapsed_s`` seconds after the start (clipped to the grid)."""
        k = int(np.searchsorted(self.edges_s, elapsed_s + 1e-6, side="right")) - 1
        return min(max(k, 0), self.n_blocks - 1)


def block_means(values: np.ndarray, offset_s: float, step_s: float, edges_s: np.ndarray) -> np.ndarray:
    """Mean of piecewise-constant ``values`` over each block.

    ``values[i]`` holds on ``[i·step_s, (i+1)·step_s)`` of the data's own clock; the blocks'
    ``edges_s`` are measured from ``offset_s`` on that clock. Past the data's end the last
    value is held. ``values`` may have trailing axes (e.g. rooms); they are kept.
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    times = offset_s + np.asarray(edges_s, dtype=float)
    end = n * step_s
    if times[-1] > end:
        extra = int(np.ceil((times[-1] - end) / step_s)) + 1
        values = np.concatenate([values, np.repeat(values[-1:], extra, axis=0)], axis=0)
        n = values.shape[0]
    cumulative = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values * step_s, axis=0)], axis=0)
    grid = np.arange(n + 1) * step_s
    flat = cumulative.reshape(n + 1, -1)
    if flat.shape[1] == 0:  # no columns (e.g. the node gains of a house without rooms)
        return np.zeros((len(times) - 1, *values.shape[1:]))
    integral = np.stack([np.interp(times, grid, flat[:, j]) for j in range(flat.shape[1])], axis=-1)
    means = np.diff(integral, axis=0) / np.diff(times)[:, None]
    return means.reshape(len(times) - 1, *values.shape[1:])


def values_at(values: np.ndarray, offset_s: float, step_s: float, times_s: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The data steps in force just before and just after each of ``times_s`` (measured from ``offset_s``).

    Returns ``(before, after)`` rows of ``values`` (the last row past the data's end).
    """
    values = np.asarray(values)
    t = offset_s + np.asarray(times_s, dtype=float)
    last = values.shape[0] - 1
    after = np.clip(np.floor(t / step_s + 1e-9).astype(int), 0, last)
    before = np.clip(np.ceil(t / step_s - 1e-9).astype(int) - 1, 0, last)
    return values[before], values[after]
