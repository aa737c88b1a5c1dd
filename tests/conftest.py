"""Shared test setup: make the helper modules in tests/ importable."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).parent
ROOT = TESTS.parent
SAMPLES = ROOT / "sample_pcaps"

if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
