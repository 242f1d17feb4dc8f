"""Backend.AI's real repository (a git bundle of its main branch in the shared fixtures)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bundle(name: str = "backend.ai-main.bundle") -> Path:
    """The bundle from $DEVKIT_FIXTURES, the `shared/fixtures` beside the checkout, or /work/shared."""
    candidates = [
        Path(os.environ.get("DEVKIT_FIXTURES", "/nonexistent")),
        ROOT.parent / "shared" / "fixtures",
        Path("/work/shared/fixtures"),
    ]
    for d in candidates:
        if (d / name).is_file():
            return d / name
    pytest.skip(f"{name} not found (set DEVKIT_FIXTURES to the folder that holds it)")


def checkout(dest: Path, *paths: str) -> Path:
    """A clone of Backend.AI's main with only `paths` checked out (the whole tree is 56 MB)."""
    src = bundle()
    run = {"check": True, "capture_output": True}
    subprocess.run(["git", "clone", "-q", "-n", "--branch", "main", str(src), str(dest)], **run)
    subprocess.run(["git", "-C", str(dest), "checkout", "main", "--", *paths], **run)
    return dest
