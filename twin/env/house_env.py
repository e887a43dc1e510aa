"""``pems/House-v0``: a Gymnasium environment over the twin (the same ``SimHouse`` and safety layer)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from twin.config import HouseConfig, load_house, reference_house
from twin.contracts import Observation
from twin.env.action import ActionDecoder
from twin.env.config import EnvConfig
from twin.env.observation import ObservationEncoder, steps_per_hour
from twin.env.reward import step_increments
from twin.errors import ConfigError
from twin.house import HouseState, SimHouse
from twin.registry import load_scenario
from twin.safety import SafetyLayer
from twin.scenario import Scenario

_EPS_S = 1e-6


@dataclass(frozen=True)
class EnvSnapshot:
    """The full state of a :class:`HouseEnv`: twin, safety layer memory, RNG, step counter, episode."""

    house: HouseState
    safety: SafetyLayer
    rng_state: dict[str, Any]
    steps: int
    episode_start_s: float
    episode_end_s: float
    world: tuple[str, str, int]  # (scenario, house, data steps): where the snapshot may be restored


class HouseEnv(gym.Env[np.ndarray, np.ndarray]):
    """The whole house — heated rooms, battery, PV, EV charger, grid — as a Gymnasium environment.

    ## Description

    Every step the agent's action becomes a :class:`~twin.contracts.Command`, passes the same
    :class:`~twin.safety.SafetyLayer` as every controller's commands, and is applied to the same
    discrete-event twin (:class:`~twin.house.SimHouse`) that ``pems simulate`` runs, for
    ``decision_interval_s`` simulated seconds (15 min by default). The world — weather, base
    load, prices, car trips, comfort schedule, issued forecasts — comes from a named or
    file scenario (``pems scenarios list``).

    ## Action Space

    ``Box(-1, 1, (n_actions,), float32)``; components present only if the house has the device
    (``env.unwrapped.action_names``):

    | Index | Name          | Min | Max | Meaning [unit]                                                       |
    |-------|---------------|-----|-----|----------------------------------------------------------------------|
    | 0     | `battery`     | -1  | 1   | abs(a) ≤ 0.1: self-consumption; else setpoint, see below [kW]          |
    | 1     | `ev`          | -1  | 1   | a ≤ −0.5: stop; else min_power_kw + (a + 0.5)/1.5 · (max − min) [kW] |
    | 2…    | `heat.<room>` | -1  | 1   | heater relay: on iff a > 0 (``heating="relay"``), or see below        |

    Battery setpoint (+ charging): ``(a − 0.1)/0.9 · max_charge_kw`` for a > 0.1,
    ``(a + 0.1)/0.9 · max_discharge_kw`` for a < −0.1. With ``heating="setpoint"`` a room's heater
    is on while the room is below ``comfort_lower_c + 1 K + a · 1 K`` (a thermostat target the
    agent moves). The zero action is the house's own behaviour — inverter self-consumption, the
    car charging, rooms held a little above their band (setpoint mode) — so a zero-centred
    policy starts from something sensible.
    For the reference house: battery ±5 kW, charger 4.1–11 kW, 16 rooms → 18 components.
    Whatever the action, the safety layer keeps the devices in their envelopes (relay minimum
    on/off times and switch cap, battery power and SOC window, charger range and step rate).

    ## Observation Space

    ``Box(float32)`` of ``4·rooms + 9 + 3·forecast_hours + 4`` features (fewer without battery or
    charger; names in ``env.unwrapped.feature_names``, full table with units, bounds and
    normalisation in ``env.unwrapped.encoder.table()``):

    | Features                                                        | Unit         | (x − center)/scale  |
    |-----------------------------------------------------------------|--------------|---------------------|
    | `room_temp_c.<room>`, `comfort_lower_c.<room>`, `comfort_upper_c.<room>` | °C  | (x − 20)/5          |
    | `relay_on.<room>`                                               | 0/1          | x                   |
    | `outdoor_temp_c`                                                | °C           | (x − 5)/10          |
    | `battery_soc`                                                   | 0..1         | (x − 0.5)/0.5       |
    | `ev_connected`, `ev_energy_needed_kwh`, `ev_hours_to_departure` | 0/1, kWh, h  | x, x/20, x/12       |
    | `pv_power_kw`, `base_load_kw` (now)                             | kW           | x/peak_pv_kw, x/2   |
    | `import_price_per_kwh`, `export_price_per_kwh` (now)            | currency/kWh | (x − 0.2)/0.1, x/0.1 |
    | `forecast.<series>+<h>h` for import price, PV and base load     | as above     | as above            |
    | `time_of_day_{sin,cos}`, `day_of_week_{sin,cos}`                | 1            | x                   |

    Forecast features are hourly means of the scenario's *issued* forecast (errors growing
    with lead time, never the actuals), h = 0 … ``forecast_hours`` − 1 from the current data step.
    With ``normalize=False`` the vector holds the physical values. Values are clipped to each
    feature's physical bounds; a missing (non-finite) reading is encoded as its center.

    ## Rewards

    ``reward = −(cost + comfort_per_kh · discomfort_kh + ev_shortfall_per_kwh · ev_unmet_kwh)``
    per step, with ``cost`` = Σ import·import price − export·export price [currency] metered
    exactly by the twin, ``discomfort_kh`` = Σ rooms of the trapezoid of the distance outside the
    comfort band [K·h] (BOPTEST, as in the run log), ``ev_unmet_kwh`` the energy the car lacks at
    each departure [kWh]. Defaults: 1 currency per K·h, 1 per kWh. ``info`` holds every KPI
    increment of the step (``twin.env.reward.INCREMENT_KEYS``) and ``time`` (its start);
    summed over an episode they equal the KPIs ``pems simulate`` reports for the same run.

    ## Starting State

    Rooms at their comfort lower bound + 1 K (or the scenario's initial temperature), battery
    at its initial SOC, a car already home plugged in with its arrival SOC, relays as the local
    thermostat sets them. The start is the scenario's first step, a data step drawn uniformly
    (``random_start=True``, seeded by ``reset(seed=...)``) such that the episode fits, or
    ``reset(options={"start": <timestamp>})``.

    ## Episode End

    No terminal states (``terminated`` is always False: a house lives on). ``truncated`` after
    ``episode_days`` or at the scenario's end, whichever comes first (a shorter last step if the
    scenario ends mid-interval). A car still home at truncation has not been penalised yet.

    ## Arguments

    ```python
    import gymnasium as gym
    import twin.env  # registers pems/House-v0 and pems/Battery-v0

    env = gym.make("pems/House-v0", scenario="winter-week-v1", episode_days=2, heating="setpoint")
    ```

    * ``scenario``: registered name, scenario file path or a ``Scenario`` (default ``"year-v1"``).
    * ``house``: ``HouseConfig``, house TOML path, or ``None`` for the reference house.
    * every field of :class:`~twin.env.config.EnvConfig`: ``decision_interval_s`` (900),
      ``episode_days`` (7, ``None`` = to the scenario's end), ``random_start`` (True),
      ``forecast_hours`` (24), ``heating`` (``"relay"``), ``normalize`` (True),
      ``comfort_per_kh`` (1.0), ``ev_shortfall_per_kwh`` (1.0).
    * ``render_mode``: ``None`` or ``"ansi"`` (one status line).

    ``snapshot()`` / ``restore(snapshot)`` save and restore the full state (twin, safety layer,
    RNG, step counter, episode) for rollouts and search.

    ## Version History

    * v0: Initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, scenario: str | Path | Scenario = "year-v1", house: HouseConfig | str | Path | None = None,
                 config: EnvConfig | None = None, render_mode: str | None = None, **settings: Any) -> None:
        known = {f.name for f in fields(EnvConfig)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(f"unknown argument(s) {unknown}; settings are {sorted(known)}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode = {render_mode!r} must be None or one of {self.metadata['render_modes']}")
        self.config = replace(config or EnvConfig(), **settings)
        self.render_mode = render_mode
        self.house = _house(house)
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        cfg = self.config
        self.encoder = ObservationEncoder(self.house, cfg.forecast_hours, cfg.normalize)
        self.decoder = ActionDecoder(self.house, cfg.decision_interval_s, cfg.heating)
        self.observation_space = self.encoder.space
        self.action_space = self.decoder.space
        steps_per_hour(self.scenario.step_s)  # hourly forecast features need a grid that divides an hour
        # Built once for the whole scenario (pvlib runs here); episodes start by reset_to().
        self._twin = SimHouse(self.house, self.scenario, horizon_s=cfg.forecast_hours * 3600.0)
        self._duration_s = self._twin.duration_s
        episode_s = cfg.episode_s
        if episode_s is not None and episode_s > self._duration_s + _EPS_S:
            raise ConfigError(f"episode_days = {cfg.episode_days} is longer than scenario {self.scenario.name!r} "
                              f"({self._duration_s / 86400:g} days)", "episode_days")
        self._episode_s = episode_s
        self._dt = cfg.decision_interval_s
        self._weights = cfg.reward_weights
        self._forecast_cache: dict[int, np.ndarray] = {}
        self._safety: SafetyLayer | None = None
        self._obs: Observation | None = None
        self._steps = 0
        self._start_s = 0.0
        self._end_s = self._duration_s

    # --- Gymnasium API ---------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        start = options.pop("start", None)
        if options:
            raise ValueError(f"unknown reset option(s) {sorted(options)}; known: ['start']")
        self._start_s = self._start_seconds(start)
        span = self._episode_s if self._episode_s is not None else self._duration_s
        self._end_s = min(self._start_s + span, self._duration_s)
        self._twin.reset_to(self._start_s)
        self._safety = SafetyLayer(self.house)
        self._steps = 0
        self._obs = self._twin.observe()
        return self._encode(self._obs), {"time": self._obs.time, "episode_end": self._twin.timestamp(self._end_s)}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, safety = self._obs, self._safety
        if (obs is None or safety is None
                or self._steps and self._start_s + self._steps * self._dt >= self._end_s - _EPS_S):
            raise gym.error.ResetNeeded("the episode has ended (or not begun): call reset() before step()")
        command = safety(self.decoder.decode(action, obs), obs)
        twin = self._twin
        twin.apply(command)
        self._steps += 1
        t_end = min(self._start_s + self._steps * self._dt, self._end_s)
        twin.advance_to(t_end)
        info: dict[str, Any] = step_increments(obs, twin.take_interval())
        reward = self._weights.reward(info)
        info["time"] = obs.time
        truncated = t_end >= self._end_s - _EPS_S
        self._obs = twin.observe()
        return self._encode(self._obs), reward, False, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._obs is None:
            return None
        o = self._obs
        parts = [o.time.strftime("%Y-%m-%d %H:%M %Z")]
        if len(o.room_temp_c):
            parts.append(f"rooms {o.room_temp_c.min():.1f}–{o.room_temp_c.max():.1f} °C "
                         f"({int(np.sum(o.relay_on))} heating)")
        if self.house.battery is not None:
            parts.append(f"battery {o.battery_soc:.0%} ({o.battery_power_kw:+.2f} kW)")
        if o.ev_connected:
            parts.append(f"EV needs {o.ev_energy_needed_kwh:.1f} kWh")
        parts.append(f"PV {o.pv_power_kw:.2f} kW, load {o.base_load_kw:.2f} kW, grid {o.grid_power_kw:+.2f} kW, "
                     f"price {o.import_price_per_kwh:.3f}/kWh")
        return "  ".join(parts)

    # --- snapshots -------------------------------------------------------------------------------------

    def snapshot(self) -> EnvSnapshot:
        """The full state now; :meth:`restore` returns to it (any number of times)."""
        if self._obs is None or self._safety is None:
            raise gym.error.ResetNeeded("call reset() before snapshot()")
        return EnvSnapshot(house=self._twin.snapshot(), safety=self._copy_safety(self._safety),
                           rng_state=copy.deepcopy(dict(self.np_random.bit_generator.state)), steps=self._steps,
                           episode_start_s=self._start_s, episode_end_s=self._end_s, world=self._world())

    def restore(self, snapshot: EnvSnapshot) -> np.ndarray:
        """Return to ``snapshot``; gives the observation at that moment."""
        if not isinstance(snapshot, EnvSnapshot):
            raise TypeError(f"restore() needs an EnvSnapshot, got {type(snapshot).__name__}")
        if snapshot.world != self._world():
            raise ValueError(f"snapshot of (scenario, house, steps) = {snapshot.world} cannot be restored into "
                             f"{self._world()}")
        self._twin.restore(snapshot.house)
        self._safety = self._copy_safety(snapshot.safety)
        self.np_random.bit_generator.state = copy.deepcopy(snapshot.rng_state)
        self._steps = snapshot.steps
        self._start_s = snapshot.episode_start_s
        self._end_s = snapshot.episode_end_s
        self._obs = self._twin.observe()
        return self._encode(self._obs)

    def warm_forecast_cache(self) -> int:
        """Encode the issued forecasts of every data step now, rather than on first visit.

        The forecast part of the observation depends on the data step only; it is cached as
        steps are visited (a year: ~35,000 steps, ~20 MB). Warming it up front costs a few seconds
        per simulated year and makes every later step as fast as a revisited one.
        Returns the number of steps cached.
        """
        for step in range(self._twin.exo.n_steps):
            self._forecast_block(step)
        return len(self._forecast_cache)

    # --- introspection ---------------------------------------------------------------------------------

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.encoder.names

    @property
    def action_names(self) -> tuple[str, ...]:
        return self.decoder.names

    @property
    def twin(self) -> SimHouse:
        """The twin itself (read it; changing it behind the environment's back breaks snapshots)."""
        return self._twin

    @property
    def observation(self) -> Observation | None:
        """The last :class:`Observation` (what a controller would have been shown)."""
        return self._obs

    # --- internals -------------------------------------------------------------------------------------

    def _world(self) -> tuple[str, str, int]:
        return (self.scenario.name, self.house.name, self._twin.exo.n_steps)

    def _start_seconds(self, start: Any) -> float:
        step_s = self._twin.step_s
        if start is not None:
            try:
                when = pd.Timestamp(start)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"reset option start = {start!r} is not a timestamp: {exc}") from None
            if when.tzinfo is None:
                raise ValueError(f"reset option start = {start!r} must be timezone-aware")
            t = self._twin.seconds(when.to_pydatetime())
            k = round(t / step_s)
            if not 0.0 <= t < self._duration_s or abs(t - k * step_s) > 1e-3:
                raise ValueError(f"reset option start = {when} must be a data step of scenario "
                                 f"{self.scenario.name!r} in [{self.scenario.start}, {self.scenario.end})")
            return k * step_s
        if not self.config.random_start:
            return 0.0
        span = self._episode_s if self._episode_s is not None else self._dt
        last = int(math.floor((self._duration_s - span) / step_s + 1e-9))
        return float(self.np_random.integers(0, max(0, last) + 1)) * step_s

    def _encode(self, obs: Observation) -> np.ndarray:
        twin = self._twin
        # The data step the observation's forecast starts at (the last one at the scenario's end).
        step = min(int((twin.t_s + _EPS_S) // twin.step_s), twin.exo.n_steps - 1)
        return self.encoder.encode(obs, self._forecast_block(step))

    def _forecast_block(self, step: int) -> np.ndarray:
        block = self._forecast_cache.get(step)
        if block is None:
            twin = self._twin
            issued = self.scenario.forecasts.issue(twin.exo.series, step, twin.horizon_steps)
            block = self._forecast_cache[step] = self.encoder.forecast_block(issued, twin.step_s)
        return block

    def _copy_safety(self, safety: SafetyLayer) -> SafetyLayer:
        # The configuration is frozen and shared; only the layer's memory is copied.
        return copy.deepcopy(safety, memo={id(self.house): self.house, id(safety.config): safety.config})


def _house(house: HouseConfig | str | Path | None) -> HouseConfig:
    if house is None:
        return reference_house()
    if isinstance(house, HouseConfig):
        return house
    if isinstance(house, str | Path):
        return load_house(house)
    raise TypeError(f"house must be a HouseConfig, a TOML path or None, got {type(house).__name__}")
