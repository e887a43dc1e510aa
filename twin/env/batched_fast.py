"""The array engine behind :class:`~twin.env.batched.BatchedHouseEnv`: N episodes of one house as arrays.

What :class:`~twin.env.house_env.HouseEnv` does per step — decode the action, pass the safety
layer, apply, advance, meter, observe, encode — done once for all houses with numpy over a
leading axis (:class:`~twin.env.batched_dynamics.BatchedDynamics`,
:class:`~twin.env.batched_safety.BatchedSafety`, ``ActionDecoder.decode_v``,
``ObservationEncoder.encode_block_v``). Per-house Python runs only when an episode starts (its
seed and start, as ``HouseEnv.reset``).

Observation times lie on a grid of ``gcd(data step, decision interval)`` seconds; their
datetimes and time-of-day/week features are computed once per grid point (with ``datetime`` and
``math``, as the single environment does). Every feature that depends on the data step only —
comfort bands, outdoor temperature, load, prices, the forecast block — is encoded once per data
step (on first visit) into a float32 table; a step gathers its rows and encodes only what
depends on the state (room temperatures, relays, SOC, car, PV after curtailment). Encoding is
element-wise, so where it happens does not change a bit of the result.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from twin.env.batched_dynamics import BatchedDynamics
from twin.env.batched_meter import (
    CHARGE,
    COST,
    CURTAILED,
    DISCHARGE,
    EV,
    EXPORT,
    HEATING,
    IMPORT,
    LOAD,
    PV,
    UNMET,
    VIOLATION,
)
from twin.env.batched_safety import BatchedSafety
from twin.env.batched_stragglers import MAX_STRAGGLERS, pv_kw_after_curtailment
from twin.env.battery_env import BatteryEnv
from twin.env.house_env import HouseEnv
from twin.env.reward import interval_discomfort_kh_v
from twin.grid import curtailed_pv_kw_v
from twin.house_state import EVENT_EPS_S

_EPS_S = 1e-6
_TWO_PI = 2.0 * math.pi
#: ``info`` keys of a step and the meter row each comes from (None: computed apart), in ``step_increments``' order.
_INCREMENT_ROWS: tuple[tuple[str, int | None], ...] = (
    ("cost", COST), ("import_kwh", IMPORT), ("export_kwh", EXPORT), ("pv_kwh", PV),
    ("pv_curtailed_kwh", CURTAILED), ("base_load_kwh", LOAD), ("heating_kwh", HEATING), ("ev_kwh", EV),
    ("battery_charge_kwh", CHARGE), ("battery_discharge_kwh", DISCHARGE), ("discomfort_kh", None),
    ("ev_unmet_kwh", UNMET), ("relay_switches", None), ("grid_limit_violation_kwh", VIOLATION))


def fast_path_problem(env: HouseEnv) -> str | None:
    """Why ``env``'s configuration cannot run on the array engine (``None`` when it can)."""
    if type(env) not in (HouseEnv, BatteryEnv):
        return f"{type(env).__name__} may override HouseEnv's behaviour"
    twin = env.twin
    step_s, dt_s = twin.step_s, env.config.decision_interval_s
    if not (float(step_s).is_integer() and float(dt_s).is_integer() and twin._start_epoch.is_integer()):
        return "data step, decision interval or scenario start not in whole seconds"
    grid_s = math.gcd(int(step_s), int(dt_s))
    episode_s = env.config.episode_s
    if episode_s is not None and abs(episode_s / grid_s - round(episode_s / grid_s)) > 1e-9:
        return f"episode length {episode_s} s not a multiple of {grid_s} s"
    return None


class FastBatch:
    """``num_envs`` episodes of ``template``'s house, scenario and settings, stepped as arrays.

    Parameters
    ----------
    template
        A built environment (``fast_path_problem(template) is None``); its model, data, encoder,
        decoder and forecast cache are shared.
    num_envs
        Number of houses.
    """

    def __init__(self, template: HouseEnv, num_envs: int) -> None:
        self.template = template
        self.n = n = num_envs
        twin = template.twin
        self.dyn = BatchedDynamics(twin, n, may_backup=False)  # the decoder never asks for BACKUP_RESERVE
        self.safety = BatchedSafety(template.house, n)
        self.encoder, self.decoder = template.encoder, template.decoder
        self.weights = template.config.reward_weights
        self.dt_s = float(template.config.decision_interval_s)
        self.step_s = twin.step_s
        self.duration_s = twin.duration_s
        self.episode_s = template.config.episode_s
        self.n_steps = twin.exo.n_steps
        self._start_epoch = twin._start_epoch
        self._tz = twin._tz
        self._grid_s = float(math.gcd(int(self.step_s), int(self.dt_s)))
        self._build_time_grid()
        self._static = np.zeros((self.n_steps + 1, self.encoder.size), dtype=np.float32)  # encoded, per data step
        self._static_ready = np.zeros(self.n_steps + 1, dtype=bool)
        self._all_static = False
        self.start_s = np.zeros(n)
        self.end_s = np.zeros(n)
        self.steps = np.zeros(n, dtype=np.int64)
        self.rngs: list[np.random.Generator | None] = [None] * n
        self.autoreset = np.zeros(n, dtype=bool)
        self._everyone = np.ones(n, dtype=bool)
        self._everyone.flags.writeable = False
        self._started = False
        self._no_reserve = np.full(n, np.nan)  # the decoder's battery commands never hold a reserve
        self._no_reserve.flags.writeable = False
        self._layout()
        # Data steps where some house might export above the limit: PV less base load plus the battery's full
        # discharge (heating and the car only draw) over the limit, with a margin for rounding. Elsewhere the
        # observation's PV after curtailment is the PV itself and the powers now need not be computed.
        dis_kw = self.dyn.battery.max_discharge_kw if self.dyn.battery is not None else 0.0
        self._may_curtail = self.dyn.pv_kw - self.dyn.load_kw + dis_kw > self.dyn.grid.export_limit_kw - 1e-6
        self._time_encoded = self.encoder.encode_block_v(self._time_features, self._c_time).astype(np.float32)
        # Observation times on the data steps themselves (decision interval a multiple of the data step): the
        # time features go into the per-step table too, and a step gathers one row per house instead of two.
        self._time_in_static = self._grid_s == self.step_s and len(self._time_encoded) == self.n_steps + 1

    # --- set-up -----------------------------------------------------------------------------------------

    def _build_time_grid(self) -> None:
        """Datetimes and time features of every observation time.

        Computed as ``SimHouse.observe`` and ``ObservationEncoder.encode`` do (bit for bit the same values).
        """
        count = int(round(self.duration_s / self._grid_s)) + 1
        times = [datetime.fromtimestamp(self._start_epoch + k * self._grid_s, self._tz) for k in range(count)]
        self._times = np.empty(count, dtype=object)
        self._times[:] = times
        features = np.empty((count, 4))
        for k, now in enumerate(times):
            day = (now.hour + now.minute / 60.0 + now.second / 3600.0) * (_TWO_PI / 24.0)
            week = now.weekday() * (_TWO_PI / 7.0)
            features[k] = (math.sin(day), math.cos(day), math.sin(week), math.cos(week))
        self._time_features = features

    def _layout(self) -> None:
        """Column offsets of the observation vector (the order of ``build_features``)."""
        rooms = self.dyn.n_rooms
        col = 4 * rooms
        self._c_outdoor = col
        col += 1
        self._c_soc = col if self.dyn.battery is not None else -1
        col += int(self.dyn.battery is not None)
        self._c_ev = col if self.dyn.charger is not None else -1
        col += 3 * int(self.dyn.charger is not None)
        self._c_now = col  # pv, load, import price, export price
        self._c_forecast = col + 4
        self._c_time = self.encoder.size - 4
        self._scalars = np.zeros((self.n, self._c_now + 1 - (self._c_outdoor + 1)))

    def warm_forecast_cache(self) -> int:
        """Every data step's forecast block (and the other per-step features), now rather than on first visit."""
        self._ensure_static(np.arange(self.n_steps + 1))
        return self.n_steps

    def _ensure_static(self, steps: np.ndarray) -> None:
        if self._all_static or np.count_nonzero(self._static_ready[steps]) == len(steps):
            return
        dyn = self.dyn
        rooms = dyn.n_rooms
        for i in np.unique(steps[~self._static_ready[steps]]).tolist():
            row = np.zeros(self.encoder.size)
            row[rooms:2 * rooms] = dyn.lower_c[i]
            row[2 * rooms:3 * rooms] = dyn.upper_c[i]
            row[self._c_outdoor] = dyn.outdoor_c[i]
            row[self._c_now + 1:self._c_now + 4] = dyn.load_kw[i], dyn.import_price[i], dyn.export_price[i]
            row[self._c_forecast:self._c_time] = self.template._forecast_block(min(i, self.n_steps - 1))
            self._static[i] = self.encoder.encode_block_v(row, 0)
            if self._time_in_static:
                self._static[i, self._c_time:] = self._time_encoded[i]
            self._static_ready[i] = True
        self._all_static = bool(self._static_ready.all())  # warm: no more checks

    # --- episodes -----------------------------------------------------------------------------------------

    def reset(self, seeds: list[int | None], starts: list[Any]) -> tuple[np.ndarray, dict[str, Any]]:
        """Start every house's episode (``HouseEnv.reset`` with ``seeds[i]`` and ``starts[i]``)."""
        everyone = np.ones(self.n, dtype=bool)
        self._reset_rows(everyone, seeds, starts)
        self.autoreset[:] = False
        self._started = True
        obs = self._observe()
        return obs, {"time": self._times_at(self.dyn.t_s), "_time": everyone.copy(),
                     "episode_end": self._episode_ends(everyone), "_episode_end": everyone.copy()}

    def _reset_rows(self, which: np.ndarray, seeds: list[int | None] | None, starts: list[Any] | None) -> None:
        template = self.template
        span = self.episode_s if self.episode_s is not None else self.duration_s
        for i in np.nonzero(which)[0].tolist():
            if seeds is not None and seeds[i] is not None:
                self.rngs[i] = seeding.np_random(seeds[i])[0]
            start = None if starts is None else starts[i]
            if start is not None:
                start_s = template._start_seconds(start)
            elif not template.config.random_start:
                start_s = 0.0
            else:
                rng = self.rngs[i]
                if rng is None:
                    rng = self.rngs[i] = seeding.np_random()[0]
                first_span = self.episode_s if self.episode_s is not None else self.dt_s
                last = int(math.floor((self.duration_s - first_span) / self.step_s + 1e-9))
                start_s = float(rng.integers(0, max(0, last) + 1)) * self.step_s
            self.start_s[i] = start_s
            self.end_s[i] = min(start_s + span, self.duration_s)
        self.steps[which] = 0
        self.dyn.reset(which, self.start_s)
        self.safety.reset(which)

    def _episode_ends(self, which: np.ndarray) -> np.ndarray:
        out = np.full(self.n, None, dtype=object)
        for i in np.nonzero(which)[0].tolist():
            out[i] = datetime.fromtimestamp(self._start_epoch + float(self.end_s[i]), self._tz)
        return out

    def _times_at(self, t_s: np.ndarray) -> np.ndarray:
        times: np.ndarray = self._times[np.rint(t_s / self._grid_s).astype(np.intp)]
        return times

    # --- a step -----------------------------------------------------------------------------------------

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every house; those whose episode ended at the last step start a new one instead."""
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        dyn, safety = self.dyn, self.safety
        resetting = self.autoreset
        # The usual step: no house starts afresh, so every "& go" and "where(go, …)" is the identity.
        everyone = not resetting.any()
        go = self._everyone if everyone else ~resetting
        t0 = dyn.t_s
        i0 = dyn.data_step_now()[0]
        air0, lower0, upper0 = dyn.air_c, dyn.lower_c[i0], dyn.upper_c[i0]
        cmds = self.decoder.decode_v(actions, lower0, air0)
        now_s = t0 + self._start_epoch
        until_s = t0 + self.decoder.lease_s  # within max_lease_s (lease_for), so never shortened
        safety.observe_relays(dyn.relay_on, now_s, go, everyone)
        all_given = everyone and cmds.all_given  # every house gets a command for every device
        if dyn.n_rooms:
            given = cmds.relays_given if everyone else cmds.relays_given & go
            dyn.apply_relays(safety.relays(cmds.relay_on, given, now_s, all_given), given, until_s, all_given)
        if dyn.charger is not None:
            given = cmds.ev_given if everyone else cmds.ev_given & go
            dyn.apply_ev(safety.ev(cmds.ev_kw, given, now_s, all_given), given, until_s)
        if dyn.battery is not None:
            given = cmds.battery_given if everyone else cmds.battery_given & go
            mode, power_kw, reserve = safety.battery(cmds.battery_mode, cmds.battery_kw, self._no_reserve, given,
                                                     now_s)
            dyn.apply_battery(mode, power_kw, reserve, given, until_s)
        self.steps += go
        t_end = np.minimum(self.start_s + self.steps * self.dt_s, self.end_s)
        if not everyone:
            t_end = np.where(go, t_end, t0)
        dyn.advance_to(t_end)
        meter, switches, duration_s = dyn.take_interval()
        discomfort = interval_discomfort_kh_v(air0, dyn.air_c, lower0, upper0, duration_s)
        w = self.weights
        reward = -(meter[COST] + w.comfort_per_kh * discomfort + w.ev_shortfall_per_kwh * meter[UNMET])
        if everyone:
            truncated = t_end >= self.end_s - _EPS_S
        else:
            reward = np.where(go, reward, 0.0)
            truncated = go & (t_end >= self.end_s - _EPS_S)
        info = self._step_info(meter, switches, discomfort, go, everyone)
        info["time"] = self._times_at(t0)
        if not everyone:
            self._reset_rows(resetting, None, None)
            info["time"] = np.where(resetting, self._times_at(dyn.t_s), info["time"])
            info["episode_end"] = self._episode_ends(resetting)
            info["_episode_end"] = resetting.copy()
            if not go.any():  # every house started afresh: only the reset keys, as Gymnasium batches them
                info = {key: info[key] for key in ("time", "episode_end", "_episode_end")}
        info["_time"] = np.ones(self.n, dtype=bool)
        obs = self._observe()
        self.autoreset = truncated
        return obs, reward, np.zeros(self.n, dtype=bool), truncated, info

    def _step_info(self, meter: np.ndarray, switches: np.ndarray, discomfort: np.ndarray,
                   go: np.ndarray, everyone: bool) -> dict[str, Any]:
        mask = np.ones(self.n, dtype=bool) if everyone else go.copy()
        mask.flags.writeable = False  # one mask shared by every increment key
        info: dict[str, Any] = {}
        for key, row in _INCREMENT_ROWS:
            value = meter[row] if row is not None else discomfort if key == "discomfort_kh" else switches
            info[key] = value if everyone else np.where(go, value, 0 * value)
            info[f"_{key}"] = mask
        return info

    # --- observations ----------------------------------------------------------------------------------

    def _observe(self) -> np.ndarray:
        """Every house's observation vector now (``SimHouse.observe`` + ``ObservationEncoder.encode``)."""
        dyn = self.dyn
        encoder = self.encoder
        t = dyn.t_s
        i, pv, load = dyn.data_step_now()
        self._ensure_static(i)
        obs: np.ndarray = self._static[i]
        if not self._time_in_static:
            obs[:, self._c_time:] = self._time_encoded[np.rint(t / self._grid_s).astype(np.intp)]
        rooms = dyn.n_rooms
        if rooms:
            obs[:, :rooms] = encoder.encode_block_v(dyn.air_c, 0)
            obs[:, 3 * rooms:4 * rooms] = dyn.relay_on  # 0/1, centred at 0, scale 1: as they are
        # The state's scalars: [SOC], [car connected, energy needed, hours to departure], PV now.
        first = self._c_outdoor + 1
        block = self._scalars
        if self._c_soc >= 0:
            block[:, self._c_soc - first] = dyn.soc
        if self._c_ev >= 0:
            k = dyn.ev_session
            connected = dyn.ev_connected
            needed = np.maximum(0.0, dyn.sessions.target_kwh[k] - dyn.ev_energy_kwh)
            hours = (dyn.sessions.departure_epoch_s[k] - (self._start_epoch + t)) / 3600.0
            c = self._c_ev - first
            block[:, c] = connected
            block[:, c + 1] = needed * connected
            block[:, c + 2] = np.where(connected, hours, 0.0)  # inf - t past the last session
        may_curtail = self._may_curtail[i]
        few = np.count_nonzero(may_curtail)
        if few and few <= MAX_STRAGGLERS and not dyn.may_backup:  # a few houses: their powers in Python
            block[:, -1] = pv
            for h in np.flatnonzero(may_curtail).tolist():
                block[h, -1] = pv_kw_after_curtailment(dyn, h, int(i[h]))
        elif few:
            _, _, _, ev_kw, batt_kw = dyn.now()
            net = load + dyn.heat_kw
            net += ev_kw
            net += batt_kw
            net -= pv
            np.subtract(pv, curtailed_pv_kw_v(net, pv, dyn.grid.export_limit_kw), out=block[:, -1])
        else:  # no house can export above the limit: nothing curtailed (pv - 0.0), no need for the powers
            block[:, -1] = pv
        obs[:, first:self._c_now + 1] = encoder.encode_block_v(block, first)
        return obs


__all__ = ["EVENT_EPS_S", "FastBatch", "fast_path_problem"]
