#!/usr/bin/env bash
# Idempotent set-up for a bare machine: system packages, .venv, the project installed into it.
# Sourced by ./pems and ./run-tests; re-installs only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Real parts for the tests: a Mosquitto broker (and mosquitto_passwd), GLPK's glpsol, CBC (HiGHS comes from
# PyPI), openssl for the TLS certificates of the security tests, mosquitto-clients for the documented
# mosquitto_pub/sub hints, InfluxDB 1.x for the history import and the results store, and Chromium for
# the report page tests.
APT_PACKAGES=(mosquitto mosquitto-clients glpk-utils coinor-cbc openssl influxdb chromium)
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing system packages ${missing[*]} (install them as root); tests that need them skip" >&2
  fi
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "bootstrap: Python >= 3.11 is required, $("$PYTHON" --version) found" >&2; exit 1; }
[ -x "$ROOT/.venv/bin/python" ] || "$PYTHON" -m venv "$ROOT/.venv"
stamp="$ROOT/.venv/.installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] || [ "$ROOT/requirements.lock" -nt "$stamp" ]; then
  echo "bootstrap: installing the project into .venv (versions pinned by requirements.lock)" >&2
  quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
  quiet "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip
  # Every package at the version CI tested: requirements.lock (refresh: scripts/lock.sh) constrains
  # the whole resolution. torch first: the CPU wheel (found through pip's find-links on these
  # machines); letting stable-baselines3 pull torch in would resolve to the CUDA build and
  # gigabytes of packages.
  quiet "$ROOT/.venv/bin/python" -m pip install -q -c "$ROOT/requirements.lock" torch
  quiet "$ROOT/.venv/bin/python" -m pip install -q -c "$ROOT/requirements.lock" -e "$ROOT[dev,rl,docs]"
  touch "$stamp"
fi
