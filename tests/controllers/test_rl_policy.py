"""The RL-policy adapter: policy files, SB3 export, registration by name, cadence, and the PPO example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import random_policy, simple_scenario, small_house

from controllers.rl_policy import (
    POLICY_PATH_ENV,
    PolicyController,
    load_mlp_policy,
    save_mlp_policy,
)
from twin.config import reference_house
from twin.conformance import check_controller
from twin.env import EnvConfig
from twin.errors import ConfigError
from twin.registry import ControllerContext, controller_entries, load_scenario, make_controller
from twin.runner import RunSettings, simulate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def policy_file(tmp_path) -> Path:
    house = reference_house()
    config = EnvConfig(heating="setpoint", forecast_hours=12)
    policy, features, actions = random_policy(house, config)
    return save_mlp_policy(tmp_path / "tiny.npz", policy, config, features, actions, env_id="pems/House-v0")


def test_policy_file_round_trip(policy_file):
    policy, meta = load_mlp_policy(policy_file)
    assert meta["env_id"] == "pems/House-v0" and meta["config"]["heating"] == "setpoint"
    assert EnvConfig.from_dict(meta["config"]).forecast_hours == 12
    x = np.random.default_rng(1).normal(size=policy.obs_dim).astype(np.float32)
    a = policy(x)
    assert a.shape == (policy.action_dim,) and (np.abs(a) <= 1.0).all()
    expected = np.clip(policy.weights[1] @ np.tanh(policy.weights[0] @ x + policy.biases[0]) + policy.biases[1], -1, 1)
    np.testing.assert_allclose(a, expected, rtol=1e-6)


def test_bad_policy_files_are_named(tmp_path, policy_file):
    with pytest.raises(ConfigError, match="policy file not found"):
        load_mlp_policy(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="junk.npz: not a policy file"):
        load_mlp_policy(junk)
    partial = tmp_path / "partial.npz"
    np.savez(partial, meta=np.array(json.dumps({"format": "pems-mlp-policy-v1", "layers": 2, "activation": "tanh"})),
             weights_0=np.zeros((2, 3)), bias_0=np.zeros(2))
    with pytest.raises(ConfigError, match="partial.npz: incomplete policy file"):
        load_mlp_policy(partial)
    with pytest.raises(ConfigError, match="policy files end in .npz"):
        policy, features, actions = random_policy(reference_house(), EnvConfig())
        save_mlp_policy(tmp_path / "p.pkl", policy, EnvConfig(), features, actions)
    # A policy trained for the 16-room house on a 2-room house: refused, naming the first difference.
    with pytest.raises(ConfigError, match="the policy expects 113 features, house 'small' gives"):
        PolicyController.load(policy_file, small_house())


def test_the_adapter_decides_on_its_trained_cadence():
    house = small_house()
    config = EnvConfig(decision_interval_s=900.0)
    policy, features, actions = random_policy(house, config)
    calls = []

    def counting(vector):
        calls.append(vector)
        return policy(vector)

    controller = PolicyController(house, counting, config, features, actions)
    scenario = simple_scenario(days=0.5)
    result = simulate(house, scenario, controller, RunSettings(decision_interval_s=300.0))
    assert len(result.log) == 144 and len(calls) == 48, "one policy call per 15 min, commands held in between"
    controller.reset()
    simulate(house, scenario, controller, RunSettings(decision_interval_s=300.0))
    assert len(calls) == 96


def test_policies_on_the_path_are_registered_controllers(policy_file, monkeypatch):
    monkeypatch.setenv(POLICY_PATH_ENV, str(policy_file.parent))
    controller_entries.cache_clear()
    try:
        assert "rl-tiny" in controller_entries()
        house = reference_house()
        full = load_scenario("winter-week-v1")
        day = full.window(full.start, full.start + pd.Timedelta(hours=12))
        controller = make_controller("rl-tiny", ControllerContext(house, day, 300.0))
        assert isinstance(controller, PolicyController) and controller.config.heating == "setpoint"
        check_controller(lambda: make_controller("rl-tiny", ControllerContext(house, day, 300.0)), house, day)
    finally:
        monkeypatch.delenv(POLICY_PATH_ENV)
        controller_entries.cache_clear()
    assert not any(name.startswith("rl-") for name in controller_entries())


def test_cli_runs_a_policy_by_name(policy_file, tmp_path):
    cli = [sys.executable, "-c", "from twin.cli import main; main()", "simulate", "--scenario", "summer-week-v1",
           "--no-plots"]
    env = {**os.environ, POLICY_PATH_ENV: str(policy_file)}
    out = tmp_path / "run"
    done = subprocess.run([*cli, "--controller", "rl-tiny", "--out", str(out)], env=env, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["energy_balance_max_abs_kwh"] < 1e-6
    env[POLICY_PATH_ENV] = str(tmp_path / "gone.npz")
    missing = subprocess.run([*cli, "--controller", "rl-gone", "--out", str(tmp_path / "x")], env=env,
                             capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert missing.returncode == 2 and "gone.npz: policy file not found" in missing.stderr


def test_sb3_export_matches_predict(tmp_path):
    sb3 = pytest.importorskip("stable_baselines3")
    import gymnasium as gym

    import twin.env  # noqa: F401
    from controllers.rl_policy import export_sb3_policy

    env = gym.make("pems/Battery-v0", scenario="summer-week-v1")
    model = sb3.PPO("MlpPolicy", env, n_steps=64, batch_size=64, seed=0, device="cpu")
    model.learn(64)  # weights away from their initial values
    unwrapped = env.unwrapped
    path = export_sb3_policy(model, tmp_path / "ppo.npz", unwrapped.config, unwrapped.feature_names,
                             unwrapped.action_names)
    policy, _ = load_mlp_policy(path)
    obs, _ = env.reset(seed=3)
    for _ in range(50):
        expected, _ = model.predict(obs, deterministic=True)
        np.testing.assert_allclose(policy(obs), expected, atol=1e-5)
        obs, *_ = env.step(env.action_space.sample())


def test_train_ppo_example_smoke(tmp_path):
    pytest.importorskip("stable_baselines3")
    out = tmp_path / "ppo"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_ppo.py"), "--scenario", "winter-week-v1", "--episode-days",
         "1", "--timesteps", "64", "--n-steps", "32", "--n-envs", "1", "--vec", "sync", "--eval-days", "0.5",
         "--no-plots", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(summary["kpis"]) == {"rule-based", "ppo"}
    for name in ("policy.npz", "model.zip", "comparison.json", "eval/ppo/kpis.json", "eval/rule-based/log.parquet"):
        assert (out / name).exists(), name
    policy, meta = load_mlp_policy(out / "policy.npz")
    assert meta["env_id"] == "pems/House-v0" and policy.action_dim == 18
