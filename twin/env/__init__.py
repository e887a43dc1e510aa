"""Gymnasium environments over the twin: ``pems/House-v0`` and ``pems/Battery-v0``.

Importing this package registers both ids, so ``gymnasium.make("pems/House-v0")`` works after
``import twin.env`` (or without the import: ``gymnasium.make("twin.env:pems/House-v0")``).
The environments wrap the same ``SimHouse`` and safety layer as every controller; the
observation and action mappings (``ObservationEncoder``, ``ActionDecoder``) are shared with the
policy adapter ``controllers.rl_policy``. ``gymnasium.make_vec(id, num_envs=N,
vectorization_mode="vector_entry_point")`` gives :class:`BatchedHouseEnv` (N houses in one process).
"""

from twin.env.action import ActionDecoder
from twin.env.batched import BatchedHouseEnv
from twin.env.battery_env import BatteryEnv, battery_only
from twin.env.config import EnvConfig
from twin.env.house_env import EnvSnapshot, HouseEnv
from twin.env.observation import ObservationEncoder
from twin.env.registration import ENV_IDS, register_envs
from twin.env.reward import INCREMENT_KEYS, RewardWeights, step_increments

register_envs()

__all__ = [
    "ENV_IDS", "INCREMENT_KEYS", "ActionDecoder", "BatchedHouseEnv", "BatteryEnv", "EnvConfig", "EnvSnapshot",
    "HouseEnv", "ObservationEncoder", "RewardWeights", "battery_only", "register_envs", "step_increments",
]
