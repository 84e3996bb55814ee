"""Collecting the test suite must not import Ray.

Ray reads its environment (loopback single-node mode) when first imported; e2e drivers set it
just before connecting. A test module importing Ray at collection made every later driver
look for the GCS on the machine's external address and hang (seen once, in CI).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import sys, pytest\n"
    "code = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests'])\n"
    "sys.exit(3 if 'ray' in sys.modules else int(code))\n"
)


def test_collecting_the_suite_does_not_import_ray() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], check=False, cwd=ROOT, capture_output=True, timeout=120
    )
    assert done.returncode != 3, "a test module imports ray at collection time"
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
