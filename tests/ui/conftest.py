"""pytest-qt fixtures for the window tests (STACK.md "Tests"): one session-wide qasync loop, never
stopped, and ``arun`` to run a coroutine from a plain test. No pytest-asyncio: it conflicts."""

from __future__ import annotations

import asyncio
import os
import tempfile

import pytest

# QSettings must not read or write the user's real settings.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="dm-emulator-test-config-")

qasync = pytest.importorskip("qasync")
pytest.importorskip("PySide6.QtWebEngineWidgets")


@pytest.fixture(scope="session")
def qloop(qapp):
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    # DNS lookups (httpx, aiohttp) ran in qasync's QThread executor: stop its threads now, or Qt
    # aborts the process at exit ("QThread: Destroyed while thread is still running").
    executor = getattr(loop, "_QEventLoop__default_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)
    asyncio.events._set_running_loop(None)


@pytest.fixture
def arun(qtbot, qloop):
    def run(coro, timeout=10_000):
        task = qloop.create_task(coro)
        try:
            qtbot.waitUntil(task.done, timeout=timeout)
        finally:
            task.cancel()
        return task.result()

    return run


@pytest.fixture
def disposer(qloop):
    """Collects widgets and deletes them at teardown, web views first (avoids the exit crash)."""
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    widgets = []
    yield widgets.append
    for widget in reversed(widgets):
        if hasattr(widget, "dispose"):
            widget.dispose()
        widget.close()
        widget.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def window(qtbot, disposer):
    """The main window over a fleet of the demo devices, without a server (nothing runs)."""
    from emulator.events import EventBus
    from emulator.fleet.fleet import Fleet
    from ui.app import DEMO_DEVICES
    from ui.mainwindow import MainWindow

    fleet = Fleet(server="http://127.0.0.1:9", bus=EventBus())
    for profile, count in DEMO_DEVICES:
        fleet.add(profile, count)
    w = MainWindow(fleet)
    fleet.ui = w.ui_handler
    w.fleet_panel.model.sync()
    disposer(w)
    w.show()
    return w


@pytest.fixture
def desktop(arun, disposer):
    """The window on its demo default, as `dm-emulator gui` starts it: the reference server in the loop
    and the demo devices."""
    import argparse

    pytest.importorskip("emulator.server.app")
    from ui.app import Desktop

    d = Desktop(argparse.Namespace(workspace=None, no_demo=False, screenshot=None), stop_loop=False)
    arun(d.start())
    assert d.server.url, d.server_problem
    yield d
    disposer(d.window)
    arun(d.stop())
