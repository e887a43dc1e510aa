"""The wire: MQTT topics, payload schemas, the MQTT link, transport security and a local broker.

Everything here is about bytes on the broker; nothing here knows what a house is.
"""
