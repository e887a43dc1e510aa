"""Settings of an environment: episodes, observation/action mapping, reward weights.

The mapping part (``decision_interval_s``, ``forecast_hours``, ``heating``, ``normalize``) is
what a trained policy depends on; it is saved next to the policy and read back by the adapter
(``controllers.rl_policy``), so the agent sees the same vectors in the runner as in training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from twin.env.action import HEATING_MODES
from twin.env.observation import MAX_FORECAST_HOURS
from twin.env.reward import RewardWeights
from twin.errors import ConfigError


@dataclass(frozen=True, slots=True)
class EnvConfig:
    """Everything :class:`~twin.env.HouseEnv` can be asked to do differently.

    Attributes
    ----------
        decision_interval_s: Simulated seconds per step [s], in [60, 86400].
        episode_days: Episode length [days]; ``None`` runs to the scenario's end.
        random_start: Start each episode at a random data step (seeded by ``reset(seed=...)``)
            such that it fits in the scenario; otherwise at the scenario's start.
        forecast_hours: Hours of price/PV/load forecasts in the observation, in [1, 168].
        heating: ``"relay"`` (a > 0 switches a room's heater on) or ``"setpoint"``.
        normalize: Observation as ``(value − center) / scale`` rather than physical units.
        comfort_per_kh: Reward weight of discomfort [currency/(K·h)].
        ev_shortfall_per_kwh: Reward weight of energy the car lacks at departure [currency/kWh].
    """

    decision_interval_s: float = 900.0
    episode_days: float | None = 7.0
    random_start: bool = True
    forecast_hours: int = 24
    heating: str = "relay"
    normalize: bool = True
    comfort_per_kh: float = 1.0
    ev_shortfall_per_kwh: float = 1.0

    def __post_init__(self) -> None:
        if not _number(self.decision_interval_s) or not 60.0 <= self.decision_interval_s <= 86400.0:
            raise ConfigError(f"decision_interval_s = {self.decision_interval_s!r} is outside [60, 86400] s",
                              "decision_interval_s")
        if self.episode_days is not None and (not _number(self.episode_days) or not 0.0 < self.episode_days <= 3660):
            raise ConfigError(f"episode_days = {self.episode_days!r} must be None or in (0, 3660] days",
                              "episode_days")
        if not isinstance(self.random_start, bool) or not isinstance(self.normalize, bool):
            raise ConfigError(f"random_start and normalize must be booleans, got {self.random_start!r} and "
                              f"{self.normalize!r}", "random_start")
        if isinstance(self.forecast_hours, bool) or not isinstance(self.forecast_hours, int) or not (
                1 <= self.forecast_hours <= MAX_FORECAST_HOURS):
            raise ConfigError(f"forecast_hours = {self.forecast_hours!r} must be an integer in "
                              f"[1, {MAX_FORECAST_HOURS}]", "forecast_hours")
        if self.heating not in HEATING_MODES:
            raise ConfigError(f"heating = {self.heating!r} must be one of {HEATING_MODES}", "heating")
        try:
            self.reward_weights  # noqa: B018 - validates the weights
        except ValueError as exc:
            raise ConfigError(str(exc), "reward") from None

    @property
    def reward_weights(self) -> RewardWeights:
        return RewardWeights(self.comfort_per_kh, self.ev_shortfall_per_kwh)

    @property
    def episode_s(self) -> float | None:
        return None if self.episode_days is None else self.episode_days * 86400.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvConfig:
        """Inverse of :meth:`to_dict`; an unknown key is an error naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown environment setting(s) {unknown}; known: {sorted(known)}", unknown[0])
        return cls(**data)


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
