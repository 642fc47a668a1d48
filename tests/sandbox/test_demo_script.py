"""The fallback main job of issue 2: scripts/sandbox_demo.py runs a payout end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sandbox_demo.py"


def test_demo_creates_processes_and_reads_back_one_payout() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "created: cpoi_" in out
    assert "create again, same reference: HTTP 409" in out
    assert "process again: HTTP 409 invoice_not_processable" in out
    assert '"status": "processed"' in out and '"processed_amount": "25.00"' in out
    assert "ledger: 1 invoice, 1 process call" in out
    assert "sandbox stopped" in out
    assert "4000123456" not in out  # the account number is shown masked only
