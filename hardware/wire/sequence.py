"""Sequence numbers that cannot be poisoned: a session epoch and a counter in one integer.

``seq = epoch × EPOCH_SPAN + counter``: ``epoch`` is the controller's Unix time [s] when its
session began (each restart or re-synchronisation starts a newer one), ``counter`` counts the
commands of the session. A device takes a command only if (:func:`refusal`)

* its epoch is the one it knows and the counter is higher, by at most :data:`MAX_COUNTER_JUMP`, or
* its epoch is newer — but not ahead of the controller's clock by more than
  :data:`MAX_EPOCH_AHEAD_S` (the device knows that clock from the heartbeats).

So a command stamped 2⁶³−1 (epoch in the year 2262) is refused instead of locking the device
until it restarts, and the worst a holder of the controller's password can do with a number is
to be ahead for :data:`MAX_EPOCH_AHEAD_S`: the controller notices the refusal in the read-back
(the device reports a number it never sent) and starts a newer epoch, with an alert.
Numbers of the older scheme (microseconds since 1970, < 10¹⁶) read as epochs in 1970 and are
outranked by the first epoch of this one.
"""

from __future__ import annotations

#: Counter values per epoch.
EPOCH_SPAN = 10**9
#: How far one device's counter may jump within an epoch (the controller's counter is shared by all devices).
MAX_COUNTER_JUMP = 10**7
#: How far a new epoch may be ahead of the controller's clock as the device knows it [s].
MAX_EPOCH_AHEAD_S = 300.0


def compose(epoch: int, counter: int) -> int:
    if not 0 <= counter < EPOCH_SPAN:
        raise ValueError(f"counter {counter} outside [0, {EPOCH_SPAN})")
    return epoch * EPOCH_SPAN + counter


def split(seq: int) -> tuple[int, int]:
    """``(epoch, counter)`` of a sequence number."""
    return divmod(seq, EPOCH_SPAN)


def refusal(last_seq: int, seq: int, controller_now_s: float) -> str | None:
    """Why a device whose last accepted number is ``last_seq`` (−1: none) refuses ``seq`` (``None``: it takes it)."""
    epoch, counter = split(seq)
    if seq < 0:
        return "old_seq"
    if last_seq >= 0:
        last_epoch, last_counter = split(last_seq)
        if epoch < last_epoch or (epoch == last_epoch and counter <= last_counter):
            return "old_seq"
        if epoch == last_epoch:
            return "seq_jump" if counter - last_counter > MAX_COUNTER_JUMP else None
    if epoch > controller_now_s + MAX_EPOCH_AHEAD_S:
        return "epoch_ahead"
    return None
