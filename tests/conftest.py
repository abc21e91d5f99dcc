"""Test-wide environment, set before anything imports Qt (STACK.md "Environment").

Tests always run offscreen, whether or not the machine has a display, so that they behave the same
on a laptop and in CI. Subprocesses that tests start inherit these variables.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
from hypothesis import settings

# CI must judge the code, not the luck of the draw: there every property test replays the same
# examples (a green main stays green); on a developer's machine hypothesis keeps exploring.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = "--disable-gpu"  # no GPU process: saves about 60 MiB
# Keep Mesa's and Qt's caches out of the home folder, and make every run start from none.
_cache = tempfile.mkdtemp(prefix="dm-emulator-test-cache-")
os.environ["XDG_CACHE_HOME"] = _cache
atexit.register(shutil.rmtree, _cache, ignore_errors=True)
if hasattr(os, "geteuid") and os.geteuid() == 0:
    # QtWebEngine exits at once as root unless its sandbox is off; normal users keep the sandbox.
    os.environ["QTWEBENGINE_DISABLE_SANDBOX"] = "1"


@pytest.fixture
def profile_with(tmp_path):
    """``profile_with(toml, name=...)``: the shipped smartphone profile renamed, with ``toml`` appended
    (declared behaviours, extra accounts ...), as a file path for ``find_profile``/``--profile``."""
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "profiles" / "smartphone.toml"

    def make(extra: str, name: str = "acme-phone") -> Path:
        text = shipped.read_text().replace('name = "smartphone"', f'name = "{name}"', 1)
        path = tmp_path / f"{name}.toml"
        path.write_text(text + "\n" + extra)
        return path

    return make


@pytest.fixture(autouse=True)
def _a_raising_subscriber_fails_the_test(request, monkeypatch):
    """The EventBus keeps a session alive when a subscriber raises (and logs it); in the suite that
    error fails the test, unless the test is marked ``bus_errors`` (it checks the bus survives one)."""
    from emulator.events import EventBus

    seen: list[str] = []
    keep = EventBus.subscriber_failed

    def failed(self, callback, event, exc):
        seen.append(f"{callback!r} on {type(event).__name__}: {exc!r}")
        keep(self, callback, event, exc)

    monkeypatch.setattr(EventBus, "subscriber_failed", failed)
    yield
    if seen and request.node.get_closest_marker("bus_errors") is None:
        pytest.fail(f"{len(seen)} event subscriber error(s), swallowed by the EventBus: " + "; ".join(seen[:3]))


@pytest.fixture(autouse=True)
def _no_window_loop_outside_the_window_tests(request):
    """The window tests keep one qasync loop marked running for the whole session (tests/ui/conftest.py);
    any other test that a worker runs after them gets no running loop, as in a process of its own, so
    its ``asyncio.run`` works whatever order the tests come in (pytest-xdist hands them out by load)."""
    import asyncio

    loop = asyncio.events._get_running_loop()
    if loop is None or request.path.parent.name == "ui":
        yield
        return
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(loop)


# Modules whose tests run whole commands as subprocesses (tens of seconds each). The suite starts them
# first so that, spread over pytest-xdist's workers, they do not end up as the last tests one worker runs
# while the others are done.
LONG_FIRST = ("test_readme_faces.py", "test_shipped_scenarios.py", "test_fleet_crash.py", "test_locust_workers.py",
              "test_run_ci.py", "test_bench.py", "test_locust.py", "test_run_processes.py", "test_store_crash.py",
              "test_run_command.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.path.name not in LONG_FIRST)  # stable: the rest keep their order
