"""The tree as one management authority's session sees it: priority and delegation rules on top of ACLs.

The tree checks ACLs on every command by itself. Two rules need more than an ACL and are checked
here, in front of the tree, for every change a server's session makes (DM-HLF-014, PROTOCOL 4.2):

- **Priority.** A server that changes an MO instance holds it while its session lasts (and at most
  ``window_s`` after its last change). Another server changing the same instance meanwhile wins if
  its priority (DMAcc ``Ext/Priority``) is higher, and takes the hold over; otherwise it gets 409
  (Conflict) and the instance keeps the first change. Equal priorities: the first one holds.
- **Delegation.** An ACL Replace inside a delegated scope goes through
  :meth:`~emulator.mo.delegation.Delegations.check_acl_change` first.

An MO instance is the innermost interior node whose Type is an MO identifier (``./DevDetail``,
``./DM2/<MO>/<MIID>``), or the top-level node (``./Vendor``) when there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.errors import EmulatorError
from emulator.events import AlertRaised, EventBus
from emulator.mo.instances import instance_of
from emulator.tree import NodeInfo, Tree
from emulator.tree import uri as uris
from emulator.tree.tree import LOCAL

if TYPE_CHECKING:
    from emulator.mo.delegation import Delegations

Path = tuple[str, ...]
ALERT_CONFLICT = "urn:dmemulator:priority:conflict"
ALERT_PREEMPTED = "urn:dmemulator:priority:preempted"
CONFLICT_WINDOW_S = 30.0
KEEP = 1000  # conflict log lines kept (the newest)


class ConflictError(EmulatorError):
    """A change refused because a higher- or equal-priority authority holds the instance."""

    status = 409


@dataclass(slots=True)
class Hold:
    server_id: str
    priority: int
    session: str
    until: float


class Conflicts:
    """Who holds which MO instance of one device, and what came of clashes (for the window)."""

    def __init__(self, window_s: float = CONFLICT_WINDOW_S) -> None:
        self.window_s = window_s
        self.holds: dict[Path, Hold] = {}
        self.log: list[str] = []

    def claim(self, key: Path, server_id: str, priority: int, session: str, now: float) -> Hold | None:
        """Take (or refresh) the hold on ``key``; returns the hold it preempted; ConflictError if refused."""
        held = self.holds.get(key)
        preempted = None
        if held is not None and held.until > now and held.server_id != server_id:
            where = uris.join(key)
            if priority <= held.priority:
                text = (f"{server_id} (priority {priority}) may not change {where}: {held.server_id} "
                        f"(priority {held.priority}) holds it")
                self._note(text)
                raise ConflictError(text)
            self._note(f"{server_id} (priority {priority}) took {where} over from {held.server_id} "
                       f"(priority {held.priority})")
            preempted = held
        self.holds[key] = Hold(server_id, priority, session, now + self.window_s)
        return preempted

    def _note(self, text: str) -> None:
        self.log.append(text)
        if len(self.log) > KEEP:
            del self.log[:-KEEP]

    def release(self, session: str) -> None:
        """A session ended: its holds go."""
        for key in [k for k, h in self.holds.items() if h.session == session]:
            del self.holds[key]

    def holder(self, key: Path, now: float) -> Hold | None:
        held = self.holds.get(key)
        return held if held is not None and held.until > now else None


def instance_key(tree: Tree, path: Path) -> Path:
    """The MO instance a path belongs to (see the module doc)."""
    inst = instance_of(tree, path)
    if inst is not None:
        return inst.path
    return path[:1]


class ManagedTree:
    """A :class:`~emulator.tree.Tree` stand-in handed to one session's engine: reads pass through,
    changes by ``server_id`` pass the priority and delegation checks first (see the module doc).

    Everything not defined here is the tree's own attribute, so the engines cannot tell the difference.
    """

    __slots__ = ("_bus", "_conflicts", "_delegations", "_device_id", "_on_read", "_tree", "priority", "server_id",
                 "session")

    def __init__(self, tree: Tree, *, server_id: str, priority: int, session: str, conflicts: Conflicts,
                 delegations: Delegations | None = None, bus: EventBus | None = None, device_id: str = "",
                 on_read: Callable[[str | Path], None] | None = None) -> None:
        """``on_read``: told the URI of every server Get before the tree answers it (the device
        measures the values a server is about to read: DiagMon)."""
        self._on_read = on_read
        self._tree = tree
        self.server_id = server_id
        self.priority = priority
        self.session = session
        self._conflicts = conflicts
        self._delegations = delegations
        self._bus = bus
        self._device_id = device_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tree, name)

    @property
    def tree(self) -> Tree:
        return self._tree

    def _claim(self, uri: str | Path, by: str | None) -> None:
        if by is None:
            return
        tree = self._tree
        try:
            segs = uri if isinstance(uri, tuple) else uris.split(uri.partition("?")[0])
        except EmulatorError:
            return  # a malformed URI: the tree answers it
        key = instance_key(tree, segs)
        priority = self.priority if by == self.server_id else 0
        try:
            preempted = self._conflicts.claim(key, by, priority, self.session, tree.clock())
        except ConflictError as exc:
            self._alert(ALERT_CONFLICT, str(exc), {"server": by, "instance": uris.join(key)})
            raise
        if preempted is not None:
            self._alert(ALERT_PREEMPTED, self._conflicts.log[-1],
                        {"server": by, "preempted": preempted.server_id, "instance": uris.join(key)})

    def _alert(self, alert_type: str, detail: str, data: dict[str, Any]) -> None:
        if self._bus is not None:
            self._bus.publish(AlertRaised(self._device_id, alert_type, detail, data))

    def get(self, uri: str | Path, *, by: str | None = LOCAL) -> NodeInfo:
        if by is not None and self._on_read is not None:
            self._on_read(uri)
        return self._tree.get(uri, by=by)

    # ------------------------------------------------------------------ changes

    def add(self, uri: str | Path, value: Any = None, *, by: str | None = LOCAL, **kw: Any) -> int:
        self._claim(uri, by)
        return self._tree.add(uri, value, by=by, **kw)

    def replace(self, uri: str | Path, value: Any, *, by: str | None = LOCAL, **kw: Any) -> int:
        self._claim(uri, by)
        return self._tree.replace(uri, value, by=by, **kw)

    def delete(self, uri: str | Path, *, by: str | None = LOCAL) -> int:
        self._claim(uri, by)
        return self._tree.delete(uri, by=by)

    def copy(self, source: str | Path, target: str | Path, *, by: str | None = LOCAL) -> int:
        self._claim(target, by)
        return self._tree.copy(source, target, by=by)

    def replace_prop(self, uri: str | Path, name: str, value: str, *, by: str | None = LOCAL) -> int:
        if by is not None and name == "ACL" and self._delegations is not None:
            try:
                segs = uri if isinstance(uri, tuple) else uris.split(uri)
            except EmulatorError:
                segs = None
            if segs is not None:
                self._delegations.check_acl_change(by, segs, value)
        self._claim(uri, by)
        return self._tree.replace_prop(uri, name, value, by=by)
