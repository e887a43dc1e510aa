"""What a run shows its owner: results into InfluxDB (spooled, never blocking), Home Assistant discovery."""
