"""The public Open Responses compliance suite, run with bun against Rosetta in front of the fake upstream.

The suite's code stays out of this repository: point `OPENRESPONSES_DIR` at a checkout (default: a
sibling `openresponses/` beside this checkout, or `/work/openresponses`); README "Development" says how
to get one. Without bun or a checkout the test is skipped with the reason. Each fake's
`fake-agent` model answers with text, and calls the first tool when tools are given, as the suite's
cases expect; the whole suite (HTTP, WebSocket and compact tests) runs against Chat-, Anthropic- and
Gemini-routed models.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import API_KEY

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "tests" / "compliance" / "run-openresponses.sh"
CANDIDATES = [
    os.environ.get("OPENRESPONSES_DIR", ""),
    str(ROOT.parent / "openresponses"),
    "/work/openresponses",
]


@pytest.fixture(scope="module")
def suite() -> Path:
    if shutil.which("bun") is None:
        pytest.skip("bun is not installed (`npm install -g bun`)")
    found = [Path(c) for c in CANDIDATES if c and (Path(c) / "bin" / "compliance-test.ts").is_file()]
    if not found:
        pytest.skip(f"no Open Responses checkout in {[c for c in CANDIDATES if c]}; see README")
    if not (found[0] / "node_modules" / "zod").is_dir():
        subprocess.run(["bun", "install", "--frozen-lockfile"], cwd=found[0], check=True, capture_output=True)
    return found[0]


@pytest.mark.parametrize(
    ("prefix", "model"),
    [
        ("v1", "m-agent"),
        ("v5", "fake/fake-agent"),
        ("v5", "anthropic/fake-agent"),
        ("v5", "gemini/fake-agent"),
    ],
)
def test_compliance_suite_passes(suite: Path, gateway: str, prefix: str, model: str) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT), str(suite), f"{gateway}/{prefix}", API_KEY, model],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, output
    summary = re.search(r"Results: (\d+) passed, (\d+) failed, (\d+) skipped, (\d+) total", output)
    assert summary is not None, output
    passed, total = int(summary.group(1)), int(summary.group(4))
    assert passed == total >= 17, output  # every test of the suite: WebSocket and compact included
