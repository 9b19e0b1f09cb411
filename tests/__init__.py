"""The test suite."""

import sys
from pathlib import Path

# The chain protocol shared with the member's client lives in that package's
# source folder; this checkout's copy comes first, so each checkout runs its own.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "python" / "src"))
