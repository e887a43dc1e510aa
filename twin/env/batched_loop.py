"""The fallback engine of :class:`~twin.env.batched.BatchedHouseEnv`: N single environments in a Python loop.

Used for configurations the array engine (``twin.env.batched_fast``) does not cover — see
``fast_path_problem``. Each sub-environment is a :class:`~twin.env.house_env.HouseEnv` sharing the
first one's configuration, scenario data and forecast cache, with its own state.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from twin.env.house_env import HouseEnv
from twin.env.infos import batch_infos


class LoopBatch:
    """``num_envs`` copies of ``first`` (which becomes the first), stepped one after the other."""

    def __init__(self, first: HouseEnv, num_envs: int) -> None:
        self.envs: list[HouseEnv] = [first] + [_share(first) for _ in range(num_envs - 1)]
        self.n = num_envs
        self._obs = np.zeros((num_envs, first.encoder.size), dtype=np.float32)
        self.autoreset = np.zeros(num_envs, dtype=bool)

    def reset(self, seeds: list[int | None], starts: list[Any]) -> tuple[np.ndarray, dict[str, Any]]:
        infos: list[dict[str, Any]] = []
        for i, env in enumerate(self.envs):
            env_options = None if starts[i] is None else {"start": starts[i]}
            self._obs[i], info = env.reset(seed=seeds[i], options=env_options)
            infos.append(info)
        self.autoreset[:] = False
        return self._obs.copy(), batch_infos(infos)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        rewards = np.zeros(self.n)
        terminated = np.zeros(self.n, dtype=bool)
        truncated = np.zeros(self.n, dtype=bool)
        infos: list[dict[str, Any]] = []
        for i, env in enumerate(self.envs):
            if self.autoreset[i]:
                self._obs[i], info = env.reset()
            else:
                self._obs[i], rewards[i], terminated[i], truncated[i], info = env.step(actions[i])
            infos.append(info)
        self.autoreset = terminated | truncated
        return self._obs.copy(), rewards, terminated, truncated, batch_infos(infos)

    def warm_forecast_cache(self) -> int:
        return self.envs[0].warm_forecast_cache()


def _share(first: HouseEnv) -> HouseEnv:
    """A sub-environment sharing ``first``'s configuration, scenario data and forecast cache, with its own state."""
    env = copy.copy(first)
    twin = copy.copy(first.twin)
    twin.reset_to(0.0)  # fresh state and state-derived caches, the exogenous arrays stay shared
    env._twin = twin
    env._np_random = None
    env._np_random_seed = None
    env._safety = None
    env._obs = None
    env._steps = 0
    return env
