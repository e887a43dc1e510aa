"""``pems report RUN_DIR``: an HTML page with PNG figures for a live or simulated run directory."""
