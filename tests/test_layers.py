"""The layers of DESIGN.md hold: the contracts in .importlinter, checked by import-linter."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_are_kept():
    # jobs.spec imports nothing of ours; runs.engine and the task side only jobs.spec (and the
    # engine); none of them Django; jobs never imports runs; no app imports audit; no
    # module of an app is in an import cycle with another (function-level imports count).
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Contracts: 7 kept, 0 broken." in done.stdout
