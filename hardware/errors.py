"""Errors of the live mode (subclasses of ``twin.errors.TwinError``, so the CLI reports them in one line)."""

from __future__ import annotations

from twin.errors import TwinError


class LiveError(TwinError):
    """The live mode cannot go on: broker unreachable or refusing us, no clock, a missing device."""
