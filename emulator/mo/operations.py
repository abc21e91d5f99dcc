"""Management operations a device carries on after the session that started them (FUMO, SCOMO,
LAWMO, DiagMon...), written once as state machines, sans-IO.

An operation is a generator over the device's tree: it changes nodes itself and *yields* what it
needs from the world, one :data:`Action` at a time; the driver that holds the clock and the network
(the fleet: :mod:`emulator.fleet.operations`) does it and sends the answer back in:

- :class:`Wait` ``seconds`` (install time, reboot time): answered with None;
- :class:`Fetch` a URL over the device's bearer (HTTP(S), Range resume, size checks:
  :mod:`emulator.transport.download`): answered with a :class:`Fetched`;
- :class:`Send` a request (DLOTA install-notify, a log upload): answered with a :class:`Fetched`;
- :class:`Enter` a state (the MO's own word): published as an ``OperationChanged`` event, None;
- :class:`Report`: send the alerts gathered so far now, in a new session; answered with True when
  the session completed.

Results go to the server as generic alerts: :meth:`OperationRun.report` adds one (the Exec's
Correlator on DM 1.2; on DM 2.0 a generic Alert to the EXEC's ServerURI, see
:func:`emulator.fleet.engines.job_sessions`); whatever is still gathered when the generator ends is
sent in one session then. A profile declares an MO with ``[[behaviours]] mo = "<kind>"``; the kinds
are registered here (:func:`register_mo`) by the modules that implement them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.tree.tree import ExecRequest

if TYPE_CHECKING:
    from emulator.tree import Tree


class DeviceRandom:
    """A device's seeded generator (the failures of a fleet are the same from run to run), made at
    its first draw: the Mersenne Twister's state is 2.5 KB, which a device whose operations never
    draw does not pay. The draws are the generator's own, in the same order."""

    __slots__ = ("_rng", "seed")

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self._rng: random.Random | None = None

    def random(self) -> float:
        if self._rng is None:
            self._rng = random.Random(self.seed)
        return self._rng.random()


@dataclass(frozen=True, slots=True)
class Wait:
    """Let ``seconds`` pass (installing, rebooting)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Fetch:
    """Download ``url`` over the device's current bearer. ``max_size``: the most the device accepts
    (its MaxObjSize, its free memory); ``expect_size``: what a descriptor announced (a different
    size is refused); ``keep``: keep the bytes rather than only their size and SHA-256, also when
    the answer's content type is one of ``keep_types`` (a descriptor); ``rate_kbps``: the package
    server's rate on top of the bearer's (0: the bearer's only)."""

    url: str
    max_size: int
    expect_size: int | None = None
    keep: bool = False
    keep_types: tuple[str, ...] = ()
    rate_kbps: float = 0.0


@dataclass(frozen=True, slots=True)
class Send:
    """One request outside any session (DLOTA install-notify, an upload), over the bearer."""

    method: str
    url: str
    body: bytes = b""
    content_type: str = "application/octet-stream"
    max_answer: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class Enter:
    """The operation entered ``state`` (its MO's own word: FUMO "30"); an event, nothing to wait for."""

    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    """Send the alerts gathered so far in a new session now (the rest of the run goes on after)."""


Action = Wait | Fetch | Send | Enter | Report

FETCH_OUTCOMES = ("completed", "bad url", "http error", "too large", "size mismatch", "bad answer", "network")
"""How a :class:`Fetch` ends: ``completed``, or why not (an MO maps these onto its result codes)."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a :class:`Fetch` (or :class:`Send`) gave: ``outcome`` (one of :data:`FETCH_OUTCOMES`),
    the last HTTP ``status`` (0: none), ``size`` bytes received of ``total`` announced (0: unknown),
    their SHA-256 (hex), the bytes when kept, how many times it ``resumed`` after a cut (HTTP Range),
    whether the server ignored Range (sent the whole object again), and the error in words."""

    outcome: str
    status: int = 0
    size: int = 0
    total: int = 0
    digest: str = ""
    body: bytes | None = None
    content_type: str = ""
    resumed: int = 0
    range_ignored: bool = False
    requests: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "completed"


@dataclass(frozen=True, slots=True)
class AlertOut:
    """A generic alert a run produced, ready for the wire (placeholders filled)."""

    type: str
    format: str
    data: str
    source: str
    mark: str | None
    correlator: str | None
    target: str | None = None  # the node the operation produced (SCOMO: the deployed component)


Steps = Generator[Action, Any, None]
"""An operation's body: yields actions, receives their answers, ends when the operation is over."""


@dataclass
class OperationRun:
    """One operation started by an Exec: what :class:`emulator.mo.behaviours.Job` carries for the
    driver. ``result`` is the operation's result code (it also answers a DM 2.0 EXEC's ServerURI);
    ``alerts`` are the generic alerts not yet sent."""

    kind: str
    request: ExecRequest
    steps: Steps | None = None  # set right after: the generator usually needs the run itself
    result: int = 200
    alerts: list[AlertOut] = field(default_factory=list)
    started: bool = False

    def next(self, answer: object = None) -> Action | None:
        """The next action, the answer to the previous one sent in; None when the operation ended."""
        assert self.steps is not None, "an OperationRun needs its steps before it is driven"
        try:
            if not self.started:
                self.started = True
                return next(self.steps)
            return self.steps.send(answer)
        except StopIteration:
            return None

    def report(self, alert_type: str, data: str, *, format: str = "chr", source: str | None = None,
               mark: str | None = None, target: str | None = None) -> None:
        """A generic alert for the server that executed (DM 1.2 Alert 1226 with the Exec's Correlator;
        DM 2.0 a generic Alert), sent at the next :class:`Report` or when the run ends."""
        self.alerts.append(AlertOut(alert_type, format, data, source or self.request.path, mark,
                                    self.request.correlator, target))

    def take_alerts(self) -> list[AlertOut]:
        alerts, self.alerts = self.alerts, []
        return alerts


# ---------------------------------------------------------------------------------------------
# managed objects a profile declares: [[behaviours]] mo = "<kind>", node = "<root>", settings


@dataclass(frozen=True, slots=True)
class MoKind:
    """One kind of managed object: ``settings`` its knobs and their defaults (a profile or scenario
    may give only these, of the default's type: int and float interchangeable), ``install`` builds
    its subtree at a root on the profile's template tree (``install(tree, root, settings, profile)``:
    the profile for what the object mirrors of the device, its bearers), ``attach`` registers its Exec
    handlers on one device's tree (``rng`` seeded per device). An object a profile does not declare is
    not in the device's tree and costs the device nothing."""

    name: str
    settings: Mapping[str, object]
    install: Callable[[Tree, str, Mapping[str, object], Any], None]
    attach: Callable[[Any, Tree, Any, DeviceRandom], None]
    """``attach(device_behaviours, tree, behaviour, rng)`` (a DeviceBehaviours and the declaring
    Behaviour of :mod:`emulator.mo.behaviours`, which imports this module, so typed Any here)."""
    check: Callable[[str, object], str | None] | None = None
    """``check(setting, value)``: what is wrong with a value beyond its type (None: fine)."""
    doc: str = ""
    results: Mapping[int, str] = field(default_factory=dict)
    """The kind's result codes in words (reports and the admin page say what a code means)."""
    alert_types: tuple[str, ...] = ()
    """What its generic alerts' types start with (after any ``Reversed-Domain-Name: ``), so a
    traffic line can say what a result code in one means (:func:`describe_result`)."""
    roots: tuple[str, ...] = ()
    """The only nodes an instance may be declared at (empty: any node); an object the device's own
    code finds at a fixed place (DiagMon, ConnMO) names them, and a profile naming another is refused."""


MO_KINDS: dict[str, MoKind] = {}
"""Registered kinds by name; :func:`emulator.mo.behaviours.mo_kinds` imports the implementations."""


def register_mo(kind: MoKind) -> None:
    MO_KINDS[kind.name] = kind


_RESULT_CODE = re.compile(r"^\s*<ResultCode>\s*(\d+)\s*</ResultCode>")


def describe_result(alert_type: str, data: object) -> str:
    """A generic alert's result in words, ``402 Corrupted Firmware Update Package``, when its type
    belongs to a registered kind and its data is one of that kind's codes; else the data as it is."""
    text = (data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")).strip()
    coded = _RESULT_CODE.search(text)  # SCOMO: <ResultCode>1200</ResultCode><Identifier>...</Identifier>
    if coded:
        text = coded.group(1)
    bare = alert_type.split(":", 1)[-1].strip() if alert_type.startswith("Reversed-Domain-Name:") else alert_type
    for kind in MO_KINDS.values():
        if text.isdigit() and len(text) < 6 and any(bare.startswith(t) for t in kind.alert_types):
            words = kind.results.get(int(text))
            return f"{text} {words}" if words else text
    return text[:40]


def check_settings(known: MoKind, given: Mapping[str, object]) -> tuple[tuple[str, object], ...]:
    """``given`` checked against the kind's knobs (ValueError naming the bad one), defaults filled."""
    kind = known.name
    out = dict(known.settings)
    for key, value in given.items():
        if key not in known.settings:
            raise ValueError(f"{kind} has no setting {key!r} (has {', '.join(known.settings)})")
        default = known.settings[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int | float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise ValueError(f"{kind} setting {key!r}: expected {type(default).__name__}, got {type(value).__name__}")
        wrong = known.check(key, value) if known.check is not None else None
        if wrong:
            raise ValueError(f"{kind} setting {key!r}: {wrong}")
        out[key] = value
    return tuple(out.items())
