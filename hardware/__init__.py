"""Live mode: the real house over MQTT, and an MQTT emulator of it.

``MqttHouse`` implements the same ``Plant`` protocol as ``twin.house.SimHouse``, so the runner
loop of ``twin.runner`` drives the real devices unchanged; ``emulator`` plays ``SimHouse`` on a
realtime clock behind the real devices' topics. Payloads are validated at the boundary
(``schemas``), readings age and go stale (``readings``), commands are leases (``adapters``).
"""
