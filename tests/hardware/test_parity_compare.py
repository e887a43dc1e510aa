"""What counts as the same command when the two worlds are compared (no broker needed)."""

from hardware.live.parity import POWER_TOLERANCE_KW, compare, same_command


def command(power_kw: float, relay: bool = False, mode: str = "power_setpoint") -> dict:
    return {"until": "2024-01-15T06:00:00+01:00", "relay_on": {"living": relay},
            "battery": {"mode": mode, "power_kw": power_kw, "reserve_soc": None}, "ev_power_kw": 11.04,
            "plan_status": "optimal"}


def test_last_bit_differences_in_a_setpoint_are_the_same_command():
    assert same_command(command(-0.19999999999999557), command(-0.1999999999999711))


def test_a_real_difference_is_not():
    assert not same_command(command(-0.2), command(-0.2 + 10 * POWER_TOLERANCE_KW))
    assert not same_command(command(-0.2, relay=True), command(-0.2, relay=False))
    assert not same_command(command(-0.2, mode="self_consumption"), command(-0.2))
    assert not same_command(command(-0.2), None)
    assert not same_command({"a": 1}, {"a": True})  # a flag is not a number


def test_compare_counts_decisions_and_names_the_first_difference():
    sim = [{"time": "t0", "sent": command(1.0)}, {"time": "t1", "sent": command(1.0)},
           {"time": "t2", "sent": command(1.0)}]
    live = [{"time": "t0", "sent": command(1.0 + 1e-12)}, {"time": "t1", "sent": command(2.0)},
            {"time": "t2", "sent": command(1.0)}]
    report = compare(sim, live, {"cost": 1.0}, {"cost": 1.005})
    assert (report.decisions, report.identical, report.first_difference) == (3, 2, "t1")
    assert report.kpis_within(0.01) and not report.kpis_within(0.001)
