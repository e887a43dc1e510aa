"""The Gymnasium environments: API conformance, seeding, snapshots, vector envs, and one model with the runner."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import twin.env  # noqa: F401 - registers the ids
from controllers.rl_policy import MlpPolicy, PolicyController
from twin.config import reference_house
from twin.contracts import BatteryCommand, BatteryMode
from twin.env import ENV_IDS, INCREMENT_KEYS, BatteryEnv, EnvConfig, HouseEnv
from twin.errors import ConfigError
from twin.registry import load_scenario
from twin.runner import RunSettings, simulate
from twin.safety import envelope_problems

WEEK = "winter-week-v1"


def two_days(name: str = WEEK):
    full = load_scenario(name)
    return full.window(full.start, full.start + pd.Timedelta(days=2))


@pytest.fixture(scope="module")
def house_env() -> HouseEnv:
    return HouseEnv(WEEK, episode_days=1.0)


def rollout(env: gym.Env, actions: np.ndarray, seed: int | None = 0, options: dict | None = None) -> list:
    obs, info = env.reset(seed=seed, options=options)
    out = [(obs.copy(), info["time"])]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append((obs.copy(), reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return out


def assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert gym.utils.env_checker.data_equivalence(x, y, exact=True)


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_check_env_is_clean(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning of Gymnasium's checker fails the test
        warnings.filterwarnings("ignore", message=".*dayofyear is deprecated")  # pvlib on pandas 3, not ours
        env = gym.make(env_id, scenario=WEEK, episode_days=1.0)
        check_env(env.unwrapped)
        env.close()


def test_ids_are_registered_on_import_and_by_module_prefix():
    assert set(ENV_IDS) <= set(gym.registry)
    env = gym.make("twin.env:pems/Battery-v0", scenario="summer-week-v1")
    assert isinstance(env.unwrapped, BatteryEnv)
    assert env.unwrapped.action_names == ("battery",)


def test_spaces_follow_the_house(house_env):
    house = reference_house()
    n = len(house.rooms)
    assert house_env.action_space.shape == (2 + n,)
    assert house_env.action_names[:2] == ("battery", "ev")
    assert house_env.observation_space.shape == (4 * n + 9 + 3 * 24 + 4,)
    assert len(house_env.feature_names) == house_env.observation_space.shape[0]
    assert house_env.feature_names[0] == f"room_temp_c.{house.rooms[0].name}"
    battery = BatteryEnv("summer-week-v1")
    assert "battery_soc" in battery.feature_names and not any(f.startswith("room_") for f in battery.feature_names)
    assert battery.observation_space.shape == (9 + 3 * 24 + 4 - 3,)  # no rooms, no car


def test_observation_holds_the_twin_state_in_documented_units():
    env = HouseEnv(WEEK, episode_days=1.0, normalize=False, random_start=False)
    vector, _ = env.reset(seed=0)
    obs = env.observation
    names = env.feature_names
    value = dict(zip(names, vector.tolist(), strict=True))
    room = env.house.rooms[3].name
    assert value[f"room_temp_c.{room}"] == pytest.approx(obs.room_temp_c[3], abs=1e-5)
    assert value["battery_soc"] == pytest.approx(obs.battery_soc, abs=1e-6)
    assert value["import_price_per_kwh"] == pytest.approx(obs.import_price_per_kwh, abs=1e-6)
    # Hourly means of the issued forecast (not the actuals) for the next 24 h.
    issued = env.observation.forecast.import_price_per_kwh[:96].reshape(24, 4).mean(axis=1)
    got = np.array([value[f"forecast.import_price_per_kwh+{h}h"] for h in range(24)])
    np.testing.assert_allclose(got, issued, rtol=1e-6)
    assert value["time_of_day_cos"] == pytest.approx(1.0)  # the week starts at local midnight
    normalized = HouseEnv(WEEK, episode_days=1.0, random_start=False).reset(seed=0)[0]
    feature = env.encoder.features[3]
    assert normalized[3] == pytest.approx((vector[3] - feature.center) / feature.scale, abs=1e-5)


def test_actions_map_to_documented_commands(house_env):
    house_env.reset(seed=1)
    obs = house_env.observation
    house = house_env.house
    charger, battery = house.ev_charger, house.battery
    a = np.zeros(house_env.action_space.shape, dtype=np.float32)
    cmd = house_env.decoder.decode(a, obs)
    assert cmd.battery == BatteryCommand(BatteryMode.SELF_CONSUMPTION), "zero: the inverter's own mode"
    assert cmd.ev_power_kw == pytest.approx(charger.min_power_kw + (charger.max_power_kw - charger.min_power_kw) / 3)
    a[0], a[1], a[2:] = -0.55, 1.0, -1.0
    a[2 + 5] = 0.3
    cmd = house_env.decoder.decode(a, obs)
    assert cmd.battery.mode is BatteryMode.POWER_SETPOINT
    assert cmd.battery.power_kw == pytest.approx(-0.5 * battery.max_discharge_kw, rel=1e-6)
    assert cmd.ev_power_kw == pytest.approx(charger.max_power_kw)
    assert cmd.relay_on == tuple(j == 5 for j in range(len(house.rooms)))
    assert (cmd.until - obs.time).total_seconds() == pytest.approx(1800.0)
    a[0], a[1] = 1.0, -0.5
    cmd = house_env.decoder.decode(a, obs)
    assert cmd.battery.power_kw == pytest.approx(battery.max_charge_kw) and cmd.ev_power_kw == 0.0
    a[0], a[1] = 0.1 + 1e-6, -0.5 + 1e-6
    cmd = house_env.decoder.decode(a, obs)
    assert 0.0 < cmd.battery.power_kw < 1e-4, "the setpoint grows from zero at the band's edge"
    assert cmd.ev_power_kw == pytest.approx(charger.min_power_kw, rel=1e-5)
    a[0], a[1] = np.nan, np.inf
    cmd = house_env.decoder.decode(a, obs)
    assert cmd.battery is None and cmd.ev_power_kw is None, "a non-finite action leaves the device alone"
    with pytest.raises(ValueError, match=r"action has shape \(3,\)"):
        house_env.decoder.decode(np.zeros(3), obs)


def test_setpoint_heating_is_a_thermostat_target():
    env = HouseEnv(WEEK, episode_days=1.0, heating="setpoint", random_start=False)
    env.reset(seed=0)
    obs = env.observation
    a = np.zeros(env.action_space.shape, dtype=np.float32)
    relays = np.array(env.decoder.decode(a, obs).relay_on)
    np.testing.assert_array_equal(relays, obs.room_temp_c < obs.comfort_lower_c + 1.0)
    a[2:] = -1.0
    np.testing.assert_array_equal(np.array(env.decoder.decode(a, obs).relay_on), obs.room_temp_c < obs.comfort_lower_c)


def test_same_seed_and_actions_give_identical_trajectories():
    actions = np.random.default_rng(5).uniform(-1, 1, (150, 18)).astype(np.float32)
    first = rollout(HouseEnv(WEEK, episode_days=2.0), actions, seed=42)
    second = rollout(HouseEnv(WEEK, episode_days=2.0), actions, seed=42)
    assert_same(first, second)
    other = rollout(HouseEnv(WEEK, episode_days=2.0), actions, seed=43)
    assert other[0][1] != first[0][1], "another seed starts the episode elsewhere"


def test_snapshot_restore_gives_identical_futures(house_env):
    rng = np.random.default_rng(9)
    house_env.reset(seed=3)
    for a in rng.uniform(-1, 1, (30, 18)).astype(np.float32):
        house_env.step(a)
    snap = house_env.snapshot()
    actions = rng.uniform(-1, 1, (40, 18)).astype(np.float32)

    def future(env: HouseEnv) -> list:
        out = [(o.copy(), r, info) for o, r, _, _, info in (env.step(a) for a in actions)]
        out.append(env.reset()[0])  # the RNG is part of the state: the next episode starts alike
        return out

    first = future(house_env)
    obs = house_env.restore(snap)
    assert obs.shape == house_env.observation_space.shape
    assert_same(future(house_env), first)
    twin_env = HouseEnv(WEEK, episode_days=1.0)  # a snapshot restores into another instance too
    twin_env.restore(snap)
    assert_same(future(twin_env), first)


def test_episodes_truncate_after_episode_days_and_at_the_scenario_end():
    env = HouseEnv(WEEK, episode_days=0.25, random_start=False)
    steps = rollout(env, np.zeros((100, 18), dtype=np.float32))
    assert len(steps) == 1 + 24 and steps[-1][3] is True and not any(s[2] for s in steps[1:])
    start = load_scenario(WEEK).end - pd.Timedelta(hours=2)
    steps = rollout(env, np.zeros((100, 18), dtype=np.float32), options={"start": start})
    assert len(steps) == 1 + 8, "truncated at the scenario's end, before episode_days"
    assert np.isfinite(steps[-1][0]).all()
    whole = HouseEnv(two_days(), episode_days=None, random_start=True, decision_interval_s=3600.0)
    assert len(rollout(whole, np.zeros((100, 18), dtype=np.float32))) <= 1 + 48


def _battery_snapshot():
    env = BatteryEnv("summer-week-v1")
    env.reset(seed=0)
    return env.snapshot()


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="unknown argument.*'episode_dayz'"):
        HouseEnv(WEEK, episode_dayz=1)
    with pytest.raises(ConfigError, match="longer than scenario"):
        HouseEnv(WEEK, episode_days=30)
    with pytest.raises(ConfigError, match="heating = 'duty'"):
        HouseEnv(WEEK, heating="duty")
    with pytest.raises(ConfigError, match="decision_interval_s = 5"):
        EnvConfig(decision_interval_s=5)
    with pytest.raises(ConfigError, match="comfort_per_kh"):
        EnvConfig(comfort_per_kh=-1.0)
    env = HouseEnv(WEEK, episode_days=1.0)
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['begin'\]"):
        env.reset(options={"begin": "2024-01-15"})
    with pytest.raises(ValueError, match="must be a data step"):
        env.reset(options={"start": pd.Timestamp("2024-01-15 00:07", tz="Europe/Prague")})
    with pytest.raises(ValueError, match="timezone-aware"):
        env.reset(options={"start": "2024-01-15 00:00"})
    with pytest.raises(gym.error.ResetNeeded):
        HouseEnv(WEEK, episode_days=1.0).step(np.zeros(18, dtype=np.float32))
    short = HouseEnv(WEEK, episode_days=1 / 24, random_start=False)
    steps = rollout(short, np.zeros((10, 18), dtype=np.float32))
    assert len(steps) == 5 and steps[-1][3]
    with pytest.raises(gym.error.ResetNeeded, match="the episode has ended"):
        short.step(np.zeros(18, dtype=np.float32))
    with pytest.raises(ValueError, match="cannot be restored into"):
        short.restore(_battery_snapshot())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_envs_step_and_autoreset(mode):
    envs = gym.make_vec("pems/Battery-v0", num_envs=2, vectorization_mode=mode, scenario="summer-week-v1",
                        episode_days=0.25)
    try:
        obs, info = envs.reset(seed=[1, 2])
        assert obs.shape == (2, envs.single_observation_space.shape[0])
        assert not np.array_equal(obs[0], obs[1])
        truncations = 0
        for _ in range(30):  # episodes of 24 steps: both sub-environments reset once
            obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
            assert obs.shape[0] == 2 and np.isfinite(reward).all() and not terminated.any()
            truncations += int(truncated.sum())
        assert truncations == 2
        assert set(INCREMENT_KEYS) <= set(info)
    finally:
        envs.close()


def test_info_increments_balance_and_reward_follows_the_formula():
    env = HouseEnv(WEEK, episode_days=1.0, comfort_per_kh=2.5, ev_shortfall_per_kwh=0.7)
    env.reset(seed=4)
    rng = np.random.default_rng(1)
    for a in rng.uniform(-1, 1, (96, 18)).astype(np.float32):
        _, reward, _, _, info = env.step(a)
        assert set(INCREMENT_KEYS) <= set(info)
        balance = (info["pv_kwh"] + info["import_kwh"] + info["battery_discharge_kwh"] - info["base_load_kwh"]
                   - info["heating_kwh"] - info["ev_kwh"] - info["battery_charge_kwh"] - info["export_kwh"])
        assert abs(balance) < 1e-9
        assert reward == pytest.approx(-(info["cost"] + 2.5 * info["discomfort_kh"] + 0.7 * info["ev_unmet_kwh"]))


def test_battery_env_reward_is_minus_cost():
    env = gym.make("pems/Battery-v0", scenario="summer-week-v1")
    env.reset(seed=0)
    for a in np.linspace(-1, 1, 20, dtype=np.float32):
        _, reward, _, _, info = env.step(np.array([a], dtype=np.float32))
        assert reward == -info["cost"] and info["discomfort_kh"] == 0.0


def test_episode_sums_equal_the_runner_kpis_of_the_same_policy():
    """One model, one mapping: the env and the adapter in ``simulate`` live through the same run."""
    scenario = two_days()
    house = reference_house()
    rng = np.random.default_rng(0)
    env = HouseEnv(scenario, house, episode_days=None, random_start=False)
    n_obs, n_act = env.observation_space.shape[0], env.action_space.shape[0]
    policy = MlpPolicy((rng.normal(0, 0.3, (16, n_obs)), rng.normal(0, 1.0, (n_act, 16))),
                       (np.zeros(16), rng.normal(0, 0.3, n_act)))
    seen_env, seen_runner = [], []

    obs, _ = env.reset(seed=0)
    totals = dict.fromkeys(INCREMENT_KEYS, 0.0)
    truncated = False
    while not truncated:
        seen_env.append(obs)
        obs, _, _, truncated, info = env.step(policy(obs))
        for key in INCREMENT_KEYS:
            totals[key] += info[key]

    def recording(vector: np.ndarray) -> np.ndarray:
        seen_runner.append(vector)
        return policy(vector)

    controller = PolicyController(house, recording, env.config, env.feature_names, env.action_names)
    result = simulate(house, scenario, controller, RunSettings(decision_interval_s=900.0))
    np.testing.assert_array_equal(np.array(seen_runner), np.array(seen_env))
    kpis = result.kpis
    for key in ("cost", "import_kwh", "export_kwh", "pv_kwh", "discomfort_kh", "ev_unmet_kwh",
                "grid_limit_violation_kwh"):
        assert totals[key] == pytest.approx(kpis[key], rel=1e-9, abs=1e-9), key
    assert totals["relay_switches"] == kpis["relay_switches"]
    assert kpis["relay_switches"] > 0 and kpis["import_kwh"] > 0


@pytest.fixture(scope="module")
def minute_env() -> HouseEnv:
    return HouseEnv(WEEK, episode_days=1.0, decision_interval_s=60.0)  # faster than the relays may switch


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=arrays(np.float32, (15, 18), elements=st.floats(width=32)))  # any float32: huge, ±inf, NaN
def test_whatever_the_action_the_twin_only_gets_safe_commands(minute_env, actions):
    env = minute_env
    applied = []
    original = env.twin.apply

    def spy(command):
        applied.append((command, env.observation))
        original(command)

    env.twin.apply = spy
    try:
        env.reset(seed=0)
        for a in actions:
            obs, reward, _, _, _ = env.step(a)
            assert env.observation_space.contains(obs) and math.isfinite(reward)
    finally:
        del env.twin.apply
    safety = env.house.safety
    state = np.array(applied[0][1].relay_on)
    changed_at = np.full(len(state), -np.inf)  # last change of each relay, as far as anyone could know
    for command, obs in applied:
        assert envelope_problems(command, obs, env.house, safety) == []
        now = obs.time.timestamp()
        actual = np.asarray(obs.relay_on)
        changed_at[actual != state] = now  # switched by the local thermostat since (its lease had run out)
        state = actual
        if command.relay_on is None:
            continue
        wanted = np.array(command.relay_on)
        for j in np.flatnonzero(wanted != state):
            minimum = safety.relay_min_on_s if state[j] else safety.relay_min_off_s
            assert now - changed_at[j] >= minimum - 1e-6, f"room {j} switched after {now - changed_at[j]} s"
            changed_at[j] = now
        state = wanted


def test_render_ansi_describes_the_state():
    env = gym.make("pems/House-v0", scenario=WEEK, render_mode="ansi", episode_days=1.0)
    env.reset(seed=0)
    text = env.render()
    assert "rooms" in text and "battery" in text and "price" in text
    with pytest.raises(ValueError, match="render_mode = 'human'"):
        HouseEnv(WEEK, render_mode="human")


def test_docs_snippet_runs():
    """The Python snippet of docs/rl.md runs as written."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "rl.md").read_text(encoding="utf-8")
    snippet = text[text.index("```python") + len("```python"):text.index("```\n", text.index("```python"))]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*dayofyear is deprecated")
        exec(compile(snippet, "docs/rl.md", "exec"), {})  # noqa: S102 - our own documentation


def test_env_speed_benchmark_prints_its_figures(capsys):
    from benchmarks import env_speed

    figures = env_speed.main(["--scenario", WEEK, "--steps", "300", "--repeat", "1", "--cartpole-steps", "1000"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(figures))
    for key in ("single", "single_cold", "vector_sync_2", "vector_async_2", "cartpole_single", "battery_single"):
        assert figures[key]["steps_per_s"] > 0


def test_a_warm_forecast_cache_changes_nothing_but_speed():
    actions = np.random.default_rng(2).uniform(-1, 1, (60, 18)).astype(np.float32)
    cold = HouseEnv(WEEK, episode_days=1.0)
    warm = HouseEnv(WEEK, episode_days=1.0)
    assert warm.warm_forecast_cache() == 672
    assert_same(rollout(cold, actions, seed=8), rollout(warm, actions, seed=8))
