"""P10/P90 bands for point forecasts, from the forecasts' own past errors per lead time.

A forecaster that issues quantiles is written as it is. Most issued forecasts (the scenario's,
the feeds') are single values: their band is the 10th/90th percentile of the errors
(actual − issued) seen so far at the same lead time — an empirical, honest band that widens
with lead time exactly as much as the forecasts have been wrong. No band until ``min_samples``
errors exist for that lead.
"""

from __future__ import annotations

from collections import defaultdict, deque

import numpy as np

#: Lead-time buckets [h]: a step ``lead`` hours ahead falls in the largest bucket ≤ lead.
LEAD_BUCKETS_H = (0, 1, 2, 3, 6, 12, 24, 36)


def lead_bucket_h(lead_s: float) -> int:
    hours = lead_s / 3600.0
    return max(b for b in LEAD_BUCKETS_H if b <= max(hours, 0.0))


class ResidualBands:
    """Keeps issued values until their time comes, then their errors, per (quantity, lead bucket)."""

    def __init__(self, window: int = 2000, min_samples: int = 8) -> None:
        self.min_samples = min_samples
        self._errors: dict[tuple[str, int], deque[float]] = defaultdict(lambda: deque(maxlen=window))
        self._issued: dict[tuple[str, int], list[tuple[int, float]]] = defaultdict(list)  # target ns → value

    def remember(self, quantity: str, target_ns: int, bucket_h: int, value: float) -> None:
        self._issued[(quantity, target_ns)].append((bucket_h, value))

    def observe(self, quantity: str, time_ns: int, actual: float) -> None:
        """The actual value at ``time_ns``: turn every forecast issued for it into an error."""
        if not np.isfinite(actual):
            return
        for bucket_h, value in self._issued.pop((quantity, time_ns), ()):
            self._errors[(quantity, bucket_h)].append(actual - value)

    def forget_before(self, time_ns: int) -> None:
        """Drop issued values for targets that passed without an actual (bounded memory)."""
        for key in [k for k in self._issued if k[1] < time_ns]:
            del self._issued[key]

    def offsets(self, quantity: str, bucket_h: int) -> tuple[float, float] | None:
        """The 10th and 90th percentile of the errors at that lead (``None`` while too few)."""
        errors = self._errors.get((quantity, bucket_h))
        if errors is None or len(errors) < self.min_samples:
            return None
        low, high = np.quantile(np.fromiter(errors, float), [0.1, 0.9])
        return float(low), float(high)

    def band(self, quantity: str, bucket_h: int, value: float) -> tuple[float, float] | None:
        offsets = self.offsets(quantity, bucket_h)
        return None if offsets is None else (value + offsets[0], value + offsets[1])
