"""Where the shared public data lives: ``shared/data`` beside the repository (as CI lays it out), else /work/shared."""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = next((p for p in (_ROOT.parent / "shared" / "data", Path("/work/shared/data")) if p.is_dir()),
                   _ROOT.parent / "shared" / "data")
API_SAMPLES = SHARED_DATA / "api_samples"
