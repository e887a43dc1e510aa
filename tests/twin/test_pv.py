"""PV: the twin's pvlib chain against pvlib's own ModelChain on the same weather."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
from builders import PRAGUE
from numpy.testing import assert_allclose

from twin.config import PvArrayConfig
from twin.pv import pv_ac_power_kw


def weather(days: int = 3) -> pd.DataFrame:
    idx = pd.date_range(pd.Timestamp("2024-06-20", tz="Europe/Prague"), periods=days * 96, freq="15min")
    loc = pvlib.location.Location(PRAGUE.latitude_deg, PRAGUE.longitude_deg, PRAGUE.timezone, PRAGUE.altitude_m)
    mid = idx + pd.Timedelta(minutes=7.5)
    cs = loc.get_clearsky(mid, model="ineichen", linke_turbidity=3.0)
    rng = np.random.default_rng(1)
    k = rng.uniform(0.3, 1.0, len(idx))
    return pd.DataFrame({"ghi_w_m2": cs["ghi"].to_numpy() * k, "dni_w_m2": cs["dni"].to_numpy() * k,
                         "dhi_w_m2": cs["dhi"].to_numpy(), "outdoor_temp_c": 18 + 8 * rng.uniform(size=len(idx)),
                         "wind_speed_m_s": rng.uniform(0, 6, len(idx))}, index=idx)


def test_pv_matches_pvlib_modelchain():
    # Same weather, PVWatts chain, Hay–Davies, SAPM close-mount cell temperature, no AOI/spectral loss.
    array = PvArrayConfig(name="roof", peak_power_kw=10.0, tilt_deg=35, azimuth_deg=180, inverter_ac_kw=8.0,
                          gamma_pdc_per_c=-0.0037, system_loss_fraction=0.14, inverter_nominal_efficiency=0.96)
    w = weather()
    ours = pv_ac_power_kw(w.index, 900.0, w, PRAGUE, [array])

    location = pvlib.location.Location(PRAGUE.latitude_deg, PRAGUE.longitude_deg, PRAGUE.timezone, PRAGUE.altitude_m)
    system = pvlib.pvsystem.PVSystem(
        surface_tilt=35, surface_azimuth=180, albedo=array.albedo,
        module_parameters={"pdc0": 10_000.0, "gamma_pdc": -0.0037},
        inverter_parameters={"pdc0": 8000.0 / 0.96, "eta_inv_nom": 0.96},
        temperature_model_parameters=pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["close_mount_glass_glass"],
        losses_parameters={k: 0.0 for k in ("shading", "snow", "mismatch", "wiring", "connections", "lid",
                                            "nameplate_rating", "age", "availability")} | {"soiling": 14.0},
    )
    chain = pvlib.modelchain.ModelChain(system, location, aoi_model="no_loss", spectral_model="no_loss",
                                        losses_model="pvwatts", transposition_model="haydavies")
    mid = w.index + pd.Timedelta(minutes=7.5)  # the twin places the sun at each interval's midpoint
    frame = pd.DataFrame({"ghi": w["ghi_w_m2"].to_numpy(), "dni": w["dni_w_m2"].to_numpy(),
                          "dhi": w["dhi_w_m2"].to_numpy(), "temp_air": w["outdoor_temp_c"].to_numpy(),
                          "wind_speed": w["wind_speed_m_s"].to_numpy()}, index=mid)
    chain.run_model(frame)
    theirs = np.clip(np.asarray(chain.results.ac, dtype=float) / 1000.0, 0.0, None)
    assert theirs.max() > 5.0, "a sunny June day produces"
    assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    assert ours.max() <= 8.0 + 1e-9, "inverter AC rating caps the output"
