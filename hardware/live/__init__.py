"""Running a controller against the live house: the runner loop, the run directory's log and
journal, and the parity harness that compares a live run with ``pems simulate``.
"""
