"""The house emulator: ``SimHouse`` on a realtime clock behind the real devices' MQTT topics, with
device behaviour (leases, local rules) like the real bridges.
"""
