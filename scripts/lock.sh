#!/usr/bin/env bash
# Refresh requirements.lock: every dependency of pyproject.toml with the extras dev, rl and docs,
# resolved for Python 3.11 on Linux x86_64, exact versions. One command: scripts/lock.sh
# scripts/bootstrap.sh installs with it as constraints, so a fresh machine gets the tested set.
# torch is the CPU wheel (2.13.0+cpu, from pip's find-links or PyTorch's CPU index); the CUDA
# build would pull gigabytes of nvidia-* packages.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
"$PYTHON" -m uv --version >/dev/null 2>&1 || "$PYTHON" -m pip install -q uv
sources=()
# pip's own find-links (e.g. a local wheel directory with the CPU torch) count for uv too.
for links in ${PIP_FIND_LINKS:-} $("$PYTHON" -m pip config get global.find-links 2>/dev/null || true); do
  sources+=(--find-links "$links")
done
[ ${#sources[@]} -gt 0 ] || sources+=(--extra-index-url https://download.pytorch.org/whl/cpu)
cd "$ROOT"
"$PYTHON" -m uv pip compile pyproject.toml --extra dev --extra rl --extra docs \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  "${sources[@]}" --index-strategy unsafe-best-match --no-emit-find-links --no-emit-index-url \
  --override <(echo "torch==2.13.0+cpu") \
  --custom-compile-command "scripts/lock.sh" --quiet -o requirements.lock
echo "wrote $ROOT/requirements.lock ($(grep -c '==' requirements.lock) pinned packages)" >&2
