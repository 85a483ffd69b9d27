"""The package is typed (it ships `py.typed`): it must pass mypy's strict
mode, so that what users' type checkers see is true."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tooken"


def test_the_package_passes_mypy_strict(tmp_path: Path) -> None:
    assert (SRC / "py.typed").exists()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            # Django REST framework ships no types.
            "--ignore-missing-imports",
            "--cache-dir",
            str(tmp_path),
            str(SRC),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
