"""The event bus: a subscriber that raises neither stops the others nor the publisher, and is not
silent (logged, kept; in this suite it fails the test unless the test expects it)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.events import MAX_ERRORS, AlertRaised, EventBus, SessionEnded

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def _broken(event: object) -> None:
    raise ValueError("subscriber bug")


@pytest.mark.bus_errors
def test_a_raising_subscriber_is_logged_and_kept_and_the_others_still_hear(caplog):
    bus = EventBus()
    heard: list[object] = []
    bus.subscribe(_broken, AlertRaised)
    bus.subscribe(heard.append)
    event = AlertRaised("IMEI:1", "x", "y")
    with caplog.at_level(logging.ERROR, logger="emulator.events"):
        bus.publish(event)  # does not raise
    assert heard == [event]
    assert [type(e) for e in bus.errors] == [ValueError]
    (record,) = caplog.records
    assert "AlertRaised" in record.getMessage() and "IMEI:1" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ValueError


@pytest.mark.bus_errors
def test_a_bus_keeps_only_the_newest_errors():
    bus = EventBus()
    bus.subscribe(_broken)
    for _ in range(MAX_ERRORS + 1):
        bus.publish(SessionEnded("d", "s", "completed"))
    assert len(bus.errors) == MAX_ERRORS


def test_in_this_suite_a_raising_subscriber_fails_its_test(tmp_path):
    """The suite's own conftest, run on a test whose subscriber raises once: that test fails, the one
    marked ``bus_errors`` passes."""
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_bus.py").write_text(
        "import pytest\n"
        "from emulator.events import AlertRaised, EventBus\n\n"
        "def boom(event):\n    raise ValueError('subscriber bug')\n\n"
        "def publish():\n    bus = EventBus()\n    bus.subscribe(boom)\n    bus.publish(AlertRaised('d', 'a', 'b'))\n\n"
        "def test_unexpected():\n    publish()\n\n"
        "@pytest.mark.bus_errors\ndef test_expected():\n    publish()\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "markers=bus_errors: x",
                           str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ERROR test_bus.py::test_unexpected" in proc.stdout and "2 passed, 1 error" in proc.stdout, proc.stdout
    assert "swallowed by the EventBus" in proc.stdout and "subscriber bug" in proc.stdout


def test_wants_follows_subscribers_and_their_kinds():
    """What publishers ask before building an event nobody would hear (every tree change of a fleet)."""
    from emulator.events import Event, TreeChanged

    bus = EventBus()
    assert not bus.wants(TreeChanged) and not bus.wants(AlertRaised)
    off = bus.subscribe(lambda e: None, AlertRaised)
    assert bus.wants(AlertRaised) and not bus.wants(TreeChanged)
    off_all = bus.subscribe(lambda e: None)  # no kinds: every event
    assert bus.wants(TreeChanged)
    off_all()
    assert not bus.wants(TreeChanged) and bus.wants(AlertRaised)
    off()
    assert not bus.wants(AlertRaised)
    bus.subscribe(lambda e: None, Event)  # a base class covers its subclasses
    assert bus.wants(SessionEnded)


def test_a_device_builds_no_tree_event_nobody_hears_and_still_tells_a_late_subscriber():
    from emulator.device.profile import find_profile
    from emulator.device.virtual import VirtualDevice
    from emulator.events import DeviceStateChanged, TreeChanged

    dev = VirtualDevice(find_profile("smartphone"), 0, server="http://127.0.0.1:9")
    dev.tree.replace("./DevInfo/Lang", "de-DE")  # nobody listens: nothing to hear, nothing breaks
    dev.set_state("in session")
    heard: list[object] = []
    dev.bus.subscribe(heard.append, TreeChanged, DeviceStateChanged)
    dev.tree.replace("./DevInfo/Lang", "fr-FR")
    dev.set_state("idle")
    assert [type(e) for e in heard] == [TreeChanged, DeviceStateChanged]
    assert heard[0].change.new == "fr-FR" and heard[1].state == "idle"
