"""The house's own history: Parquet partitions by local day, written by the live run or imported from InfluxDB."""
