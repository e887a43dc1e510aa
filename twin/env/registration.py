"""Gymnasium ids of the environments, registered when ``twin.env`` is imported."""

from __future__ import annotations

import gymnasium as gym

#: id → entry point. Ids are versioned; a change in spaces, dynamics or reward bumps the version.
ENV_IDS = {
    "pems/House-v0": "twin.env.house_env:HouseEnv",
    "pems/Battery-v0": "twin.env.battery_env:BatteryEnv",
}


def register_envs() -> None:
    """Register every id of :data:`ENV_IDS` with Gymnasium (idempotent)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, nondeterministic=False)
