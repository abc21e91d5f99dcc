"""What the device does when a server executes a node: the demo objects' operations, and the
behaviours a profile declares (``[[behaviours]]``: a small list of steps, see :class:`Behaviour`).

The reference server's UI flows create instances (Wi-Fi settings, a firmware update, a data plan)
with an ``Ops`` node, then EXEC one operation; a real device would connect, flash or activate. The
emulated one records the outcome in the instance's ``State`` leaf, and a firmware update also moves
the device's firmware version, so a demonstrator sees the result in the tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.mo.fumo import set_firmware
from emulator.mo.operations import AlertOut, DeviceRandom, MoKind, OperationRun, check_settings
from emulator.tree import Tree
from emulator.tree import uri as uris
from emulator.tree.tree import ExecRequest, TreeEvent


def _instance_root(path: str) -> tuple[str, ...]:
    return uris.split(path)[:-2]  # .../<instance>/Ops/<op>


def _set_state(tree: Tree, root: tuple[str, ...], state: str) -> None:
    tree.set_node(root + ("State",), state)


def connect(tree: Tree, req: ExecRequest) -> int:
    _set_state(tree, _instance_root(req.path), "connected")
    return 200


def update(tree: Tree, req: ExecRequest) -> int:
    root = _instance_root(req.path)
    version = tree.value(root + ("PkgVersion",))
    if version is None and tree.exists(root):
        for child in tree.children(root):  # the MOData may nest one level (FwUpdate/PkgVersion)
            version = tree.value(root + (child, "PkgVersion")) or version
    if not version:
        _set_state(tree, root, "failed: no PkgVersion")
        return 500
    set_firmware(tree, version if isinstance(version, str) else str(version))
    _set_state(tree, root, "updated")
    return 200


def activate(tree: Tree, req: ExecRequest) -> int:
    _set_state(tree, _instance_root(req.path), "active")
    return 200


def register(tree: Tree) -> None:
    """Install the behaviours on a (template) tree; forks inherit them."""
    tree.on_exec("./DM2/*/*/Ops/Connect", connect)
    tree.on_exec("./DM2/*/*/Ops/Update", update)
    tree.on_exec("./DM2/*/*/Ops/Activate", activate)


# ---------------------------------------------------------------------------------------------
# declared behaviours: a profile's [[behaviours]] (set nodes, wait, answer a status, alert, fail)

MAX_STEPS = 64
"""Steps one behaviour may list (a profile with more is refused at load, naming the line)."""
MAX_WAIT_S = 3600.0
"""Longest single ``wait`` step, seconds."""
MAX_PENDING_JOBS = 64
"""Runs one device keeps for its driver to continue (a driver that never takes them, such as a bare
engine loop, must not make a device grow without end): an Exec beyond it answers 500, nothing starts."""
STEP_KINDS = ("set", "wait", "status", "fail", "alert")
PLACEHOLDERS = ("{result}", "{data}", "{node}", "{correlator}", "{server}")


@dataclass(frozen=True, slots=True)
class AlertStep:
    """A generic alert the behaviour sends in a later session (DM 1.2 Alert 1226 with the Exec's
    Correlator; DM 2.0 a generic Alert). ``data`` and ``source`` take the placeholders."""

    type: str
    format: str = "chr"
    data: str = "{result}"
    source: str = "{node}"
    mark: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One step: ``set`` these nodes, ``wait`` seconds, ``status`` the answer, ``fail`` with
    ``probability`` (then ``status``), or ``alert``."""

    kind: str
    values: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    status: int = 200
    probability: float = 0.0
    alert: AlertStep | None = None


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What a profile declares for one node: run ``steps`` on Exec (``on = "exec"``) or when a server
    Replaces it (``on = "replace"``, a trigger node). ``node`` may hold ``*`` segments.

    Or a whole managed object: ``mo`` names its kind (``"fumo"``: :mod:`emulator.mo.operations`),
    ``node`` its root, ``settings`` its knobs (checked, defaults filled); no steps then."""

    node: str
    steps: tuple[Step, ...]
    on: str = "exec"
    line: int | None = None
    mo: str = ""
    settings: tuple[tuple[str, object], ...] = ()

    def setting(self, name: str) -> object:
        return dict(self.settings)[name]

    @property
    def asynchronous(self) -> bool:
        return any(s.kind == "wait" for s in self.steps)


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


@dataclass
class BehaviourRun:
    """One execution of a :class:`Behaviour`, sans-IO: :meth:`advance` runs steps up to the next
    ``wait`` (returning its seconds) or to the end (None); whoever holds the clock calls it again.

    ``result`` starts at 200; ``status`` steps set it; a ``fail`` step that hits sets it to its
    status and skips every later step except the alerts, which then report the failure.
    """

    behaviour: Behaviour
    request: ExecRequest
    rng: DeviceRandom
    index: int = 0
    result: int = 200
    failed: bool = False
    alerts: list[AlertOut] = field(default_factory=list)

    def _values(self) -> dict[str, str]:
        data = self.request.data
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")
        return {"{result}": str(self.result), "{data}": text, "{node}": self.request.path,
                "{correlator}": self.request.correlator or "", "{server}": self.request.by or ""}

    def advance(self, tree: Tree) -> float | None:
        steps = self.behaviour.steps
        while self.index < len(steps):
            step = steps[self.index]
            self.index += 1
            if self.failed and step.kind != "alert":
                continue
            if step.kind == "set":
                values = self._values()
                for path, value in step.values:
                    filled = _fill(value, values)
                    if tree.exists(path) and tree.info(path).format != "node":
                        tree.replace(path, filled, by=None)
                    else:
                        tree.set_node(path, filled)
            elif step.kind == "wait":
                return step.seconds
            elif step.kind == "status":
                self.result = step.status
            elif step.kind == "fail":
                if step.probability > 0 and self.rng.random() < step.probability:
                    self.result, self.failed = step.status, True
            elif step.kind == "alert" and step.alert is not None:
                a, values = step.alert, self._values()
                self.alerts.append(AlertOut(a.type, a.format, _fill(a.data, values), _fill(a.source, values),
                                            a.mark, self.request.correlator))
        return None


@dataclass
class Job:
    """A run that goes on after the session: ``wait`` seconds first (None: only its alerts to send);
    an :class:`OperationRun` (a managed object's state machine) is driven by its actions instead."""

    run: BehaviourRun | OperationRun
    wait: float | None

    @property
    def server_id(self) -> str | None:
        return self.run.request.by


class DeviceBehaviours:
    """The declared behaviours of one device: the exec handlers, and the runs left for later.

    Synchronous behaviours (no ``wait``) answer their status; asynchronous ones answer 202 (DM 1.2
    and DM 2.0 alike) and become a :class:`Job` the device's driver (the fleet) continues after the
    session, with its clock; alerts always go in a later session, to the server that executed.
    ``rng`` is seeded per device, so the failures of a fleet are the same from run to run.
    """

    def __init__(self, behaviours: tuple[Behaviour, ...], seed: str) -> None:
        self.behaviours = behaviours
        self.rng = DeviceRandom(seed)
        self.jobs: list[Job] = []
        self.mo_state: dict[str, object] = {}  # declared managed objects' own state, by root node
        self.device: Any = None  # the VirtualDevice these belong to (set by it): a factory reset, its profile

    def attach(self, tree: Tree) -> None:
        for b in self.behaviours:
            if b.mo:
                mo_kinds()[b.mo].attach(self, tree, b, self.rng)
            elif b.on == "exec":
                tree.on_exec(b.node, self._handler(b))

    def configure(self, kind: str, settings: dict[str, object]) -> int:
        """Change the knobs of every declared managed object of ``kind`` on this device (a scenario's
        settings over the profile's); ValueError naming a bad one, before anything changes. Returns
        how many instances took them."""
        known = mo_kinds().get(kind)
        if known is None:
            raise ValueError(f"unknown managed object {kind!r} (known: {', '.join(sorted(mo_kinds()))})")
        check_settings(known, settings)
        count = 0
        for b in self.behaviours:
            state = self.mo_state.get(b.node)
            if b.mo == kind and state is not None:
                getattr(state, "settings").update(settings)  # noqa: B009 (each kind keeps a dict)
                count += 1
        return count

    def start_operation(self, run: OperationRun) -> int:
        """Keep an operation for the driver (202: it goes on after the session); 500 when the device
        already holds :data:`MAX_PENDING_JOBS` runs (nothing starts)."""
        if len(self.jobs) >= MAX_PENDING_JOBS:
            return 500
        self.jobs.append(Job(run, 0.0))
        return 202

    def _handler(self, behaviour: Behaviour) -> Callable[[Tree, ExecRequest], int]:
        def handle(tree: Tree, request: ExecRequest) -> int:
            return self.start(behaviour, tree, request)

        return handle

    def start(self, behaviour: Behaviour, tree: Tree, request: ExecRequest) -> int:
        if len(self.jobs) >= MAX_PENDING_JOBS:
            return 500
        run = BehaviourRun(behaviour, request, self.rng)
        wait = run.advance(tree)
        if wait is not None:
            self.jobs.append(Job(run, wait))
            return 202
        if run.alerts:
            self.jobs.append(Job(run, None))
        return run.result

    def on_change(self, tree: Tree, event: TreeEvent) -> None:
        """A server's Replace of a trigger node starts its ``on = "replace"`` behaviour."""
        if event.kind != "replace" or event.by is None:
            return
        segs = uris.split(event.path)
        for b in self.behaviours:
            if b.on == "replace" and not b.mo and _matches(uris.split(b.node), segs):
                self.start(b, tree, ExecRequest(event.path, event.new, event.by, None))

    def take_jobs(self) -> list[Job]:
        jobs, self.jobs = self.jobs, []
        return jobs


def mo_kinds() -> dict[str, MoKind]:
    """Every managed object a profile may declare (``[[behaviours]] mo = ...``), by name: the
    modules that implement them are imported here, and register themselves."""
    from emulator.mo import connmo, diagmon, fumo, lawmo, scomo  # noqa: F401
    from emulator.mo.operations import MO_KINDS

    return MO_KINDS


def _matches(pattern: tuple[str, ...], segs: tuple[str, ...]) -> bool:
    return len(pattern) == len(segs) and all(p in ("*", s) for p, s in zip(pattern, segs, strict=True))
