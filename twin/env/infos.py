"""Per-environment ``info`` dicts batched into one vector ``info``, as Gymnasium's ``VectorEnv`` does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def batch_infos(infos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The vector ``info`` of per-environment flat ``infos``, as ``VectorEnv._add_info`` builds it.

    Each key maps to an array over environments (dtype of the first value: the Python or numpy
    number type, else ``object``) and ``_key`` to the mask of environments that have it. Built
    once per key rather than once per environment and key.
    """
    n = len(infos)
    out: dict[str, Any] = {}
    first_keys = infos[0].keys() if n else {}.keys()
    if all(info.keys() == first_keys for info in infos):  # the common case: every env has the same keys
        for key, first in infos[0].items():
            kind = type(first)
            values = [info[key] for info in infos]
            if kind in (int, float, bool) or issubclass(kind, np.number):
                out[key] = np.array(values, dtype=kind)
            else:
                array = np.empty(n, dtype=object)
                array[:] = values
                out[key] = array
            out[f"_{key}"] = np.ones(n, dtype=bool)
        return out
    keys: dict[str, None] = {}
    for info in infos:
        keys.update(dict.fromkeys(info))
    for key in keys:
        mask = np.fromiter((key in info for info in infos), dtype=bool, count=n)
        kind = type(next(info[key] for info in infos if key in info))
        if kind in (int, float, bool) or issubclass(kind, np.number):
            array = np.zeros(n, dtype=kind)
        else:
            array = np.full(n, None, dtype=object)
        for i, info in enumerate(infos):
            if key in info:
                array[i] = info[key]
        out[key] = array
        out[f"_{key}"] = mask
    return out
