"""What each device's managed operations are doing, as the window shows it: the download in flight
(or the last one) and the last operation's state or outcome, kept from ``TransferProgress`` and
``OperationChanged`` events (:mod:`emulator.fleet.operations` publishes them).

Why a store of its own: the fleet list (100,000 rows), its filter and the Device dock all read it,
and the window sees the fleet only through events. Only devices that ran an operation have an
entry; an event costs a dict lookup and a few fields, and the rows repaint once per batch, so a
campaign's thousands of progress events a second cost the window one repaint per device per flush.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtGui import QColor

from emulator.events import Event, OperationChanged, TransferProgress
from emulator.mo.result_codes import explain_kind, succeeded
from emulator.tree import Tree

RUNNING_COLOR = QColor(40, 120, 220)
SUCCESS_COLOR = QColor(20, 130, 50)
FAILURE_COLOR = QColor(200, 40, 40)
MIN_SPEED_S = 0.2  # a rate measured over less time than this is noise: not shown
STATE_LEAVES = ("State", "Status")  # FUMO, LAWMO: State; SCOMO: a component's Status


def size_text(n: float) -> str:
    """Bytes for people: ``950 B``, ``12.3 kB``, ``1.2 MB`` (decimal units, as download tools show)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{int(n)} B"


def of_text(done: float, total: float) -> str:
    """``1.2/2.6 MB``: bytes done of a total, in the total's unit when they share one."""
    whole, part = size_text(total), size_text(done)
    unit = whole.rsplit(" ", 1)[-1]
    return f"{part.rsplit(' ', 1)[0]}/{whole}" if part.endswith(f" {unit}") else f"{part}/{whole}"


@dataclass(slots=True)
class Download:
    """One device's download as the window last heard of it."""

    transfer_id: str
    url: str
    done: int = 0
    total: int = 0
    resumed: int = 0
    outcome: str = ""  # "" while it runs, "completed", or why it stopped
    base: int = 0  # bytes already there when the window first heard of it (the rate counts from then)
    started: float = 0.0  # time.monotonic() then
    last: float = 0.0

    @property
    def fraction(self) -> float | None:
        """Done, from 0 to 1 (0 before the first byte); None while bytes come of a size not known."""
        if self.outcome == "completed":
            return 1.0
        if self.total > 0:
            return min(1.0, self.done / self.total)
        return 0.0 if not self.done else None

    @property
    def percent(self) -> int | None:
        f = self.fraction
        return None if f is None else int(f * 100)

    @property
    def failed(self) -> bool:
        return bool(self.outcome) and self.outcome != "completed"

    def speed(self) -> float:
        """Bytes a second since the window first heard of it (0: too soon to tell)."""
        spent = self.last - self.started
        return (self.done - self.base) / spent if spent >= MIN_SPEED_S else 0.0

    def text(self) -> str:
        """One line: ``45 % · 1.2/2.6 MB · 340 kB/s · resumed 1×`` while it runs, ``100 % · 2.6 MB``
        once complete, ``network at 40 % · 1.0/2.6 MB`` when it failed."""
        pct = self.percent
        if self.failed:
            parts = [f"{self.outcome} at {pct} %" if pct is not None and self.total else self.outcome]
        elif pct is not None:
            parts = [f"{pct} %"]
        else:
            parts = [size_text(self.done)]
        if self.total:
            parts.append(size_text(self.total) if self.outcome == "completed" else
                         of_text(self.done, self.total))
        speed = self.speed()
        if speed and not self.outcome:
            parts.append(f"{size_text(speed)}/s")
        if self.resumed:
            parts.append(f"resumed {self.resumed}×")
        return " · ".join(parts)

    def tooltip(self) -> str:
        lines = [f"download: {self.url}", self.text()]
        speed = self.speed()
        if speed and self.outcome:
            lines.append(f"{size_text(speed)}/s on average")
        if self.resumed:
            lines.append(f"the connection was cut {self.resumed} time(s); each time the download went on "
                         "from the byte it had (HTTP Range)")
        return "\n".join(lines)

    def color(self) -> QColor:
        return FAILURE_COLOR if self.failed else SUCCESS_COLOR if self.outcome else RUNNING_COLOR


@dataclass(slots=True)
class Operation:
    """One device's last management operation: running (its state) or ended (its result code)."""

    kind: str  # fumo, scomo, lawmo, diagmon
    node: str  # the executed node: ./FwUpdate/fw/DownloadAndUpdate
    state: str = ""
    detail: str = ""
    result: int = 0
    ended: bool = False

    @property
    def name(self) -> str:
        """``FUMO DownloadAndUpdate``: the kind and the executed node's name."""
        return f"{explain_kind(self.kind, 0)[0]} {self.node.rstrip('/').rsplit('/', 1)[-1]}"

    @property
    def ok(self) -> bool | None:
        """Ended well (True), badly (False), or still running (None)."""
        return succeeded(self.result) if self.ended else None

    def text(self) -> str:
        """``FUMO DownloadAndUpdate: 200 Successful`` once ended; ``...: 30 Download Progressing`` before."""
        if self.ended:
            return f"{self.name}: {self.result} {explain_kind(self.kind, self.result)[1]}"
        if self.state.isdigit() and self.detail:
            return f"{self.name}: {self.state} {self.detail}"
        return f"{self.name}: {self.state}"

    def tooltip(self) -> str:
        where = f"operation: {explain_kind(self.kind, 0)[0]} Exec of {self.node}"
        if self.ended:
            return f"{where}\nended with result {self.result}: {explain_kind(self.kind, self.result)[1]}"
        return f"{where}\nrunning: {self.state} {self.detail}".rstrip()

    def color(self) -> QColor:
        ok = self.ok
        return RUNNING_COLOR if ok is None else SUCCESS_COLOR if ok else FAILURE_COLOR


class DeviceOps:
    """Per device: its :class:`Download` and its :class:`Operation` (see the module doc)."""

    def __init__(self) -> None:
        self.downloads: dict[str, Download] = {}
        self.operations: dict[str, Operation] = {}

    def note(self, e: Event) -> bool:
        """Take one event; True when it was an operation's or a download's (its row changed)."""
        if isinstance(e, TransferProgress):
            now = time.monotonic()
            d = self.downloads.get(e.device_id)
            if d is None or d.transfer_id != e.transfer_id:
                d = self.downloads[e.device_id] = Download(e.transfer_id, e.url, base=e.done, started=now)
            d.done, d.total, d.resumed, d.outcome, d.last = e.done, e.total, e.resumed, e.outcome, now
            return True
        if isinstance(e, OperationChanged):
            op = self.operations.get(e.device_id)
            if op is None or op.node != e.node or op.ended:
                op = self.operations[e.device_id] = Operation(e.operation, e.node)
            if e.state == "ended":
                op.result, op.ended = e.result, True
            else:
                op.state, op.detail = e.state, e.detail
            return True
        return False

    def download(self, device_id: str) -> Download | None:
        return self.downloads.get(device_id)

    def operation(self, device_id: str) -> Operation | None:
        return self.operations.get(device_id)

    def download_text(self, device_id: str) -> str:
        d = self.downloads.get(device_id)
        return d.text() if d is not None else ""

    def operation_text(self, device_id: str) -> str:
        op = self.operations.get(device_id)
        return op.text() if op is not None else ""

    def keep(self, device_ids: Iterable[str]) -> None:
        """Forget the devices not in ``device_ids`` (removed from the fleet)."""
        alive = set(device_ids)
        for table in (self.downloads, self.operations):
            for dev_id in [d for d in table if d not in alive]:
                del table[dev_id]


def state_leaf(tree: Tree, node: str) -> str | None:
    """The leaf an operation on ``node`` moves through its states in: the nearest ``State`` (FUMO,
    LAWMO) or ``Status`` (SCOMO) leaf beside the node or above it; None when there is none."""
    path = node.rstrip("/")
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        for name in STATE_LEAVES:
            leaf = f"{path}/{name}"
            if tree.exists(leaf) and tree.info(leaf).children is None:
                return leaf
    return None
