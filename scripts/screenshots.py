"""The window's pictures for the README, taken the way a user would see them (``scripts/screenshots``).

Each scene starts the window on its demo default (the reference server in the same process), does what
a user would, and saves the whole window at 1280x800:

- ``waiting``: a fleet of smartphones whose sessions all wait for their Wi-Fi page: the fleet marks
  them "waiting for you", the list of waiting pages, the server page of the selected device.
- ``failed``: a device pointed at a port where nothing listens: the red row in the traffic, its
  reason in the message detail, the event log.
- ``plots``: twenty NB-IoT sensors running sessions against the demo server for about 25 s: the
  fleet plots (sessions/s, latency percentiles, failures), then the value history of a numeric leaf.
- ``campaign``: a firmware campaign of the demo server for twelve phones on bearers of different
  speeds, a few of which fail: the fleet's Download bars and Last operation results (the user has
  hidden the other columns from the header menu and widened the fleet), a failed
  phone's strip above its tree, and its generic alert with the result code explained.

Run it under a virtual screen: ``scripts/screenshots [DIR]`` (it calls xvfb-run); settings go to a
temporary folder, so the pictures do not depend on the layout of the person running it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

SCENES = ("waiting", "failed", "plots", "campaign")
PLOT_SENSORS = 20
PLOT_RUN_S = 25.0
WAITING_PHONES = 12
PAGE_SETTLE_S = 1.0  # the web view paints about 50 ms after loadFinished; leave room
DEADLINE_S = 40.0
CAMPAIGN_PHONES = 12
CAMPAIGN_PACKAGE = 2_000_000  # bytes: 16 Mbit, 1 s at the fastest phones' rate, 11 s at the slowest
CAMPAIGN_RATES = (16_000, 12_000, 8_000, 4_000, 2_500, 1_500)  # kbit/s of the package server, per phone
CAMPAIGN_FAILURES = {2: {"fail": {"402": 1.0}}, 7: {"free_bytes": 1_000_000}, 9: {"fail": {"410": 1.0}}}
CAMPAIGN_WIDTHS = (600, 380, 300)  # fleet, device, message detail: the user widened the fleet
CAMPAIGN_HIDDEN = ("Profile", "State", "Bearer", "Last result")  # the user's choice from the header's menu
EXPLAINED = "Result codes explained"


async def until(check: Callable[[], object], what: str, deadline: float = DEADLINE_S) -> None:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise TimeoutError(f"screenshots: gave up waiting for {what}")
        await asyncio.sleep(0.05)


async def scene_waiting(desktop, out: Path) -> None:
    w, fleet = desktop.window, desktop.fleet
    have = sum(1 for d in fleet.devices.values() if d.profile.name == "smartphone")
    fleet.add("smartphone", WAITING_PHONES - have)
    w.fleet_panel.model.sync()
    phones = [d.id for d in fleet.devices.values() if d.profile.name == "smartphone"]
    w.fleet_panel.protocol_box.setCurrentText("dm2")
    w.fleet_panel.start_sessions(phones)
    await until(lambda: w.ui_handler.pending.count() == len(phones), "every phone to ask for its page")
    chosen = phones[3]
    w.fleet_panel.select(chosen)
    await until(lambda: w.web_dock.device_id == chosen and w.web_dock.loaded_url, "the chosen phone's page")
    await asyncio.sleep(PAGE_SETTLE_S)
    save(w, out / "screenshot-waiting.png")


async def scene_failed(desktop, out: Path) -> None:
    from ui.server_dialog import AccountChanges, ServerChanges

    w, fleet = desktop.window, desktop.fleet
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gateway = next(d.id for d in fleet.devices.values() if d.profile.name == "home-gateway")
    job = w.server_actions.apply(ServerChanges([gateway], dm2=AccountChanges(server_uri=f"http://127.0.0.1:{port}/dm2")))
    await until(lambda: not job.running, "the server settings")
    w.fleet_panel.select(gateway)
    w.fleet_panel.protocol_box.setCurrentText("dm2")
    traffic = w.traffic_panel
    for attempt in (1, 2):  # the user tries twice: two red rows, the last one selected
        (task,) = w.fleet_panel.start_sessions([gateway])
        await until(task.done, "the session to fail")
        await until(lambda attempt=attempt: len(traffic.model.failures()) >= attempt, "the red row")
    for row in range(traffic.proxy.rowCount()):
        if traffic.model.reasons[traffic.proxy.mapToSource(traffic.proxy.index(row, 0)).row()]:
            traffic.view.selectRow(row)
    await asyncio.sleep(0.3)
    save(w, out / "screenshot-failed.png")


async def scene_plots(desktop, out: Path) -> None:
    w, fleet = desktop.window, desktop.fleet
    fleet.add("nbiot-sensor", PLOT_SENSORS)
    w.fleet_panel.model.sync()
    sensors = [d.id for d in fleet.devices.values() if d.profile.name == "nbiot-sensor"]
    w.docks["plots"].show()
    w.docks["plots"].raise_()
    first = fleet.devices[sensors[0]]
    leaf = next(i.path for i in first.tree.walk(".") if i.children is None and i.format in ("int", "float"))
    w.fleet_panel.select(sensors[0])
    value, end = 40, time.monotonic() + PLOT_RUN_S
    while time.monotonic() < end:
        idle = [s for s in sensors if fleet.devices[s].state != "in session"][:8]
        if idle:
            w.fleet_panel.start_sessions(idle)
        value = max(5, min(200, value + (7 if int(time.monotonic()) % 3 else -11)))
        first.tree.replace(leaf, str(value), by=None)  # the device measures its link
        await asyncio.sleep(0.7)
    await asyncio.sleep(1.2)
    w.plots.refresh()
    save(w, out / "screenshot-plots.png")
    w.tree_panel.select_path(leaf)
    w.chart_value(leaf)
    await asyncio.sleep(0.5)
    save(w, out / "screenshot-value-history.png")


async def scene_campaign(desktop, out: Path) -> None:
    from PySide6.QtCore import Qt

    from ui.fleet_model import COLUMNS

    w, fleet, control = desktop.window, desktop.fleet, desktop.server.control
    have = sum(1 for d in fleet.devices.values() if d.profile.name == "smartphone")
    fleet.add("smartphone", CAMPAIGN_PHONES - have)
    w.fleet_panel.model.sync()
    phones = [d for d in fleet.devices.values() if d.profile.name == "smartphone"]
    for i, phone in enumerate(phones):
        phone.behaviours.configure("fumo", {"install_s": 3.0, "reboot_s": 1.0,
                                            "download_kbps": CAMPAIGN_RATES[i % len(CAMPAIGN_RATES)],
                                            **CAMPAIGN_FAILURES.get(i, {})})
    control.add_campaign({"id": "fw-3.0", "package": "x5p-fw-3.0", "size": CAMPAIGN_PACKAGE,
                          "version": "X5P-FW-3.0", "devices": [p.id for p in phones]})
    for title in CAMPAIGN_HIDDEN:
        w.fleet_panel.columns.set_shown(COLUMNS.index(title), False)
    w.resizeDocks([w.fleet_dock, w.tree_dock, w.detail_dock], list(CAMPAIGN_WIDTHS), Qt.Orientation.Horizontal)
    for protocol, half in (("dm2", phones[::2]), ("dm12", phones[1::2])):
        w.fleet_panel.protocol_box.setCurrentText(protocol)
        w.fleet_panel.start_sessions([p.id for p in half])
    ops = w.fleet_panel.model.ops
    failed = phones[2].id  # its package fails to install: 402, reported in a new session

    def picture_ready() -> bool:
        ended = [op for op in ops.operations.values() if op.ended]
        running = [d for d in ops.downloads.values() if not d.outcome and 0 < (d.fraction or 0) < 1]
        return ops.operation(failed) is not None and ops.operations[failed].ended and len(ended) >= 4 \
            and len(running) >= 2
    await until(picture_ready, "finished and running downloads together")
    await until(lambda: getattr(control.campaign("fw-3.0").runs.get(failed), "state", "") == "reported", "the failed phone's report")
    w.fleet_panel.select(failed)
    traffic = w.traffic_panel
    await until(lambda: traffic.proxy.rowCount() > 0, "the failed phone's traffic")
    for row in range(traffic.proxy.rowCount()):  # its generic alert: the message detail explains the code
        traffic.view.selectRow(row)
        if EXPLAINED in traffic.detail.toPlainText():
            traffic.detail.find(EXPLAINED)
            traffic.detail.centerCursor()
            break
    await asyncio.sleep(0.4)
    save(w, out / "screenshot-campaign.png")


def save(window, path: Path) -> None:
    window.update_counts()  # the status bar counts refresh twice a second: now, for the picture
    window.session_progress.refresh()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"screenshots: wrote {path}")


SCENE_RUNNERS: dict[str, Callable[..., Awaitable[None]]] = {"waiting": scene_waiting, "failed": scene_failed,
                                                                "plots": scene_plots, "campaign": scene_campaign}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/screenshots", description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default="docs", help="folder for the PNG files (default: docs)")
    parser.add_argument("--scene", choices=SCENES, action="append", help="only this scene (repeatable)")
    args = parser.parse_args(argv)
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="dm-emulator-shots-")  # the default layout
    if os.geteuid() == 0:
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
    import qasync
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from ui.app import Desktop

    app = QApplication([sys.argv[0]])
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    failures: list[BaseException] = []

    async def run_all() -> None:
        try:
            for name in args.scene or SCENES:
                desktop = Desktop(argparse.Namespace(workspace=None, no_demo=False, screenshot=None),
                                  stop_loop=False)
                await desktop.start()
                try:
                    assert desktop.window is not None
                    desktop.window.resize(1280, 780)
                    desktop.window.reset_layout()
                    await asyncio.sleep(0.3)
                    await SCENE_RUNNERS[name](desktop, Path(args.out))
                finally:
                    if desktop.window is not None:
                        desktop.window.on_close = None
                        desktop.window.close()
                    await desktop.stop()
                    if desktop.window is not None:
                        desktop.window.deleteLater()
                    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        except BaseException as exc:  # noqa: BLE001 - reported after the loop
            failures.append(exc)
        finally:
            loop.stop()

    with loop:
        loop.call_soon(lambda: asyncio.ensure_future(run_all()))
        loop.run_forever()
    if failures:
        print(f"screenshots: {failures[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main(sys.argv[1:]))
