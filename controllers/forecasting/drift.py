"""Drift: the rolling forecast error of the model in use against the error it was accepted with.

:class:`DriftMonitor` keeps the absolute errors of the last ``window`` scored steps; once the window
is full and their mean exceeds ``factor`` × the training error (the A/B test-week MAE kept in the
model's metadata), it returns one :class:`DriftAlert`, and another only after the error has come
back under the threshold (no alert per step).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from controllers.forecasting.base import ForecastError


@dataclass(frozen=True, slots=True)
class DriftAlert:
    """A forecaster whose rolling error has grown past ``factor`` × its training error."""

    kind: str
    rolling_mae: float
    training_mae: float
    factor: float
    steps: int

    def message(self) -> str:
        return (f"forecast drift: {self.kind} rolling MAE {self.rolling_mae:.4g} over the last {self.steps} steps is "
                f"{self.rolling_mae / self.training_mae:.2f}× its training MAE {self.training_mae:.4g} "
                f"(alert above {self.factor:g}×)")


class DriftMonitor:
    """The rolling MAE of one forecaster over ``window`` decisions, compared with its training MAE."""

    def __init__(self, kind: str, training_mae: float, factor: float = 1.5, window: int = 96 * 7) -> None:
        if not (math.isfinite(training_mae) and training_mae > 0.0):
            raise ForecastError(f"drift {kind}: training MAE {training_mae!r} must be a positive number")
        if factor < 1.0 or window < 1:
            raise ForecastError(f"drift {kind}: factor {factor} must be ≥ 1 and window {window} ≥ 1")
        self.kind, self.training_mae, self.factor = kind, training_mae, factor
        self._errors: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self.alerting = False

    @property
    def rolling_mae(self) -> float:
        return self._sum / len(self._errors) if self._errors else math.nan

    def update(self, actual: float, forecast: float) -> DriftAlert | None:
        """Add one scored step (NaNs are skipped); an alert when the threshold is first crossed."""
        if not (math.isfinite(actual) and math.isfinite(forecast)):
            return None
        if len(self._errors) == self._errors.maxlen:
            self._sum -= self._errors[0]
        error = abs(forecast - actual)
        self._errors.append(error)
        self._sum += error
        if len(self._errors) < (self._errors.maxlen or 1):
            return None
        above = self.rolling_mae > self.factor * self.training_mae
        if above and not self.alerting:
            self.alerting = True
            return DriftAlert(self.kind, self.rolling_mae, self.training_mae, self.factor, len(self._errors))
        if not above:
            self.alerting = False
        return None
