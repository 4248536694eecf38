"""Which modules an import pulls in, asked of a fresh interpreter (nothing cached here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loaded_by(imports: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules starting with any of ``prefixes`` that ``import {imports}`` loads."""
    probe = (
        f"import sys, {imports}\n"
        f"print(','.join(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [name for name in result.stdout.strip().split(",") if name]
