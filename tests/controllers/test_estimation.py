"""Thermal identification (least squares on simulation error) and the Kalman filter over every node."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import simpy
from builders import PRAGUE, simple_scenario, small_house
from thermal_data import TRUE_COUPLINGS, TRUE_ROOMS, synthetic_measurements

from controllers.estimation.evaluate import prediction_errors
from controllers.estimation.house_toml import house_to_toml
from controllers.estimation.identify import IdentificationError, IdentifySettings, detect_phases, identify
from controllers.estimation.kalman import ThermalStateEstimator
from controllers.rule_based import RuleBasedController
from twin.config import GridConfig, HouseConfig, house_from_dict, load_house, reference_house
from twin.house import SimHouse
from twin.thermal import build_matrices, discretize


def test_modal_simulation_matches_the_exact_discretisation():
    data, nodes = synthetic_measurements(days=1, noise_c=0.0)
    m = build_matrices(TRUE_ROOMS, TRUE_COUPLINGS)
    phi, gamma_out, gamma = discretize(m, 600.0)
    x = np.array([20.0, 19.0, 18.0, 17.5])
    for k in range(50):
        np.testing.assert_allclose(nodes[k], x, atol=1e-9)
        heat = np.array([*data.heater_w[k], data.facade_w_m2[k, 0] * 1.5, data.facade_w_m2[k, 1] * 0.3])
        x = phi @ x + gamma_out * data.outdoor_c[k] + gamma @ heat


@pytest.fixture(scope="module")
def identified():
    data, _ = synthetic_measurements(days=8)
    train = data.window(data.times[0], data.times[0] + pd.Timedelta(days=5))
    test = data.window(data.times[0] + pd.Timedelta(days=5), data.times[-1] + pd.Timedelta(minutes=10))
    result = identify(train, IdentifySettings(name="two-rooms", max_evaluations=40), PRAGUE)
    return result, test


def test_identification_predicts_unseen_days_within_a_tenth_of_a_degree(identified):
    result, test = identified
    assert result.train_rmse_c < 0.1
    summary, _ = prediction_errors(result.house, test, horizons_h=(1.0, 6.0, 24.0), warmup_h=12.0)
    assert summary.loc[24.0, "mae_c"] < 0.15
    assert summary.loc[24.0, "mae_c"] < 0.5 * summary.loc[24.0, "persistence_mae_c"]


def test_identified_house_round_trips_through_toml(identified, tmp_path):
    result, _ = identified
    path = tmp_path / "house.toml"
    path.write_text(house_to_toml(result.house, "identified\nfor a test"), encoding="utf-8")
    assert path.read_text().startswith("# identified\n# for a test\n")
    assert load_house(path) == result.house
    assert house_from_dict(__import__("tomllib").loads(house_to_toml(reference_house()))) == reference_house()


def test_identification_rejects_couplings_to_unknown_rooms(identified):
    _, test = identified
    with pytest.raises(IdentificationError, match="unknown room 'attic'"):
        identify(test, IdentifySettings(couplings=(("south", "attic"),)), PRAGUE)


def test_kalman_filter_finds_the_unmeasured_mass_temperatures():
    data, nodes = synthetic_measurements(days=3, seed=1, noise_c=0.05)
    house = HouseConfig(name="true", location=PRAGUE, grid=GridConfig(import_limit_kw=10, export_limit_kw=5),
                        rooms=tuple(TRUE_ROOMS), couplings=tuple(TRUE_COUPLINGS))
    estimator = ThermalStateEstimator(house)
    estimator.reset(data.air_c[0])  # mass guessed equal to the air: 2 and 1.5 K off
    heat = np.column_stack([data.heater_w, data.facade_w_m2[:, 0] * 1.5, data.facade_w_m2[:, 1] * 0.3])
    for k in range(1, len(data.times)):
        estimator.predict(600.0, data.outdoor_c[k - 1], heat[k - 1])
        estimator.correct(data.air_c[k])
    assert np.abs(estimator.nodes_c[2:] - nodes[-1, 2:]).max() < 0.3
    assert np.abs(estimator.nodes_c[:2] - nodes[-1, :2]).max() < 0.1
    assert (estimator.std_c[2:] < 1.0).all()


def test_the_estimator_tracks_the_twin_from_observations_alone():
    house = small_house(n_rooms=2, two_node=True)
    scenario = simple_scenario(days=2)
    env = simpy.Environment()
    twin = SimHouse(house, scenario, env)
    controller = RuleBasedController(house)
    estimator = ThermalStateEstimator(house)
    errors = []
    for _ in range(2 * 24 * 12 - 1):
        obs = twin.observe()
        nodes = estimator.update(obs)
        errors.append(np.abs(nodes - twin.node_temps_c()))
        twin.apply(controller.decide(obs))
        env.run(until=env.now + 300)
    errors = np.array(errors)
    # Same network, same inputs: the filter's prediction is the twin's exact step, so the estimate of
    # every node (mass included, never measured) agrees with the twin to rounding.
    assert errors[-12 * 24:].max() < 0.01


def test_phases_are_found_from_heater_power():
    index = pd.date_range("2013-08-21", periods=9 * 144, freq="10min", tz="Etc/GMT-1")
    frame = pd.DataFrame({"heater_power_kw.living": 0.0, "heater_power_kw.bath": 0.0}, index=index)
    frame.iloc[: 3 * 144] = 0.5  # all rooms heated
    frame.iloc[3 * 144: 6 * 144, 0] = 0.8  # the living room only
    phases = detect_phases(frame)
    assert list(phases["heated"]) == ["living,bath", "living", "(none: free float)"]
    # Boundaries are as sharp as the 6 h smoothing allows: within half a window.
    np.testing.assert_allclose(phases["hours"], [72, 72, 72], atol=3.0)
