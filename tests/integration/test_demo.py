"""`ascolta demo --duration 240`, as `make demo DURATION=240` runs it: the injected crisis is printed,
the quiet brands get no crisis, it exits 0 and leaves no process behind."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from streams.tools.sample import BRAND_NAMES, CRISIS_BRAND, VIRAL_BRAND

from .workers import ROOT

pytestmark = pytest.mark.integration


def test_demo_prints_the_crisis_and_stops_cleanly(tmp_path):
    env = {**os.environ, "ASCOLTA_DATA_DIR": os.environ.get("ASCOLTA_DATA_DIR", str(tmp_path))}
    # 240 s: a clean-clone CI on 2026-12-04 processed 4,256 of the 4,989 mentions in 180 s, short of the crisis (at
    # about 87% of the stream); the model ran slower that day than on the days 180 s was enough
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--duration", "240"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=400, start_new_session=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert f"[CRISIS OPENED] {CRISIS_BRAND}" in out, out[-3000:]
    crisis_brands = set(re.findall(r"^\[CRISIS OPENED\] (.+?) —", out, re.M))
    assert crisis_brands == {CRISIS_BRAND}, crisis_brands
    summary = out[out.index("Demo summary"):]
    for brand in set(BRAND_NAMES) - {CRISIS_BRAND, VIRAL_BRAND}:
        assert re.search(rf"^\s+{re.escape(brand)}\s+quiet: no alert$", summary, re.M), summary
    worker_pid = int(re.search(r"^Worker pid (\d+)", out, re.M).group(1))
    broker_pid = int(re.search(r"started Tansu broker pid (\d+)", result.stderr + out).group(1))
    for pid in (worker_pid, broker_pid):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
