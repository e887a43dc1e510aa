"""Gymnasium ids of the environments, registered when ``twin.env`` is imported."""

from __future__ import annotations

import gymnasium as gym

#: id → entry point. Ids are versioned; a change in spaces, dynamics or reward bumps the version.
ENV_IDS = {
    "pems/House-v0": "twin.env.house_env:HouseEnv",
    "pems/Battery-v0": "twin.env.battery_env:BatteryEnv",
}

#: id → vector entry point (``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``).
VECTOR_ENTRY_POINTS = {
    "pems/House-v0": "twin.env.batched:make_house_vec",
    "pems/Battery-v0": "twin.env.batched:make_battery_vec",
}


def register_envs() -> None:
    """Register every id of :data:`ENV_IDS` with Gymnasium (idempotent)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, nondeterministic=False,
                         vector_entry_point=VECTOR_ENTRY_POINTS[env_id])
