"""Test-wide environment, set before anything imports Qt (STACK.md "Environment").

Tests always run offscreen, whether or not the machine has a display, so that they behave the same
on a laptop and in CI. Subprocesses that tests start inherit these variables.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = "--disable-gpu"  # no GPU process: saves about 60 MiB
# Keep Mesa's and Qt's caches out of the home folder, and make every run start from none.
_cache = tempfile.mkdtemp(prefix="dm-emulator-test-cache-")
os.environ["XDG_CACHE_HOME"] = _cache
atexit.register(shutil.rmtree, _cache, ignore_errors=True)
if hasattr(os, "geteuid") and os.geteuid() == 0:
    # QtWebEngine exits at once as root unless its sandbox is off; normal users keep the sandbox.
    os.environ["QTWEBENGINE_DISABLE_SANDBOX"] = "1"
