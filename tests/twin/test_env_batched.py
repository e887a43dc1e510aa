"""The native vector environment: equal to N single environments, autoreset, seeds, windows, bad arguments."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import twin.env  # noqa: F401 - registers the ids
from twin.env import INCREMENT_KEYS, BatteryEnv, HouseEnv
from twin.env.batched import BatchedHouseEnv
from twin.registry import load_scenario

WEEK = "winter-week-v1"
TOL = 1e-9


def single_rollouts(make, seeds, actions, starts=None):
    """N single environments driven as NEXT_STEP autoreset would: (obs, reward, term, trunc, info) per step."""
    envs = [make() for _ in seeds]
    obs0, infos0 = [], []
    for i, (env, seed) in enumerate(zip(envs, seeds, strict=True)):
        options = None if starts is None or starts[i] is None else {"start": starts[i]}
        obs, info = env.reset(seed=seed, options=options)
        obs0.append(obs)
        infos0.append(info)
    done = [False] * len(envs)
    steps = []
    for a in actions:
        row = []
        for i, env in enumerate(envs):
            if done[i]:
                obs, info = env.reset()
                row.append((obs, 0.0, False, False, info))
                done[i] = False
            else:
                obs, reward, term, trunc, info = env.step(a[i])
                row.append((obs, reward, term, trunc, info))
                done[i] = term or trunc
        steps.append(row)
    return (obs0, infos0), steps


def assert_info_equal(vector_info, i, single_info):
    for key, value in single_info.items():
        assert vector_info[f"_{key}"][i], key
        got = vector_info[key][i]
        if isinstance(value, float | int | np.floating | np.integer) and not isinstance(value, bool):
            assert abs(float(got) - float(value)) <= TOL, key
        else:
            assert got == value, key


@pytest.mark.parametrize(("env_id", "cls", "days", "n_actions"),
                         [("pems/House-v0", HouseEnv, 0.25, 18), ("pems/Battery-v0", BatteryEnv, 0.25, 1)])
def test_batched_equals_single_envs_across_autoresets(env_id, cls, days, n_actions):
    n, seeds = 3, [5, 6, 7]
    vec = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", scenario=WEEK,
                       episode_days=days)
    assert isinstance(vec.unwrapped, BatchedHouseEnv)
    rng = np.random.default_rng(3)
    actions = rng.uniform(-1.2, 1.2, (60, n, n_actions)).astype(np.float32)  # 24-step episodes: 2 autoresets
    last_info: dict = {}
    resets = _compare_rollouts(vec, lambda: cls(WEEK, episode_days=days), seeds, actions, last_info=last_info)
    assert resets == 2 * n
    assert set(INCREMENT_KEYS) <= set(last_info)
    vec.close()


def test_int_seed_is_per_env_offset_and_reproducible():
    a = BatchedHouseEnv(3, scenario=WEEK, env_class=BatteryEnv, episode_days=1.0)
    b = BatchedHouseEnv(3, scenario=WEEK, env_class=BatteryEnv, episode_days=1.0)
    obs_a, info_a = a.reset(seed=10)
    obs_b, info_b = b.reset(seed=[10, 11, 12])
    np.testing.assert_array_equal(obs_a, obs_b)
    assert list(info_a["time"]) == list(info_b["time"])
    assert len(set(info_a["time"])) > 1  # different seeds, different random starts
    actions = np.full((3, 1), 0.7, dtype=np.float32)
    np.testing.assert_array_equal(a.step(actions)[0], b.step(actions)[0])


def test_per_env_windows_from_reset_options():
    full = load_scenario(WEEK)
    starts = [full.start + pd.Timedelta(hours=h) for h in (0, 30, 75)]
    vec = BatchedHouseEnv(3, scenario=WEEK, episode_days=1.0)
    _, info = vec.reset(seed=0, options={"start": starts})
    assert [pd.Timestamp(t) for t in info["time"]] == starts
    assert [pd.Timestamp(t) for t in info["episode_end"]] == [s + pd.Timedelta(days=1) for s in starts]
    _, info = vec.reset(options={"start": starts[1]})
    assert all(pd.Timestamp(t) == starts[1] for t in info["time"])
    (obs0, _), _ = single_rollouts(lambda: HouseEnv(WEEK, episode_days=1.0), [0, 1, 2], [], starts)
    obs, _ = vec.reset(seed=0, options={"start": starts})
    np.testing.assert_allclose(obs, np.stack(obs0), rtol=0, atol=TOL)


def test_sub_environments_do_not_share_state():
    vec = BatchedHouseEnv(2, scenario=WEEK, env_class=BatteryEnv, episode_days=1.0, random_start=False)
    obs, _ = vec.reset(seed=0)
    np.testing.assert_array_equal(obs[0], obs[1])
    for _ in range(8):
        obs, *_ = vec.step(np.array([[1.0], [-1.0]], dtype=np.float32))
    soc = vec.unwrapped.feature_names.index("battery_soc")
    assert obs[0, soc] > obs[1, soc]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_envs"):
        BatchedHouseEnv(0, scenario=WEEK)
    with pytest.raises(TypeError, match="env_class"):
        BatchedHouseEnv(1, scenario=WEEK, env_class=dict)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown argument"):
        BatchedHouseEnv(1, scenario=WEEK, episode_dayz=1.0)
    vec = BatchedHouseEnv(2, scenario=WEEK, env_class=BatteryEnv, episode_days=1.0)
    with pytest.raises(ValueError, match="seeds"):
        vec.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="starts"):
        vec.reset(options={"start": [None]})
    with pytest.raises(ValueError, match="unknown reset option"):
        vec.reset(options={"begin": 0})
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="actions have shape"):
        vec.step(np.zeros((3, 1), dtype=np.float32))


def test_batch_infos_matches_gymnasiums_add_info():
    from twin.env.batched import batch_infos

    when = pd.Timestamp("2026-01-01", tz="UTC")
    infos = [{"time": when, "episode_end": when}, {"cost": 0.5, "relay_switches": 3, "time": when},
             {"cost": -1.25, "relay_switches": 0, "time": when, "flag": True}]
    uniform = [{"cost": c, "relay_switches": k, "time": when, "ok": k > 1} for c, k in ((0.5, 3), (-1.0, 0), (2.0, 2))]
    vec = BatchedHouseEnv(3, scenario=WEEK, env_class=BatteryEnv, episode_days=1.0)
    for case in (infos, uniform):
        expected: dict = {}
        for i, info in enumerate(case):
            expected = vec._add_info(expected, info, i)
        got = batch_infos(case)
        assert set(got) == set(expected)
        for key, value in expected.items():
            assert got[key].dtype == value.dtype, key
            assert list(got[key]) == list(value), key


def _compare_rollouts(vec, make, seeds, actions, starts=None, last_info=None):
    """Drive ``vec`` and N single environments with the same seeds and actions; everything must agree.

    Returns the number of autoresets; ``last_info`` (a dict) receives the last step's vector ``info``.
    """
    (obs0, infos0), steps = single_rollouts(make, seeds, actions, starts)
    obs, info = vec.reset(seed=seeds, options=None if starts is None else {"start": starts})
    np.testing.assert_allclose(obs, np.stack(obs0), rtol=0, atol=TOL)
    for i in range(len(seeds)):
        assert_info_equal(info, i, infos0[i])
    resets = 0
    for a, row in zip(actions, steps, strict=True):
        obs, reward, term, trunc, info = vec.step(a)
        for i, (s_obs, s_reward, s_term, s_trunc, s_info) in enumerate(row):
            np.testing.assert_allclose(obs[i], s_obs, rtol=0, atol=TOL)
            assert abs(reward[i] - s_reward) <= TOL
            assert term[i] == s_term and trunc[i] == s_trunc
            assert_info_equal(info, i, s_info)
            assert {k for k in info if not k.startswith("_") and info[f"_{k}"][i]} == set(s_info)
            resets += int("episode_end" in s_info)
        assert not term.any()
    if last_info is not None:
        last_info.update(info)
    return resets


def _actions(rng, steps, n, n_actions, nan_share):
    """Random actions beyond the box (clipped) with some non-finite components (devices left alone)."""
    actions = rng.uniform(-1.2, 1.2, (steps, n, n_actions))
    actions[rng.random(actions.shape) < nan_share] = np.nan
    return actions.astype(np.float32)


@pytest.mark.parametrize(("cls", "settings", "summer", "nan_share"), [
    (HouseEnv, {"heating": "relay"}, True, 0.0),  # summer: windows aired and blinds lowered
    (HouseEnv, {"heating": "relay"}, True, 0.05),  # leases run out: thermostat ticks, self-consumption, charger default
    (HouseEnv, {"heating": "setpoint"}, False, 0.05),
    (HouseEnv, {"heating": "relay", "decision_interval_s": 60.0}, False, 0.0),  # relay min times and switch cap bind
    (BatteryEnv, {"decision_interval_s": 120.0}, False, 0.05),
    (BatteryEnv, {}, False, 0.0),
])
def test_array_engine_equals_single_envs_on_the_year(cls, settings, summer, nan_share):
    """The array engine (``fast``) against N single environments over the year scenario: random starts
    or summer starts, several episodes with autoresets, per-env seeds."""
    scenario = load_scenario("year-v1")
    n, days = 5, 0.25
    if settings.get("decision_interval_s", 900.0) < 900.0:
        days = 0.0125  # 1080 s: several episodes of 60 or 120 s steps
    vec = BatchedHouseEnv(n, scenario=scenario, env_class=cls, episode_days=days, **settings)
    assert vec.fast, vec.fallback_reason
    starts = ([scenario.start + pd.Timedelta(days=d) for d in (170, 185, 200, 215, 230)] if summer else None)
    rng = np.random.default_rng(11)
    actions = _actions(rng, 70, n, vec.single_action_space.shape[0], nan_share)
    resets = _compare_rollouts(vec, lambda: cls(scenario, episode_days=days, **settings),
                               [21 + i for i in range(n)], actions, starts)
    assert resets >= 2 * n


def test_summer_rollout_airs_the_house_and_lowers_blinds():
    """The reference house in July: the window and blinds paths of the array engine do run."""
    scenario = load_scenario("year-v1")
    vec = BatchedHouseEnv(4, scenario=scenario, episode_days=0.5)
    starts = [scenario.start + pd.Timedelta(days=d) for d in (180, 190, 200, 150)]
    vec.reset(seed=1, options={"start": starts})
    thermal = vec._engine.dyn.thermal
    rng = np.random.default_rng(2)
    aired = blinds = 0
    for _ in range(60):
        vec.step(rng.uniform(-1, 1, (4, 18)).astype(np.float32))
        aired += int(thermal.windows_open.sum())
        blinds += int(thermal.blinds_down.sum())
    assert aired > 0 and blinds > 0


class _Subclass(HouseEnv):
    pass


def test_unsupported_configuration_falls_back_to_the_loop_and_stays_equal():
    vec = BatchedHouseEnv(2, scenario=WEEK, env_class=_Subclass, episode_days=0.25)
    assert not vec.fast and "_Subclass" in vec.fallback_reason
    assert len(vec.envs) == 2
    rng = np.random.default_rng(5)
    actions = _actions(rng, 30, 2, 18, 0.0)
    assert _compare_rollouts(vec, lambda: HouseEnv(WEEK, episode_days=0.25), [3, 4], actions) == 2
    fast = BatchedHouseEnv(2, scenario=WEEK, episode_days=0.25)
    assert fast.fast
    with pytest.raises(AttributeError, match="arrays"):
        fast.envs  # noqa: B018
    assert fast.get_attr("action_names") == (fast.action_names,) * 2
    assert fast.call("warm_forecast_cache")[0] == load_scenario(WEEK).index.size


def test_array_engine_per_env_starts_with_random_ones_and_reseeding():
    """``None`` in the start list keeps that house's random start; a later reset(seed=…) reseeds, a
    reset() without a seed continues each house's RNG — as N single environments."""
    scenario = load_scenario(WEEK)
    starts = [scenario.start + pd.Timedelta(hours=30), None, None]
    vec = BatchedHouseEnv(3, scenario=WEEK, episode_days=0.25)
    assert vec.fast
    rng = np.random.default_rng(9)
    actions = _actions(rng, 40, 3, 18, 0.02)
    _compare_rollouts(vec, lambda: HouseEnv(WEEK, episode_days=0.25), [7, 8, 9], actions, starts)
    singles = [HouseEnv(WEEK, episode_days=0.25) for _ in range(3)]
    first = [env.reset(seed=seed)[0] for seed, env in zip((4, 5, 6), singles, strict=True)]
    obs, _ = vec.reset(seed=4)
    np.testing.assert_allclose(obs, np.stack(first), rtol=0, atol=TOL)
    obs, info = vec.reset()
    expected = [env.reset() for env in singles]
    np.testing.assert_allclose(obs, np.stack([o for o, _ in expected]), rtol=0, atol=TOL)
    assert list(info["time"]) == [i["time"] for _, i in expected]


def test_array_engine_scenario_initial_state():
    """A scenario that sets the rooms' and battery's initial state: the same on the array engine."""
    import dataclasses

    scenario = dataclasses.replace(load_scenario(WEEK), initial_room_temp_c=18.5, initial_battery_soc=0.95)
    vec = BatchedHouseEnv(2, scenario=scenario, episode_days=0.25)
    assert vec.fast
    actions = _actions(np.random.default_rng(4), 30, 2, 18, 0.05)
    _compare_rollouts(vec, lambda: HouseEnv(scenario, episode_days=0.25), [1, 2], actions)


def _arrays_only(monkeypatch):
    """No house moved in Python (``batched_stragglers``): the array paths alone, as with many houses."""
    import twin.env.batched_dynamics as dynamics
    import twin.env.batched_fast as fast

    monkeypatch.setattr(dynamics, "MAX_STRAGGLERS", 0)
    monkeypatch.setattr(fast, "MAX_STRAGGLERS", 0)


@pytest.mark.parametrize("arrays_only", [False, True])
def test_battery_reaching_its_limit_within_a_step_equals_single_envs(arrays_only, monkeypatch):
    """Full charge, then full discharge: SOC limits are reached inside steps (no sub-step of their own)."""
    if arrays_only:
        _arrays_only(monkeypatch)
    n, seeds, days = 4, [11, 12, 13, 14], 0.5
    vec = gym.make_vec("pems/House-v0", num_envs=n, vectorization_mode="vector_entry_point", scenario=WEEK,
                       episode_days=days)
    dyn = vec.unwrapped._engine.dyn
    idle_rests = []
    original = dyn._idle_rest
    dyn._idle_rest = lambda *args, **kwargs: (idle_rests.append(1), original(*args, **kwargs))[1]
    rng = np.random.default_rng(8)
    actions = rng.uniform(-1.0, 1.0, (40, n, 18)).astype(np.float32)
    actions[:20, :, 0], actions[20:, :, 0] = 1.0, -1.0  # battery: full charge, then full discharge
    actions[:, :, 1] = 1.0  # the car charges at full power whenever it is home
    _compare_rollouts(vec, lambda: HouseEnv(WEEK, episode_days=days), seeds, actions)
    assert idle_rests, "no battery reached its limit inside a step"


def test_non_finite_actions_leave_devices_alone_as_single_envs():
    """NaN components (no command for that device) in some houses and steps: the masked paths."""
    n, seeds, days = 3, [21, 22, 23], 0.25
    vec = gym.make_vec("pems/House-v0", num_envs=n, vectorization_mode="vector_entry_point", scenario=WEEK,
                       episode_days=days)
    rng = np.random.default_rng(9)
    actions = rng.uniform(-1.0, 1.0, (30, n, 18)).astype(np.float32)
    actions[rng.random((30, n, 18)) < 0.08] = np.nan  # a device here and there gets no command
    actions[5:8, 1, 2:] = np.nan  # one house's relays left alone for a while (leases run out: the thermostat)
    _compare_rollouts(vec, lambda: HouseEnv(WEEK, episode_days=days), seeds, actions)


@pytest.mark.parametrize("arrays_only", [False, True])
@pytest.mark.parametrize(("cls", "settings"), [(HouseEnv, {}), (HouseEnv, {"decision_interval_s": 1800.0}),
                                               (BatteryEnv, {"decision_interval_s": 120.0})])
def test_stragglers_in_python_equal_single_envs(cls, settings, arrays_only, monkeypatch):
    """The last houses of a step moved in Python (``batched_stragglers``): cars arriving, leaving and
    becoming full, batteries on their limits, leases running out (thermostat ticks go back to the arrays),
    a step over two data steps (the occupants look around: back to the arrays) — as N single environments."""
    import twin.env.batched_dynamics as dynamics

    calls = {True: 0, False: 0}
    original = dynamics.advance_stragglers

    def counted(*args):
        done = original(*args)
        calls[done] += 1
        return done

    monkeypatch.setattr(dynamics, "advance_stragglers", counted)
    if arrays_only:
        _arrays_only(monkeypatch)
    n, days = 6, 1.0
    scenario = load_scenario(WEEK)
    vec = BatchedHouseEnv(n, scenario=scenario, env_class=cls, episode_days=days, **settings)
    assert vec.fast
    rng = np.random.default_rng(12)
    steps, width = 120, vec.single_action_space.shape[0]
    actions = rng.uniform(-1.2, 1.2, (steps, n, width))
    actions[:, :, 0] = np.where(rng.random((steps, n)) < 0.5, 1.0, -1.0)  # batteries driven onto their limits
    actions[rng.random((steps, n)) < 0.3, 0] = np.nan  # leases run out (at the end of a straggler's step too)
    if width > 1:  # cars charge at full power (they become full within steps) or are left alone
        actions[:, :, 1] = np.where(rng.random((steps, n)) < 0.3, np.nan, 1.0)
        actions[:, :, 2:] = np.where(rng.random((steps, n, 1)) < 0.1, np.nan, actions[:, :, 2:])  # thermostats
    actions = actions.astype(np.float32)
    _compare_rollouts(vec, lambda: cls(scenario, episode_days=days, **settings), [31 + i for i in range(n)], actions)
    assert calls[True] > 0 or arrays_only, "no house was moved in Python"
    if settings.get("decision_interval_s") == 1800.0 and not arrays_only:
        assert calls[False] > 0, "no straggler went back to the arrays"


@pytest.mark.parametrize("n", [4, 12])  # the PV after curtailment in Python for a few houses, as arrays for many
def test_curtailed_pv_in_the_observation_equals_single_envs(n, monkeypatch):
    """A low export limit in summer: PV is curtailed in the observation of some houses, as in single environments."""
    import dataclasses

    import twin.env.batched_fast as fast
    from twin.config import reference_house

    curtailed = {"python": 0, "arrays": 0}
    in_python, as_arrays = fast.pv_kw_after_curtailment, fast.curtailed_pv_kw_v

    def python(dyn, h, i):
        pv_kw = in_python(dyn, h, i)
        curtailed["python"] += int(pv_kw < dyn.pv_kw[i])
        return pv_kw

    def arrays(net_kw, pv_kw, limit_kw):
        out = as_arrays(net_kw, pv_kw, limit_kw)
        curtailed["arrays"] += int(np.count_nonzero(out))
        return out

    monkeypatch.setattr(fast, "pv_kw_after_curtailment", python)
    monkeypatch.setattr(fast, "curtailed_pv_kw_v", arrays)
    house = reference_house()
    house = dataclasses.replace(house, grid=dataclasses.replace(house.grid, export_limit_kw=2.0))
    scenario = load_scenario("year-v1")
    starts = [scenario.start + pd.Timedelta(days=160 + 5 * k, hours=9) for k in range(n)]
    vec = BatchedHouseEnv(n, scenario=scenario, house=house, episode_days=0.25)
    assert vec.fast
    rng = np.random.default_rng(6)
    actions = _actions(rng, 20, n, 18, 0.0)
    actions[:, :, 0] = np.minimum(actions[:, :, 0], 0.0)  # batteries idle or discharging, no car, no heating:
    actions[:, :, 1:] = np.where(rng.random((20, n, 1)) < 0.8, -1.0, actions[:, :, 1:])  # exports above the limit
    _compare_rollouts(vec, lambda: HouseEnv(scenario, house=house, episode_days=0.25), list(range(n)), actions,
                      starts)
    assert curtailed["python" if n < 10 else "arrays"] > 0
