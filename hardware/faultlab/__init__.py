"""The fault-injection lab: device simulators, a controller under test, and the metrics of docs/failsafe.md §3.

``devices`` — every device of a house as a small real-time MQTT client that logs what it
receives; ``harness`` — the real live runner against them on a throwaway broker; ``metrics`` —
unsafe, stale, replayed and unauthorised deliveries, times to SAFE and back, lost commands and
relay switching violations, computed from those logs.
"""
