"""The RL-policy adapter: any policy (observation vector → action vector) as a ``Controller``.

:class:`PolicyController` encodes each :class:`~twin.contracts.Observation` with the same
``ObservationEncoder`` and decodes the action with the same ``ActionDecoder`` as the Gymnasium
environment (``twin.env``), so an agent trained there runs unchanged through the runner,
``pems simulate``, the benchmarks and — the command passing the safety layer like any other —
live. It decides on the cadence it was trained for (``decision_interval_s``); when the runner
asks more often, it repeats its last command until the next decision is due.

Trained policies travel as ``.npz`` files (:func:`save_mlp_policy`): the weights of a
multilayer perceptron, the environment settings the policy was trained with and the feature
and action names it expects — plain arrays, no pickle and no torch at run time (a Raspberry
Pi runs them). :func:`export_sb3_policy` writes one from a stable-baselines3 PPO/A2C model.

By name: every policy file on ``PEMS_RL_POLICY`` (file or directory paths, separated by
``os.pathsep``) is registered as controller ``rl-<file stem>``::

    PEMS_RL_POLICY=runs/ppo/policy.npz pems simulate --controller rl-policy --scenario winter-week-v1 --out runs/x
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twin.config import HouseConfig
from twin.contracts import Command, Observation
from twin.env.action import ActionDecoder
from twin.env.config import EnvConfig
from twin.env.observation import ObservationEncoder
from twin.errors import ConfigError
from twin.output import write_atomically
from twin.registry import ControllerEntry

#: A policy: observation vector (float32) → action vector in [-1, 1].
Policy = Callable[[np.ndarray], np.ndarray]

POLICY_FORMAT = "pems-mlp-policy-v1"
POLICY_PATH_ENV = "PEMS_RL_POLICY"
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
}


class PolicyController:
    """Runs ``policy`` on the house through the environment's observation and action mappings.

    Args:
        house: The house the policy acts on (its rooms and devices fix the vector layouts).
        policy: Callable observation vector → action vector (e.g. :class:`MlpPolicy`, or
            ``lambda v: model.predict(v, deterministic=True)[0]`` for a stable-baselines3 model).
        config: The environment settings the policy was trained with (decision interval,
            forecast hours, heating mode, normalisation).
        expected_features: If given, the feature names the policy was trained on; a house that
            encodes different features is refused (a policy for another house).
    """

    def __init__(self, house: HouseConfig, policy: Policy, config: EnvConfig | None = None,
                 expected_features: Sequence[str] | None = None,
                 expected_actions: Sequence[str] | None = None) -> None:
        self.config = config or EnvConfig()
        self.encoder = ObservationEncoder(house, self.config.forecast_hours, self.config.normalize)
        self.decoder = ActionDecoder(house, self.config.decision_interval_s, self.config.heating)
        _check_names("feature", expected_features, self.encoder.names, house)
        _check_names("action", expected_actions, self.decoder.names, house)
        self.policy = policy
        self._interval_s = self.config.decision_interval_s
        self._last: Command | None = None
        self._last_t = -math.inf

    @classmethod
    def load(cls, path: str | Path, house: HouseConfig) -> PolicyController:
        """A controller for the policy file ``path`` (see :func:`save_mlp_policy`)."""
        return PolicyFile.read(path).controller(house)

    def reset(self) -> None:
        self._last = None
        self._last_t = -math.inf

    def decide(self, obs: Observation) -> Command:
        now = obs.time.timestamp()
        if self._last is not None and now < self._last_t + self._interval_s - 1e-6:
            return self._last  # not due yet: the lease of the last decision still runs
        action = np.asarray(self.policy(self.encoder.encode(obs)), dtype=np.float32).reshape(-1)
        command = self.decoder.decode(action, obs)
        self._last, self._last_t = command, now
        return command


# --- MLP policies as plain arrays ------------------------------------------------------------------


@dataclass(frozen=True)
class MlpPolicy:
    """``a = clip(W_out · act(… act(W_0 · x + b_0) …) + b_out, -1, 1)`` — a deterministic MLP policy."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str = "tanh"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation = {self.activation!r} must be one of {sorted(ACTIVATIONS)}", "activation")
        if not self.weights or len(self.weights) != len(self.biases):
            raise ConfigError(f"an MLP needs as many weight matrices as biases (≥ 1), got {len(self.weights)} and "
                              f"{len(self.biases)}", "weights")
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise ConfigError(f"layer {k}: weights {w.shape} and bias {b.shape} do not fit", f"weights_{k}")
            if k and w.shape[1] != self.weights[k - 1].shape[0]:
                raise ConfigError(f"layer {k} takes {w.shape[1]} inputs, layer {k - 1} gives "
                                  f"{self.weights[k - 1].shape[0]}", f"weights_{k}")
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise ConfigError(f"layer {k} holds non-finite weights", f"weights_{k}")

    @property
    def obs_dim(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.weights[-1].shape[0])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        h = np.asarray(obs, dtype=np.float32)
        if h.shape != (self.obs_dim,):
            raise ValueError(f"observation has shape {h.shape}, the policy takes ({self.obs_dim},)")
        act = ACTIVATIONS[self.activation]
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = w @ h + b
            if k < last:
                h = act(h)
        return np.clip(h, -1.0, 1.0)


@dataclass(frozen=True)
class PolicyFile:
    """A policy file read into memory: all a process needs to build the controller, without the file.

    ``pems bench --policy`` reads each file once in the client and ships this to the Dask
    workers, so workers of a remote cluster need no copy of the file.
    """

    path: Path
    policy: MlpPolicy
    meta: dict[str, Any]

    @classmethod
    def read(cls, path: str | Path) -> PolicyFile:
        policy, meta = load_mlp_policy(path)
        return cls(Path(path), policy, meta)

    @property
    def controller_name(self) -> str:
        return policy_controller_name(self.path)

    def controller(self, house: HouseConfig) -> PolicyController:
        meta = self.meta
        return PolicyController(house, self.policy, EnvConfig.from_dict(meta["config"]), meta["features"],
                                meta["actions"])


def save_mlp_policy(path: str | Path, policy: MlpPolicy, config: EnvConfig, features: Sequence[str],
                    actions: Sequence[str], env_id: str = "", note: str = "") -> Path:
    """Write ``policy`` with its environment settings and vector layouts to ``path`` (.npz, atomically)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ConfigError(f"{path}: policy files end in .npz", "path")
    if len(features) != policy.obs_dim or len(actions) != policy.action_dim:
        raise ConfigError(f"policy maps {policy.obs_dim} → {policy.action_dim}, the names give "
                          f"{len(features)} → {len(actions)}", "policy")
    meta = {"format": POLICY_FORMAT, "env_id": env_id, "config": config.to_dict(), "features": list(features),
            "actions": list(actions), "activation": policy.activation, "layers": len(policy.weights), "note": note}
    arrays = {"meta": np.array(json.dumps(meta))}
    for k, (w, b) in enumerate(zip(policy.weights, policy.biases, strict=True)):
        arrays[f"weights_{k}"] = np.asarray(w, dtype=np.float32)
        arrays[f"bias_{k}"] = np.asarray(b, dtype=np.float32)
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a temporary name
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle

    write_atomically(path, write)
    return path


def load_mlp_policy(path: str | Path) -> tuple[MlpPolicy, dict[str, Any]]:
    """``(policy, meta)`` from a file written by :func:`save_mlp_policy`; errors name the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ConfigError(f"{path}: policy file not found", "path") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a policy file ({exc})", "path") from None
    try:
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != POLICY_FORMAT:
            raise ConfigError(f"{path}: format {meta.get('format')!r}, expected {POLICY_FORMAT!r}", "format")
        layers = int(meta["layers"])
        weights = tuple(arrays[f"weights_{k}"] for k in range(layers))
        biases = tuple(arrays[f"bias_{k}"] for k in range(layers))
        policy = MlpPolicy(weights, biases, meta["activation"])
        for key in ("config", "features", "actions"):
            meta[key]  # noqa: B018 - must be present
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: incomplete policy file (missing {exc})", "path") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}", exc.field) from None
    if policy.obs_dim != len(meta["features"]) or policy.action_dim != len(meta["actions"]):
        raise ConfigError(f"{path}: the network maps {policy.obs_dim} → {policy.action_dim} values but the file "
                          f"names {len(meta['features'])} features and {len(meta['actions'])} actions", "path")
    return policy, meta


def export_sb3_policy(model: Any, path: str | Path, config: EnvConfig, features: Sequence[str],
                      actions: Sequence[str], env_id: str = "", note: str = "") -> Path:
    """Write the deterministic actor of a stable-baselines3 PPO/A2C ``MlpPolicy`` as a policy file.

    The actor is the policy network (``mlp_extractor.policy_net``) followed by ``action_net``;
    its output, clipped to [-1, 1], is what ``model.predict(obs, deterministic=True)`` returns.
    """
    import torch.nn as nn  # only with the [rl] extra

    policy = model.policy
    if getattr(policy, "squash_output", False) or not hasattr(policy, "mlp_extractor"):
        raise ConfigError(f"{type(model).__name__}: only PPO/A2C MlpPolicy actors can be exported", "model")
    if getattr(policy, "normalize_images", False) and len(policy.observation_space.shape) > 1:
        raise ConfigError("image observations are not supported", "model")
    weights, biases, activation = [], [], None
    for layer in policy.mlp_extractor.policy_net:
        if isinstance(layer, nn.Linear):
            weights.append(layer.weight.detach().cpu().numpy().copy())
            biases.append(layer.bias.detach().cpu().numpy().copy())
        elif isinstance(layer, nn.Tanh | nn.ReLU):
            name = "tanh" if isinstance(layer, nn.Tanh) else "relu"
            if activation not in (None, name):
                raise ConfigError("mixed activations cannot be exported", "model")
            activation = name
        else:
            raise ConfigError(f"cannot export layer {layer!r}", "model")
    weights.append(policy.action_net.weight.detach().cpu().numpy().copy())
    biases.append(policy.action_net.bias.detach().cpu().numpy().copy())
    mlp = MlpPolicy(tuple(weights), tuple(biases), activation or "tanh")
    return save_mlp_policy(path, mlp, config, features, actions, env_id, note)


# --- registry ----------------------------------------------------------------------------------------


def policy_files(spec: str | None = None) -> list[Path]:
    """Policy files named by ``spec`` (default: ``$PEMS_RL_POLICY``): files, or every .npz in a directory."""
    spec = os.environ.get(POLICY_PATH_ENV, "") if spec is None else spec
    files: list[Path] = []
    for part in filter(None, spec.split(os.pathsep)):
        path = Path(part).expanduser()
        if path.is_dir():
            files.extend(sorted(path.glob("*.npz")))
        else:
            files.append(path)  # a missing file is reported when the controller is built
    return files


def catalog() -> list[ControllerEntry]:
    """The ``pems.controllers`` entry point: one ``rl-<stem>`` controller per file on ``$PEMS_RL_POLICY``."""
    entries = []
    for path in policy_files():
        entries.append(ControllerEntry(
            name=policy_controller_name(path),
            description=f"RL policy from {path} (observation/action mapping of twin.env)",
            make=_factory(path),
        ))
    return entries


def policy_controller_name(path: str | Path) -> str:
    """The controller name of a policy file: ``rl-<file stem>``."""
    return f"rl-{Path(path).stem}"


def _factory(path: Path) -> Callable[[Any], PolicyController]:
    return lambda ctx: PolicyController.load(path, ctx.house)


def _check_names(kind: str, expected: Sequence[str] | None, actual: Sequence[str], house: HouseConfig) -> None:
    if expected is None:
        return
    expected = list(expected)
    if expected != list(actual):
        diff = next((i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
                    min(len(expected), len(actual)))
        got = actual[diff] if diff < len(actual) else "nothing"
        want = expected[diff] if diff < len(expected) else "nothing"
        raise ConfigError(f"the policy expects {len(expected)} {kind}s, house {house.name!r} gives {len(actual)}; "
                          f"first difference at {kind} {diff}: expected {want!r}, got {got!r}", f"{kind}s")
