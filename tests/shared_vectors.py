"""Where the outside test vectors are, when a checkout has them: ``../shared/vectors`` beside the repository.

A user's clone has no ``../shared``; tests that need those vectors skip with the reason below
instead of failing at collection. The project's own examples (``assets/examples/``) need nothing outside.
Imported as ``shared_vectors`` (pytest puts ``tests/`` on the path for the root conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# DM_SHARED_VECTORS points elsewhere, e.g. from a git worktree that is not beside ../shared.
SHARED_VECTORS = Path(os.environ.get("DM_SHARED_VECTORS") or ROOT.parent / "shared" / "vectors")
AOSP_DM12 = SHARED_VECTORS / "aosp-dm12"
HAVE_AOSP_DM12 = AOSP_DM12.is_dir()
NO_AOSP_DM12 = "the AOSP DM 1.2 vectors are not beside the repository (../shared/vectors/aosp-dm12)"
needs_aosp_dm12 = pytest.mark.skipif(not HAVE_AOSP_DM12, reason=NO_AOSP_DM12)


def aosp_dm12(*suffixes: str) -> list[Path]:
    """The AOSP vectors with these suffixes, sorted; empty when the folder is absent (collection must not fail)."""
    if not HAVE_AOSP_DM12:
        return []
    return sorted(p for p in AOSP_DM12.iterdir() if p.suffix in suffixes)
