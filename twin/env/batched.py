"""A native vector environment: N houses stepped in lockstep inside one process.

``gymnasium.make_vec("pems/House-v0", num_envs=N, vectorization_mode="vector_entry_point")``
(and the same for ``pems/Battery-v0``) returns a :class:`BatchedHouseEnv`. The scenario, the
house's exogenous arrays (pvlib runs once, not N times) and the per-data-step forecast cache
are built once and shared by all N sub-environments; each sub-environment has its own twin
state, safety layer memory, RNG and episode window. Every step runs the *same* code as
:class:`~twin.env.house_env.HouseEnv` (same physics, same safety clamping), so observations,
rewards and infos equal those of N single environments with the same seeds and actions.

Autoreset follows Gymnasium 1.x ``AutoresetMode.NEXT_STEP`` (as ``SyncVectorEnv``): the step
after an episode ends resets that sub-environment, returns its first observation, reward 0
and ``terminated = truncated = False``, and ignores its action.

Status: the physics is not yet batched over a leading array axis (the twin is an event-driven
simulation whose event times differ per house); what is shared is construction, data and the
Python overhead of a process per environment. See ``docs/speed.md``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from twin.config import HouseConfig
from twin.env.battery_env import BatteryEnv
from twin.env.config import EnvConfig
from twin.env.house_env import HouseEnv
from twin.scenario import Scenario


class BatchedHouseEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """``num_envs`` copies of :class:`HouseEnv` sharing one scenario build, stepped in lockstep.

    Parameters
    ----------
    num_envs
        Number of houses (≥ 1).
    scenario, house, config, **settings
        As :class:`~twin.env.house_env.HouseEnv`; every sub-environment gets the same ones.
    env_class
        :class:`HouseEnv` (default) or :class:`~twin.env.battery_env.BatteryEnv`.

    Notes
    -----
    ``reset(seed=s)`` seeds sub-environment ``i`` with ``s + i`` (a list gives one seed per
    sub-environment, as ``SyncVectorEnv``). ``reset(options={"start": [t0, t1, ...]})`` starts each
    sub-environment at its own data step (one timestamp for all is accepted too; ``None`` in the list
    keeps that sub-environment's random or first start).
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, scenario: str | Path | Scenario = "year-v1",
                 house: HouseConfig | str | Path | None = None, config: EnvConfig | None = None,
                 env_class: type[HouseEnv] = HouseEnv, **settings: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs = {num_envs!r} must be a positive integer")
        if not (isinstance(env_class, type) and issubclass(env_class, HouseEnv)):
            raise TypeError(f"env_class must be HouseEnv or a subclass, got {env_class!r}")
        first = env_class(scenario, house, config, **settings)
        self.envs: list[HouseEnv] = [first] + [_share(first) for _ in range(int(num_envs) - 1)]
        self.num_envs = int(num_envs)
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None
        self._obs = np.zeros((self.num_envs, first.encoder.size), dtype=np.float32)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-environment; see the class notes for ``seed`` and ``options``."""
        n = self.num_envs
        if seed is None:
            seeds: list[int | None] = [None] * n
        elif isinstance(seed, int | np.integer) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(n)]
        elif isinstance(seed, bool):
            raise TypeError(f"seed = {seed!r} must be an int, a list of one per sub-environment, or None")
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"{len(seeds)} seeds given for {n} sub-environments")
        options = dict(options or {})
        starts = options.pop("start", None)
        if options:
            raise ValueError(f"unknown reset option(s) {sorted(options)}; known: ['start']")
        if starts is None or not isinstance(starts, list | tuple):
            per_env: list[Any] = [starts] * n
        else:
            per_env = list(starts)
            if len(per_env) != n:
                raise ValueError(f"{len(per_env)} starts given for {n} sub-environments")
        infos: list[dict[str, Any]] = []
        for i, env in enumerate(self.envs):
            env_options = None if per_env[i] is None else {"start": per_env[i]}
            self._obs[i], info = env.reset(seed=seeds[i], options=env_options)
            infos.append(info)
        self._autoreset[:] = False
        return self._obs.copy(), batch_infos(infos)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment (autoresetting those whose episode ended at the last step)."""
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,):
            raise ValueError(f"actions have shape {actions.shape}, expected ({self.num_envs}, ...)")
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict[str, Any]] = []
        for i, env in enumerate(self.envs):
            if self._autoreset[i]:
                self._obs[i], info = env.reset()
            else:
                self._obs[i], rewards[i], terminated[i], truncated[i], info = env.step(actions[i])
            infos.append(info)
        self._autoreset = terminated | truncated
        return self._obs.copy(), rewards, terminated, truncated, batch_infos(infos)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method (or read attribute) ``name`` of every sub-environment."""
        out = []
        for env in self.envs:
            attr = getattr(env, name)
            out.append(attr(*args, **kwargs) if callable(attr) else attr)
        return tuple(out)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of every sub-environment."""
        return tuple(getattr(env, name) for env in self.envs)

    def warm_forecast_cache(self) -> int:
        """Encode every data step's forecast once (the cache is shared by all sub-environments)."""
        return self.envs[0].warm_forecast_cache()


def batch_infos(infos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The vector ``info`` of per-environment flat ``infos``, as ``VectorEnv._add_info`` builds it.

    Each key maps to an array over environments (dtype of the first value: the Python or numpy
    number type, else ``object``) and ``_key`` to the mask of environments that have it. Built
    once per key rather than once per environment and key.
    """
    n = len(infos)
    out: dict[str, Any] = {}
    first_keys = infos[0].keys() if n else {}.keys()
    if all(info.keys() == first_keys for info in infos):  # the common case: every env has the same keys
        for key, first in infos[0].items():
            kind = type(first)
            values = [info[key] for info in infos]
            if kind in (int, float, bool) or issubclass(kind, np.number):
                out[key] = np.array(values, dtype=kind)
            else:
                array = np.empty(n, dtype=object)
                array[:] = values
                out[key] = array
            out[f"_{key}"] = np.ones(n, dtype=bool)
        return out
    keys: dict[str, None] = {}
    for info in infos:
        keys.update(dict.fromkeys(info))
    for key in keys:
        mask = np.fromiter((key in info for info in infos), dtype=bool, count=n)
        kind = type(next(info[key] for info in infos if key in info))
        if kind in (int, float, bool) or issubclass(kind, np.number):
            array = np.zeros(n, dtype=kind)
        else:
            array = np.full(n, None, dtype=object)
        for i, info in enumerate(infos):
            if key in info:
                array[i] = info[key]
        out[key] = array
        out[f"_{key}"] = mask
    return out


def make_house_vec(num_envs: int = 1, **kwargs: Any) -> BatchedHouseEnv:
    """Vector entry point of ``pems/House-v0``."""
    return BatchedHouseEnv(num_envs, env_class=HouseEnv, **kwargs)


def make_battery_vec(num_envs: int = 1, **kwargs: Any) -> BatchedHouseEnv:
    """Vector entry point of ``pems/Battery-v0``."""
    return BatchedHouseEnv(num_envs, env_class=BatteryEnv, **kwargs)


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
