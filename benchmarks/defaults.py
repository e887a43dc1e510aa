"""What ``pems bench`` runs without arguments (kept apart so that the CLI starts without importing the twin)."""

DEFAULT_SCENARIOS = ("winter-week-v1",)
DEFAULT_CONTROLLERS = ("rule-based", "mpc", "oracle")
DEFAULT_OUT = "runs/bench"
