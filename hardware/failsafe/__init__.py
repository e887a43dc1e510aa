"""The fail-safe layer: everything that keeps the house safe when the link, the controller or a
device misbehaves (see ``docs/failsafe.md``).

* :mod:`hardware.failsafe.layer` — ``FailSafe``, which wires the pieces below for ``MqttHouse``;
* :mod:`hardware.failsafe.watchdog` — the link and its states (CONNECTING → RECONCILING → RUNNING ↔ SAFE);
* :mod:`hardware.failsafe.outbox` — publish now or never, after the last envelope check;
* :mod:`hardware.failsafe.readback` — confirmation of every command, retries, manual overrides;
* :mod:`hardware.failsafe.skew` — device clocks measured from their stamps;
* :mod:`hardware.failsafe.hygiene` — retained and foreign commands on the command topics;
* :mod:`hardware.failsafe.persistence` — sequence numbers, last plan and safety history across restarts;
* :mod:`hardware.failsafe.envelope` — the last check of every payload against the device limits;
* :mod:`hardware.failsafe.fallback` — a controller that fails or is late is replaced by a safe one;
* :mod:`hardware.failsafe.events` — the event log and the alerts for ``pems/alerts``.
"""
