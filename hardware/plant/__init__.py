"""The live house as a ``Plant``: readings as they arrive and age, metering, the house clock, the
forecast source, and ``MqttHouse``, which observes the devices and applies commands to them.
"""
