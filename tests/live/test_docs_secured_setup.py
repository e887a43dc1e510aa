"""The one-machine secured set-up of ``docs/live.md`` works as written: its bash block, run verbatim.

``pems`` is the installed entry point for a user; here it is a shell function calling the same
``twin.cli.main`` of this checkout. ``DIR`` and ``PORT`` are set as the document allows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd is not installed")
def test_the_documented_secured_set_up_runs_as_written():
    text = (ROOT / "docs" / "live.md").read_text(encoding="utf-8")
    section = text.split("## Secured set-up on one machine", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    base = Path(tempfile.mkdtemp(prefix="pems-docs-"))  # mosquitto (as root) drops privileges: world-readable
    base.chmod(0o755)
    folder = base / "mqtt"
    prelude = f"set -e\npems() {{ {sys.executable} -c 'from twin.cli import main; main()' \"$@\"; }}\n"
    env = {**os.environ, "DIR": str(folder), "PORT": str(_free_port()), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", "-c", prelude + block], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    try:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        meta = json.loads((folder / "run" / "live.json").read_text())
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert meta["status"] == "finished" and meta["intervals"] >= 10, meta
    assert meta["coverage"]["readings_coverage"] == 1.0, meta["coverage"]
    assert meta["coverage"]["commands_coverage"] > 0.9, meta["coverage"]
    assert meta["published"], "commands reached the broker"
    assert "finished:" in done.stdout and "fresh readings at" not in done.stdout
