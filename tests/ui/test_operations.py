"""What the window shows while a device updates its firmware: a real FUMO DownloadAndUpdate that the
reference server (in the window's loop, as `dm-emulator gui` runs it) asks for in a campaign, the
package fetched over loopback HTTP through the phone's bearer, and then, as the user sees them after
each batch of events: the fleet row's Download bar going from 0 to 100 %, its Last operation going
through the FUMO states to the result code in words (green, or red for a failure), the Device dock's
strip saying the same, and the ``State`` leaf in the tree flashing through its values."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem

from emulator.events import OperationChanged, TransferProgress
from ui.device_ops import FAILURE_COLOR, RUNNING_COLOR, SUCCESS_COLOR, DeviceOps, Download
from ui.fleet_model import DOWNLOAD_COLUMN, OPERATION_COLUMN, DownloadRole, SortRole
from ui.tree_model import TrailRole

FAST = {"install_s": 0.05, "reboot_s": 0.05}
PACKAGE = 600_000  # three Range pieces of 256 KiB
STATE = "./FwUpdate/fw/State"


@dataclass
class Seen:
    """The row's cells and the State leaf after each flush of the window's batcher."""

    percents: list[int | None] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    operations: list[tuple[str, str]] = field(default_factory=list)  # (text, colour)
    states: list[tuple[str, list[str], bool]] = field(default_factory=list)  # (value, trail, flashing)
    strip: list[str] = field(default_factory=list)


def _campaign(desktop, qtbot, knobs: dict[str, object]) -> tuple[str, Seen]:
    """One phone, a FUMO campaign for it, its session started from the fleet panel over DM 1.2; the
    window is flushed after every operation event (what it would show at that flush) until the
    server has the phone's report."""
    w, fleet, control = desktop.window, desktop.fleet, desktop.server.control
    phone = next(d for d in fleet.devices.values() if d.profile.name == "smartphone")
    phone.behaviours.configure("fumo", {**FAST, **knobs})
    control.add_campaign({"id": "fw", "package": "fw3", "size": PACKAGE, "version": "X5P-FW-3.0",
                          "devices": [phone.id], "descriptor": False})
    w.fleet_panel.select(phone.id)
    model = w.fleet_panel.model
    row = model.row_of(phone.id)
    seen = Seen()

    def look(_event: object) -> None:
        w.batcher.flush()  # what the next flush would show, for every event: no timing involved
        download = model.index(row, DOWNLOAD_COLUMN).data(DownloadRole)
        seen.percents.append(download.percent if download is not None else None)
        seen.downloads.append(model.index(row, DOWNLOAD_COLUMN).data())
        op = model.index(row, OPERATION_COLUMN)
        seen.operations.append((op.data(), op.data(Qt.ItemDataRole.ForegroundRole).name()))
        state = w.tree_panel.model.index_for(STATE).siblingAtColumn(1)
        seen.states.append((state.data(), state.data(TrailRole), state.data(Qt.ItemDataRole.BackgroundRole) is not None)
                           if state.isValid() else ("(not shown)", [], False))
        seen.strip.append(w.operation_strip.operation.text() if w.operation_strip.isVisible() else "")

    fleet.bus.subscribe(look, TransferProgress, OperationChanged)  # after the window's batcher
    w.fleet_panel.protocol_box.setCurrentText("dm12")
    (task,) = w.fleet_panel.start_sessions([phone.id])
    qtbot.waitUntil(task.done, timeout=10_000)
    assert task.result().outcome == "completed", task.result().detail
    qtbot.waitUntil(lambda: getattr(control.campaign("fw").runs.get(phone.id), "state", "") == "reported", timeout=20_000)
    return phone.id, seen


def test_a_firmware_update_shows_its_download_its_states_and_its_result(desktop, qtbot):
    w = desktop.window
    phone, seen = _campaign(desktop, qtbot, {})
    # the Download bar: 0 % before the first byte, each piece, then 100 %, the size and green
    percents = [p for p in seen.percents if p is not None]
    assert percents[0] == 0 and percents[-1] == 100, seen.percents
    assert percents == sorted(percents) and len(set(percents)) >= 4, percents  # 0, two pieces, 100
    assert seen.downloads[-1].startswith("100 % · 600 kB"), seen.downloads[-1]
    model = w.fleet_panel.model
    cell = model.index(model.row_of(phone), DOWNLOAD_COLUMN)
    assert cell.data(Qt.ItemDataRole.ForegroundRole) == SUCCESS_COLOR
    # Last operation: through the FUMO states in blue, then the result code in words in green
    texts = [t for t, _ in seen.operations]
    for state in ("30 Download Progressing", "40 Download Complete", "60 Update Progressing", "rebooting"):
        assert f"FUMO DownloadAndUpdate: {state}" in texts, texts
    assert seen.operations[1] == ("FUMO DownloadAndUpdate: 30 Download Progressing", RUNNING_COLOR.name())
    assert seen.operations[-1] == ("FUMO DownloadAndUpdate: 200 Successful", SUCCESS_COLOR.name())
    assert seen.strip[-1] == "FUMO DownloadAndUpdate: 200 Successful"  # the Device dock says the same
    assert w.operation_strip.download.text() == seen.downloads[-1]
    # the State leaf came into view when the operation started and went through each value
    values = [v for v, _, _ in seen.states]
    assert "(not shown)" not in values, values
    changes = [(v, flashing) for i, (v, _, flashing) in enumerate(seen.states) if i == 0 or v != values[i - 1]]
    assert changes == [("30", True), ("40", True), ("50", True), ("60", True), ("100", True)], seen.states
    trail_at_60 = next(t for v, t, _ in seen.states if v == "60")
    assert trail_at_60[-2:] == ["40", "50"], trail_at_60  # 40 and 50 came within the flash: shown beside 60
    assert w.tree_panel.view.isExpanded(w.tree_panel.model.index_for("./FwUpdate/fw"))
    w.device_tabs.setCurrentWidget(w.device_panel)
    w.operation_strip.state_button.click()  # "Show State": the leaf selected, on the Tree tab
    assert w.tree_panel.selected_info().path == STATE and w.device_tabs.currentWidget() is w.tree_panel
    # the row sorts by how far its download got, and the filter finds it by its result
    assert cell.data(SortRole) == 1.0
    w.fleet_panel.search.setText("200 successful")
    qtbot.waitUntil(lambda: not model.filtering)
    assert [model.device_id(r) for r in range(model.rowCount())] == [phone]


def test_a_failed_update_is_red_with_its_result_code_in_words(desktop, qtbot):
    phone, seen = _campaign(desktop, qtbot, {"fail": {"410": 1.0}})
    assert seen.operations[-1] == ("FUMO DownloadAndUpdate: 410 Firmware Update Failed", FAILURE_COLOR.name())
    assert seen.strip[-1] == "FUMO DownloadAndUpdate: 410 Firmware Update Failed"
    assert seen.states[-1][0] == "70"  # Update Failed / Have Data
    assert seen.downloads[-1].startswith("100 %")  # the download itself went well


def test_a_cut_download_says_it_resumed_and_a_failed_one_where_it_stopped():
    ops = DeviceOps()
    ops.note(TransferProgress("d", "t1", "http://x/p", 0))
    ops.note(TransferProgress("d", "t1", "http://x/p", 262_144, 600_000))
    ops.note(TransferProgress("d", "t1", "http://x/p", 262_144, 600_000, resumed=1))
    assert ops.download_text("d").startswith("43 % · 262/600 kB") and ops.download_text("d").endswith(
        "resumed 1×")
    assert "cut 1 time(s)" in ops.downloads["d"].tooltip()
    ops.note(TransferProgress("d", "t1", "http://x/p", 262_144, 600_000, resumed=8, outcome="network"))
    assert ops.download_text("d").startswith("network at 43 %")
    assert ops.downloads["d"].color() == FAILURE_COLOR
    ops.note(TransferProgress("d", "t2", "http://x/q", 0))  # the next download starts afresh
    assert ops.download_text("d") == "0 %"
    ops.note(OperationChanged("d", "scomo", "./SCOMO/Download/app/Operations/Install", "ended", 1402))
    assert ops.operation_text("d") == "SCOMO Install: 1402 Download Failed"
    ops.note(OperationChanged("d", "lawmo", "./LAWMO/Operations/FullyLock", "ended", 1200))
    assert (ops.operation_text("d"), ops.operations["d"].color()) == ("LAWMO FullyLock: 1200 Operation Succeeded",
                                                                     SUCCESS_COLOR)
    ops.keep(["e"])
    assert ops.download("d") is None and ops.operation("d") is None


def test_odd_progress_and_unknown_operations_still_read_sensibly():
    ops = DeviceOps()
    ops.note(TransferProgress("d", "t", "http://x/p", 700_000, 600_000))  # more than announced: no 116 %
    assert ops.downloads["d"].percent == 100
    ops.note(TransferProgress("d", "u", "http://x/q", 5_000))  # no size known (no Content-Range total)
    assert ops.downloads["d"].fraction is None and ops.download_text("d") == "5.0 kB"
    ops.note(TransferProgress("d", "u", "http://x/q", 0, outcome="bad url"))
    assert ops.download_text("d") == "bad url" and ops.downloads["d"].color() == FAILURE_COLOR
    ops.note(OperationChanged("d", "vendor-mo", "./Vendor/Op/Run", "ended", 503))  # a kind without a table
    assert ops.operation_text("d") == "VENDOR-MO Run: 503 Service unavailable"
    ops.note(OperationChanged("d", "fumo", "./FwUpdate/fw/Update", "ended", 299))  # a vendor success
    assert ops.operation_text("d") == "FUMO Update: 299 Successful (vendor specified)"
    assert ops.operations["d"].color() == SUCCESS_COLOR


@pytest.mark.parametrize("fraction", [0.25, 0.5, 1.0])
def test_the_download_bar_is_filled_as_far_as_the_download_got(window, fraction):
    from ui.download_bar import BAR_WIDTH, DownloadBarDelegate, bar_rect

    view = window.fleet_panel.view
    delegate = view.itemDelegateForColumn(DOWNLOAD_COLUMN)
    assert isinstance(delegate, DownloadBarDelegate)
    download = Download("t", "http://x/p", done=int(600_000 * fraction), total=600_000,
                        outcome="completed" if fraction == 1.0 else "")
    ops = window.fleet_panel.model.ops
    dev_id = window.fleet_panel.model.device_id(0)
    ops.downloads[dev_id] = download
    image = QImage(300, 24, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, 300, 24)
    option.widget = view
    option.fontMetrics = view.fontMetrics()
    delegate.paint(painter, option, window.fleet_panel.model.index(0, DOWNLOAD_COLUMN))
    painter.end()
    bar = bar_rect(option.rect)
    assert bar.width() == BAR_WIDTH
    y = bar.center().y()
    filled = sum(1 for x in range(bar.left(), bar.right() + 1) if QColor(image.pixel(x, y)) == download.color())
    assert abs(filled - BAR_WIDTH * fraction) <= 3, (filled, fraction)
    text_pixels = sum(1 for x in range(bar.right() + 1, 300) for yy in range(24)
                      if QColor(image.pixel(x, yy)).lightness() < 200)
    assert text_pixels > 50  # the words beside the bar, not on it
