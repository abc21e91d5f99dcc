"""No machine path anywhere in the project: a user's clone is somewhere else and has no ../shared.

Every tracked file (text files; `git ls-files`, or every file but .venv and .git when the tree is no
git checkout) is searched for absolute paths of a developer's machine: /work/..., /root/...,
/home/NAME/..., /Users/NAME/.... Tests that use outside vectors find them relative to the repository
(tests/shared_vectors.py) and skip when they are absent; the README shows only files it ships.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MACHINE_PATH = re.compile(rb"(?<![\w.~/:-])/(?:work|root|home/[\w.-]+|Users/[\w.-]+)/")


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.CalledProcessError):
        return [p for p in ROOT.rglob("*") if p.is_file() and not {".git", ".venv"} & set(p.relative_to(ROOT).parts)]
    return [ROOT / name.decode() for name in out.stdout.split(b"\0") if name]


def machine_paths(data: bytes) -> list[str]:
    if b"\0" in data[:8192]:
        return []  # binary (PNG, WBXML): not written by hand
    return [m.group(0).decode(errors="replace") for m in MACHINE_PATH.finditer(data)]


def test_the_pattern_finds_what_it_must():
    assert machine_paths(b'VECTORS = Path("/work/shared/vectors")') == ["/work/"]
    assert machine_paths(b"see /root/.cache/x and /home/alice/src") == ["/root/", "/home/alice/"]
    assert machine_paths(b"`/Users/bob/dm`") == ["/Users/bob/"]
    # URL paths, relative paths and DM URIs are not machine paths
    assert machine_paths(b"http://h/work/x ./OpEnv/work/Name ../work/x ~/work/x /dm12 /repo/") == []


def test_no_tracked_file_holds_a_machine_path():
    found = []
    for path in _tracked():
        if path.is_file() and path != Path(__file__).resolve():  # this file names them on purpose
            found += [f"{path.relative_to(ROOT)}: {hit}" for hit in machine_paths(path.read_bytes())]
    assert not found, "machine paths in the project:\n" + "\n".join(found)


def test_readme_shows_no_file_from_outside_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme
