"""A native vector environment: N houses stepped in lockstep inside one process.

``gymnasium.make_vec("pems/House-v0", num_envs=N, vectorization_mode="vector_entry_point")``
(and the same for ``pems/Battery-v0``) returns a :class:`BatchedHouseEnv`. The scenario, the
house's exogenous arrays (pvlib runs once, not N times) and the per-data-step forecast cache
are built once and shared by all N sub-environments; each sub-environment has its own twin
state, safety layer memory, RNG and episode window. Observations, rewards, ``terminated``,
``truncated`` and infos equal those of N single :class:`~twin.env.house_env.HouseEnv` with the
same seeds and actions (to 1e-9; ``tests/twin/test_env_batched.py``).

Autoreset follows Gymnasium 1.x ``AutoresetMode.NEXT_STEP`` (as ``SyncVectorEnv``): the step
after an episode ends resets that sub-environment, returns its first observation, reward 0
and ``terminated = truncated = False``, and ignores its action.

Status: the houses are stepped as numpy arrays over a leading axis
(:class:`~twin.env.batched_fast.FastBatch`: the twin's event loop as masked lockstep sub-steps
in ``twin.env.batched_dynamics``, the safety layer in ``twin.env.batched_safety``), with no
per-house Python except when an episode starts. Configurations it does not cover —
a ``HouseEnv`` subclass other than ``BatteryEnv``, a data step, decision interval or scenario
start not in whole seconds, an episode length off the grid of observation times — fall back to
the per-house loop of single environments (:class:`~twin.env.batched_loop.LoopBatch`);
:attr:`BatchedHouseEnv.fast` tells which runs. The reference house (windows, blinds, battery,
charger) and the scenarios shipped take the array path; the last few houses of a step (a car
arriving, leaving or becoming full inside it) move in Python with the scalar physics functions
(``twin.env.batched_stragglers``). Speed (aggregate, ÷ CartPole-v1 single steps/s of the same run,
``benchmarks.env_speed``): ≈ 0.8 at N = 64 and ≈ 1.6 at N = 256 (CartPole's own figure moves a lot
on the shared machine) — the goal of issue 15 (≥ 2 at N = 64) is not met yet; a step costs
≈ 220–250 µs whatever N plus ≈ 3 µs per house, nearly all numpy's per-call cost. Below N ≈ 4 a single
environment is faster per house. Figures
and where the time goes: ``docs/speed.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from twin.config import HouseConfig
from twin.env.batched_fast import FastBatch, fast_path_problem
from twin.env.batched_loop import LoopBatch
from twin.env.battery_env import BatteryEnv
from twin.env.config import EnvConfig
from twin.env.house_env import HouseEnv
from twin.env.infos import batch_infos
from twin.scenario import Scenario

__all__ = ["BatchedHouseEnv", "batch_infos", "make_battery_vec", "make_house_vec"]


class BatchedHouseEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """``num_envs`` houses of one configuration sharing one scenario build, stepped in lockstep.

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

    ``fast`` is True when the houses run as arrays, False on the per-house fallback (``fallback_reason``
    says why).
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
        self.num_envs = int(num_envs)
        self.single_env = first
        self.fallback_reason = fast_path_problem(first)
        self.fast = self.fallback_reason is None
        self._engine: FastBatch | LoopBatch = (FastBatch(first, self.num_envs) if self.fast
                                               else LoopBatch(first, self.num_envs))
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None

    @property
    def envs(self) -> list[HouseEnv]:
        """The single environments of the fallback loop (the array engine has none)."""
        if isinstance(self._engine, LoopBatch):
            return self._engine.envs
        raise AttributeError("the houses run as arrays (fast = True): there are no single sub-environments")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.single_env.feature_names

    @property
    def action_names(self) -> tuple[str, ...]:
        return self.single_env.action_names

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
        return self._engine.reset(seeds, per_env)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment (autoresetting those whose episode ended at the last step)."""
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,):
            raise ValueError(f"actions have shape {actions.shape}, expected ({self.num_envs}, ...)")
        return self._engine.step(actions)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method (or read attribute) ``name`` of every sub-environment.

        On the array engine, ``warm_forecast_cache`` warms the shared cache; any other name is read
        from the shared configuration (the same for every house: spaces, names, settings).
        """
        if self.fast:
            if name == "warm_forecast_cache":
                return (self.warm_forecast_cache(),) * self.num_envs
            attr = getattr(self.single_env, name)
            return tuple(attr(*args, **kwargs) if callable(attr) else attr for _ in range(self.num_envs))
        out = []
        for env in self.envs:
            attr = getattr(env, name)
            out.append(attr(*args, **kwargs) if callable(attr) else attr)
        return tuple(out)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of every sub-environment (of the shared configuration on the array engine)."""
        if self.fast:
            return (getattr(self.single_env, name),) * self.num_envs
        return tuple(getattr(env, name) for env in self.envs)

    def warm_forecast_cache(self) -> int:
        """Encode every data step's forecast once (the cache is shared by all sub-environments)."""
        return self._engine.warm_forecast_cache()


def make_house_vec(num_envs: int = 1, **kwargs: Any) -> BatchedHouseEnv:
    """Vector entry point of ``pems/House-v0``."""
    return BatchedHouseEnv(num_envs, env_class=HouseEnv, **kwargs)


def make_battery_vec(num_envs: int = 1, **kwargs: Any) -> BatchedHouseEnv:
    """Vector entry point of ``pems/Battery-v0``."""
    return BatchedHouseEnv(num_envs, env_class=BatteryEnv, **kwargs)
