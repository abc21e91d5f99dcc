"""`dm-emulator gui`: the QApplication, one qasync loop, and the demo default.

Why this shape (STACK.md): once QtWebEngine has run, a second exec cycle crashes, so there is exactly
one ``loop.run_forever()``; closing the window first stops the fleet and the server inside the
loop, then stops the loop, and the web view is deleted before the QApplication goes.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from emulator.errors import EmulatorError
from emulator.events import EventBus
from emulator.fleet.fleet import Fleet

if TYPE_CHECKING:  # imported where used: the server may be absent, the window is built late
    from emulator.server.app import RunningServer
    from emulator.server.control import ServerControl
    from emulator.store import Workspace
    from ui.mainwindow import MainWindow

DEMO_DEVICES = (("smartphone", 2), ("home-gateway", 1), ("tablet-dual-env", 1), ("nbiot-sensor", 1))
NO_SERVER = "No server: choose one in Session › Server connection…"
SCREENSHOT_DEADLINE = 20.0
SCREENSHOT_SETTLE = 0.8  # the web view paints about 50 ms after loadFinished; leave room


class DemoServer:
    """The reference server inside our own loop, on a free loopback port."""

    def __init__(self) -> None:
        self.running: RunningServer | None = None
        self.url = ""
        self.control: ServerControl | None = None  # what the window may do with it (Session > Notify)

    async def start(self) -> None:
        """Raises ImportError when the server is not there, EmulatorError when it cannot listen."""
        from emulator.server.app import start_server

        running = self.running = await start_server()
        self.url, self.control = running.url, running.control

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.stop()
            self.running = None


class Desktop:
    """Everything one window session holds, started and stopped in the loop."""

    def __init__(self, args: argparse.Namespace, *, stop_loop: bool = True) -> None:
        self.args = args
        self.stop_loop = stop_loop  # tests share one loop for the whole run: they keep it going
        self.server = DemoServer()
        self.server_problem = ""
        self.workspace: Workspace | None = None
        self.fleet: Fleet | None = None
        self.window: MainWindow | None = None
        self.exit_code = 0
        self._stopping = False

    async def start(self) -> None:
        from ui.mainwindow import MainWindow

        demo = not getattr(self.args, "no_demo", False)
        url = ""
        if demo:
            try:
                await self.server.start()
                url = self.server.url
            except ImportError as exc:
                self.server_problem = f"reference server not available ({exc})"
            except EmulatorError as exc:
                self.server_problem = f"reference server could not start ({exc})"
        if getattr(self.args, "workspace", None):
            from emulator.store import Workspace

            self.workspace = Workspace.open(self.args.workspace)
        self.fleet = fleet = Fleet(server=url, bus=EventBus(), workspace=self.workspace)
        restored = fleet.restore()
        if restored and self.server.url:  # a saved demo: its trees name the last demo server's port
            fleet.server_wins = True
        window = self.window = MainWindow(fleet, remember=not getattr(self.args, "screenshot", None))
        fleet.ui = window.ui_handler
        window.on_close = lambda: asyncio.ensure_future(self.stop())
        window.server_actions.server = self.server.control
        window.server_actions.demo_url = self.server.url
        if self.server_problem:
            window.set_server_status(False, f"⚠ {self.server_problem}; {NO_SERVER}")
        if not url:
            window.setWindowTitle("dm-emulator — no server")
            if not self.server_problem:
                window.set_server_status(False, NO_SERVER)
        if demo and not restored:
            for profile, count in DEMO_DEVICES:
                try:
                    fleet.add(profile, count)
                except EmulatorError as exc:
                    window.show_error(f"demo device {profile}: {exc}")
        window.fleet_panel.model.sync()
        try:  # notifications over the real channels: the fleet's listener (loopback), push behind NAT
            await fleet.start_listener()
        except OSError as exc:
            window.show_error(f"the notification listener could not listen on 127.0.0.1 ({exc})")
        if self.server.url:
            fleet.start_push()
        window.show()
        from ui.heap import settle

        asyncio.get_running_loop().call_later(0.5, settle)  # after the first paint: short GC pauses from now on
        if fleet.devices:
            window.fleet_panel.select(next(iter(fleet.devices)))
        if getattr(self.args, "screenshot", None):
            asyncio.ensure_future(self._screenshot(Path(self.args.screenshot)))

    async def _screenshot(self, target: Path) -> None:
        """Run the demo until a UI flow shows (or the deadline), then save the window and quit."""
        w, fleet = self.window, self.fleet
        assert w is not None and fleet is not None
        w.resize(1280, 780)
        tasks = w.fleet_panel.start_sessions(list(fleet.devices)) if self.server.url else []
        tree_view = w.tree_panel.view
        for row in range(min(3, w.tree_panel.model.rowCount())):
            tree_view.expand(w.tree_panel.model.index(row, 0))
        start = time.monotonic()
        flow_seen = 0.0
        while time.monotonic() - start < SCREENSHOT_DEADLINE:
            await asyncio.sleep(0.1)
            if w.web_dock.loaded_url:
                if not flow_seen and w.web_dock.device_id:
                    w.fleet_panel.select(w.web_dock.device_id)  # tree and traffic of the device asking
                flow_seen = flow_seen or time.monotonic()
                if time.monotonic() - flow_seen >= SCREENSHOT_SETTLE:
                    break
            elif all(t.done() for t in tasks) and time.monotonic() - start > 2.0:
                break
        rows = w.traffic_panel.proxy.rowCount()
        if rows:
            w.traffic_panel.view.selectRow(rows - 1)
        await asyncio.sleep(0.3)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not w.grab().save(str(target)):
            print(f"dm-emulator gui: could not write the screenshot to {target}", file=sys.stderr)
            self.exit_code = 1
        w.close()

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        try:
            if self.fleet is not None:
                await self.fleet.aclose()
            await self.server.stop()
            if self.workspace is not None:
                self.workspace.close()
            if self.fleet is not None and self.fleet.workspace is not None:  # one chosen by Save workspace as…
                self.fleet.workspace.close()
        finally:
            if self.window is not None:
                self.window.dispose()
            if self.stop_loop:
                asyncio.get_running_loop().stop()


def run(args: argparse.Namespace) -> int:
    import qasync
    from PySide6.QtCore import QEvent, QTimer
    from PySide6.QtWidgets import QApplication

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
    app.setOrganizationName("dm-emulator")
    app.setApplicationName("dm-emulator")
    app.setQuitOnLastWindowClosed(False)  # the window's close runs the async cleanup, then stops
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    desktop = Desktop(args)
    failure: list[BaseException] = []

    async def boot() -> None:
        try:
            await desktop.start()
        except BaseException as exc:  # noqa: BLE001 - reported after the loop, like any command error
            failure.append(exc)
            await desktop.stop()

    # Ctrl+C in the terminal closes the window properly; the timer lets Python see the signal.
    signal.signal(signal.SIGINT, lambda *_: desktop.window.close() if desktop.window else loop.stop())
    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(250)
    with loop:
        loop.call_soon(lambda: asyncio.ensure_future(boot()))
        loop.run_forever()
        tick.stop()
        if desktop.window is not None:
            desktop.window.deleteLater()
            desktop.window = None
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    if failure:
        raise failure[0]
    return desktop.exit_code
