"""DiagMon: the diagnostics a server reads, the traps that make a device report on its own, and the
error log it uploads (OMA DiagMon, a useful subset; README "How DM is read here").

What comes from OMA and what is the project's choice [P]:

- The MO identifier ``urn:oma:mo:oma-diagmon:1.0`` and the generic alert types
  ``urn:oma:at:diagmon:1.0:TrapNotification`` (a trap became active) and
  ``urn:oma:at:diagmon:1.0:OperationComplete`` (the result of a DiagMon operation: here the log
  upload) are OMNA's registered names (OMNA "DM Alert Types", DiagMon section). The leaf names
  ``ServerID`` (where a trap's alert goes) and ``SampIntrvl`` (seconds between samples) are the
  DiagMon function frame's.
- The layout below the root is the project's [P]: OMA's DiagMon functions (battery, memory, radio)
  are separate MOs with vendor-defined data; one small object holding what a DM server developer
  most often reads is easier to test against:

  ``<root>/SampIntrvl``                    seconds between samples while a trap is armed (1-86,400)
  ``<root>/Battery/Level``, ``Status``     percent (0-100); charging, discharging or full
  ``<root>/Memory/Total``, ``Free``        KiB
  ``<root>/Radio/<bearer>/Signal``, ``Up`` dBm of each radio bearer (not Ethernet/DSL); up or not
  ``<root>/ErrorLog/Entries``, ``Data``    how many lines the log holds; the log, one line each
  ``<root>/ErrorLog/UploadURL``            where ``Upload`` sends the log (http or https)
  ``<root>/ErrorLog/Upload``               Exec: POST the log to the URL (Exec data, else UploadURL);
                                           answered 202, the outcome comes as OperationComplete
  ``<root>/ErrorLog/UploadStatus``         the last upload's outcome, in words
  ``<root>/Trap/<x>/Measure``              the leaf watched, relative to the root (``Battery/Level``)
  ``<root>/Trap/<x>/Condition``            ``below`` or ``above``
  ``<root>/Trap/<x>/Threshold``            an integer (|n| < 10^12)
  ``<root>/Trap/<x>/Enabled``              true or false
  ``<root>/Trap/<x>/State``                active or inactive (the device's)
  ``<root>/Trap/<x>/ServerID``             who gets the alert: the server that last armed it

  Three traps exist from the start, disabled: ``Battery`` (Battery/Level below 15),
  ``Memory`` (Memory/Free below 65,536 KiB) and ``Signal`` (the first radio's Signal below -110 dBm);
  a DM 1.2 server may Add more.
- The values move plausibly over time and are the same from run to run (seeded per device): the
  battery drains a few percent an hour and recharges at 15 %, free memory swings around a third of
  the total, each radio's signal drifts around its technology's typical level.
- A trap fires once when its condition becomes true (inactive -> active: one TrapNotification), and
  re-arms when it becomes false again; it is evaluated whenever the device samples: when a server
  reads the values (:meth:`Diagnostics.covers`, at most every :data:`SAMPLE_GAP_S`), after a session
  that changed a trap or while one is enabled, every ``SampIntrvl`` seconds while one is enabled, and
  when a local event changes a value. A device whose DiagMon no server reads or arms never samples.
- A profile declares the object (``[[behaviours]] mo = "diagmon"``, at ``./DiagMon`` and/or
  ``./DM2/DiagMon``); a device whose profile does not has no DiagMon at all.

This module is sans-IO: time comes in as an argument; the log upload is an operation
(:mod:`emulator.mo.operations`: a :class:`~emulator.mo.operations.Send`, then its OperationComplete
alert) and a trap that fired is one too (only its alert), both driven by the device's driver the way
every managed object's operations are.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from emulator.mo.operations import DeviceRandom, Fetched, MoKind, OperationRun, Send, Steps, register_mo
from emulator.mo.standard import dm12_object_acl, protocol_of
from emulator.tree import Tree, TreeError
from emulator.tree import uri as uris
from emulator.tree.ddf import load_builtin
from emulator.tree.ddfwrite import fill_required, write_interior, write_leaf, write_values
from emulator.tree.node import descend
from emulator.tree.tree import ExecRequest, Value, format_tstamp

MOID = "urn:oma:mo:oma-diagmon:1.0"
ALERT_TRAP = "urn:oma:at:diagmon:1.0:TrapNotification"
ALERT_OPERATION = "urn:oma:at:diagmon:1.0:OperationComplete"
DM1_BASE = "./DiagMon"
DM2_BASE = "./DM2/DiagMon"
BASES = {"dm12": DM1_BASE, "dm2": DM2_BASE}

def device_written(path: str) -> bool:
    """Whether ``path`` is in a DiagMon object, whose readings and error log the device itself writes
    around every session (a test comparing a tree before and after a server's commands leaves them out)."""
    return any(path == base or path.startswith(base + "/") for base in BASES.values())


SAMPLE_MIN_S, SAMPLE_MAX_S, SAMPLE_DEFAULT_S = 1, 86400, 60
"""``SampIntrvl``: seconds between samples while a trap is enabled (a server's value outside is 400)."""
SAMPLE_GAP_S = 10.0
"""A server's read finds readings at most this old: the device samples before it only when its last
sample is older (or a server changed a trap); a watcher's and a local event's samples always run."""
THRESHOLD_LIMIT = 10**12
"""A trap's Threshold must be an integer with ``abs(n) < THRESHOLD_LIMIT`` (else 400)."""
URL_MAX = 2048
"""Longest UploadURL (characters)."""
LOG_MAX_ENTRIES = 200
"""Lines the error log keeps (the oldest go first)."""
LOG_LINE_MAX = 300
"""Characters one log line keeps."""

RESULT_UPLOADED = 200
RESULT_NETWORK = 503
"""OperationComplete result codes [P]: 200 uploaded; the receiving server's own HTTP status when it
refused (413 too large, 404 unknown URL ...); 503 when nothing answered (network failure)."""

_RADIO_DBM = {"LTE": -92.0, "5GNR": -95.0, "NBIOT": -105.0, "WIFI": -58.0, "SATELLITE": -112.0, "UMTS": -90.0,
              "GSM": -85.0, "LTE-M": -100.0}
"""Typical received signal per radio technology (dBm); a bearer type not listed has no radio."""


# ---------------------------------------------------------------------------------------------
# checks of what a server writes (installed with Tree.on_value)


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _text(value: Value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


def check_http_url(text: str) -> str | None:
    """Why ``text`` is no URL a device may send data to (None: it is one)."""
    if len(text) > URL_MAX:
        return f"a URL of {len(text)} characters (at most {URL_MAX})"
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{text[:80]!r} is not an http or https URL"
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return f"{text[:80]!r} has no valid port"
    return None


def _check_threshold(tree: Tree, path: str, value: Value) -> str | None:
    n = _int(_text(value))
    if n is None or abs(n) >= THRESHOLD_LIMIT:
        return f"Threshold must be an integer with fewer than 13 digits, not {_text(value)[:40]!r}"
    return None


def _check_condition(tree: Tree, path: str, value: Value) -> str | None:
    return None if _text(value) in ("below", "above") else f"Condition is below or above, not {_text(value)[:40]!r}"


def _check_enabled(tree: Tree, path: str, value: Value) -> str | None:
    return None if _text(value) in ("true", "false") else f"Enabled is true or false, not {_text(value)[:40]!r}"


def _check_interval(tree: Tree, path: str, value: Value) -> str | None:
    n = _int(_text(value))
    if n is None or not SAMPLE_MIN_S <= n <= SAMPLE_MAX_S:
        return f"SampIntrvl is {SAMPLE_MIN_S}-{SAMPLE_MAX_S} seconds, not {_text(value)[:40]!r}"
    return None


def _check_url(tree: Tree, path: str, value: Value) -> str | None:
    text = _text(value)
    return None if text == "" else check_http_url(text)


def _check_measure(tree: Tree, path: str, value: Value) -> str | None:
    rel = _text(value)
    base = uris.split(path)[:-3]  # <base>/Trap/<x>/Measure
    names = tuple(s for s in rel.split("/") if s)
    if not names or names[0] not in ("Battery", "Memory", "Radio") or ".." in names \
            or not tree.exists(base + names) or tree.info(base + names).format != "int":
        return f"Measure must name a measured value (Battery/Level, Memory/Free, Radio/<bearer>/Signal), " \
               f"not {rel[:60]!r}"
    return None


def install_checks(tree: Tree, base: str) -> None:
    """What a server may write into the DiagMon object at ``base`` (each refusal answers 400)."""
    tree.on_value(f"{base}/Trap/*/Threshold", _check_threshold)
    tree.on_value(f"{base}/Trap/*/Condition", _check_condition)
    tree.on_value(f"{base}/Trap/*/Enabled", _check_enabled)
    tree.on_value(f"{base}/Trap/*/Measure", _check_measure)
    tree.on_value(f"{base}/SampIntrvl", _check_interval)
    tree.on_value(f"{base}/ErrorLog/UploadURL", _check_url)


# ---------------------------------------------------------------------------------------------
# the measurements


def radio_level(bearer_type: str) -> float | None:
    """Typical signal of a radio technology in dBm; None for a wired bearer."""
    return _RADIO_DBM.get(bearer_type.upper().replace(" ", "").replace("_", ""))


@dataclass
class Readings:
    """What the device measures, moved on by :meth:`advance` (deterministic per seed and time)."""

    seed: str
    battery: float
    charging: bool
    memory_total: int
    since: float | None = None
    overrides: dict[str, int] = field(default_factory=dict)  # local events: "Battery/Level" -> 5

    DRAIN_PER_H = 4.0
    CHARGE_PER_H = 40.0
    LOW, HIGH = 15.0, 100.0

    @classmethod
    def for_device(cls, seed: str, memory_total_kib: int = 4 << 20) -> Readings:
        rng = random.Random(seed)
        return cls(seed, battery=float(rng.randint(55, 100)), charging=False, memory_total=memory_total_kib)

    def advance(self, now: float) -> None:
        """Move the battery on to ``now`` (drains, then recharges from LOW to HIGH, and so on)."""
        if self.since is None or now <= self.since:
            self.since = self.since if self.since is not None and now <= self.since else now
            return
        hours = (now - self.since) / 3600.0
        self.since = now
        while hours > 0:
            if self.charging:
                need = (self.HIGH - self.battery) / self.CHARGE_PER_H
                if hours < need:
                    self.battery += hours * self.CHARGE_PER_H
                    return
                self.battery, self.charging, hours = self.HIGH, False, hours - need
            else:
                need = (self.battery - self.LOW) / self.DRAIN_PER_H
                if hours < need:
                    self.battery -= hours * self.DRAIN_PER_H
                    return
                self.battery, self.charging, hours = self.LOW, True, hours - need

    def battery_level(self) -> int:
        return self.overrides.get("Battery/Level", int(round(self.battery)))

    def battery_status(self) -> str:
        if self.battery_level() >= 100:
            return "full"
        return "charging" if self.charging else "discharging"

    def memory_free(self, now: float) -> int:
        if "Memory/Free" in self.overrides:
            return self.overrides["Memory/Free"]
        phase = (zlib.crc32(self.seed.encode()) % 628) / 100.0
        share = 0.34 + 0.12 * math.sin(2 * math.pi * now / 3600.0 + phase)
        jitter = random.Random(f"{self.seed}:mem:{int(now // 30)}").uniform(-0.02, 0.02)
        return int(self.memory_total * (share + jitter))

    def signal(self, bearer: str, typical: float, now: float) -> int:
        key = f"Radio/{bearer}/Signal"
        if key in self.overrides:
            return self.overrides[key]
        phase = (zlib.crc32(f"{self.seed}:{bearer}".encode()) % 628) / 100.0
        noise = random.Random(f"{self.seed}:{bearer}:{int(now // 10)}").gauss(0.0, 2.0)
        return int(round(typical + 8.0 * math.sin(2 * math.pi * now / 900.0 + phase) + noise))


# ---------------------------------------------------------------------------------------------
# what leaves the device


@dataclass(frozen=True, slots=True)
class TrapFired:
    """A trap became active: one TrapNotification to ``server_id`` over ``protocol``."""

    protocol: str
    server_id: str
    source: str  # the trap's node (DM 1.2 URI; the DM 2.0 driver makes it a ClientURI)
    measure: str
    value: int
    condition: str
    threshold: int

    @property
    def data(self) -> dict[str, str]:
        return {"Measure": self.measure, "Value": str(self.value), "Condition": self.condition,
                "Threshold": str(self.threshold)}

    @property
    def text(self) -> str:
        return f"{self.measure}={self.value} {self.condition} {self.threshold}"


@dataclass(frozen=True, slots=True)
class Radio:
    """One radio bearer as the device measures it."""

    name: str
    typical: float
    up: bool


# ---------------------------------------------------------------------------------------------
# one device's diagnostics


class Diagnostics:
    """The DiagMon side of one device: readings, the error log, traps and uploads (sans-IO).

    ``bases`` are the DiagMon roots the device's tree has (DM 1.2, DM 2.0). :meth:`sample` writes the
    readings into every base and returns the traps that fired; an Exec of ``ErrorLog/Upload`` leaves
    an :class:`UploadJob` in :attr:`jobs` for the driver (:meth:`take_jobs`).
    """

    __slots__ = ("_log", "_readings", "bases", "fired", "last_sample", "seed", "start", "traps_touched")

    def __init__(self, seed: str, bases: dict[str, str],
                 start: Callable[[OperationRun], int] | None = None) -> None:
        """``start``: how an operation is handed to the device's driver (its behaviours'
        ``start_operation``: 202, or 500 when the device holds too many). The readings and the log
        are made when first needed: a device whose DiagMon no server reads costs little."""
        self.seed = seed
        self.bases = bases
        self.start = start
        self._readings: Readings | None = None
        self._log: deque[str] | None = None
        self.last_sample: float | None = None
        self.traps_touched = False  # a server wrote into a trap since the last sample
        self.fired: list[TrapFired] = []  # every trap that fired, oldest first (the newest 100)

    @property
    def readings(self) -> Readings:
        if self._readings is None:
            self._readings = Readings.for_device(self.seed)
        return self._readings

    @property
    def log_lines(self) -> deque[str]:
        if self._log is None:
            self._log = deque(maxlen=LOG_MAX_ENTRIES)
        return self._log

    @property
    def settings(self) -> dict[str, object]:
        """DiagMon has no knobs (a scenario's ``configure`` of it changes nothing)."""
        return {}

    def covers(self, uri: str | tuple[str, ...]) -> bool:
        """Whether reading ``uri`` reads some of the DiagMon values (a node in a base, or above one)."""
        try:
            segs = uri if isinstance(uri, tuple) else uris.split(uri.partition("?")[0])
        except TreeError:
            return False  # a malformed URI: the tree answers it
        for base in self.bases.values():
            b = uris.split(base)
            n = min(len(b), len(segs))
            if segs[:n] == b[:n]:
                return True
        return False

    # ------------------------------------------------------------------ the error log

    def log(self, tree: Tree, now: float, text: str) -> None:
        """Add one line to the error log (a failed session, a bearer change, a trap, an upload)."""
        self.log_lines.append(f"{format_tstamp(now)} {text}"[:LOG_LINE_MAX])
        self._write_log(tree)

    def log_text(self) -> str:
        return "".join(line + "\n" for line in self._log or ())

    def _write_log(self, tree: Tree) -> None:
        text = self.log_text()
        for base in self.bases.values():
            if tree.exists(f"{base}/ErrorLog"):
                _set(tree, f"{base}/ErrorLog/Entries", str(len(self.log_lines)))
                _set(tree, f"{base}/ErrorLog/Data", text)

    # ------------------------------------------------------------------ sampling and traps

    def sample(self, tree: Tree, now: float, radios: list[Radio]) -> list[TrapFired]:
        """Measure at ``now``, write the values, evaluate the traps; the traps that just fired."""
        self.last_sample, self.traps_touched = now, False
        r = self.readings
        r.advance(now)
        values = {"Battery/Level": r.battery_level(), "Memory/Free": r.memory_free(now)}
        for radio in radios:
            values[f"Radio/{radio.name}/Signal"] = r.signal(radio.name, radio.typical, now)
        fired: list[TrapFired] = []
        for protocol, base in self.bases.items():
            if not tree.exists(base):
                continue
            for rel, value in values.items():
                if tree.exists(f"{base}/{rel}"):
                    _set(tree, f"{base}/{rel}", str(value))
            _set(tree, f"{base}/Battery/Status", r.battery_status())
            for radio in radios:
                if tree.exists(f"{base}/Radio/{radio.name}/Up"):
                    _set(tree, f"{base}/Radio/{radio.name}/Up", "true" if radio.up else "false")
            fired.extend(self._traps(tree, protocol, base, values, radios))
        for trap in fired:
            self.fired.append(trap)
            self.log_lines.append(f"{format_tstamp(now)} trap {trap.source}: {trap.text}"[:LOG_LINE_MAX])
        del self.fired[:-100]
        if fired:
            self._write_log(tree)
        return fired

    def due(self, now: float) -> bool:
        """Whether a server's read should find new readings (see :data:`SAMPLE_GAP_S`)."""
        return self.traps_touched or self.last_sample is None or not 0 <= now - self.last_sample < SAMPLE_GAP_S

    def due_after_session(self, tree: Tree, now: float) -> bool:
        """Whether the device samples when a session ended: a server changed a trap (an armed trap may
        fire at once), or a trap is armed and the last sample is older than :data:`SAMPLE_GAP_S`. A
        device with no trap armed samples only when a server reads its values."""
        return self.traps_touched or (self.due(now) and self.armed(tree))

    def set_value(self, measure: str, value: int | None) -> None:
        """A local event fixes a reading (the battery drops to 5 %); None lets it move again."""
        if value is None:
            self.readings.overrides.pop(measure, None)
        else:
            self.readings.overrides[measure] = int(value)

    def _traps(self, tree: Tree, protocol: str, base: str, values: dict[str, int],
               radios: list[Radio]) -> list[TrapFired]:
        traps = f"{base}/Trap"
        if not tree.exists(traps):
            return []
        down = {f"Radio/{r.name}/Signal" for r in radios if not r.up}
        out: list[TrapFired] = []
        for name in tree.children(traps):
            node = f"{traps}/{name}"
            if _text(tree.value(f"{node}/Enabled", "")) != "true" and _text(tree.value(f"{node}/State", "")) != "active":
                continue  # (most traps are off: two reads, not six)
            leaf = {k: _text(tree.value(f"{node}/{k}", ""))
                    for k in ("Measure", "Condition", "Threshold", "Enabled", "State", "ServerID")}
            measure = leaf["Measure"]
            threshold = _int(leaf["Threshold"]) if leaf["Threshold"] else None
            if leaf["Enabled"] != "true" or threshold is None or measure not in values or measure in down:
                if leaf["State"] == "active" and leaf["Enabled"] != "true":
                    _set(tree, f"{node}/State", "inactive")
                continue
            value = values[measure]
            hit = value < threshold if leaf["Condition"] != "above" else value > threshold
            state = "active" if hit else "inactive"
            if state != leaf["State"]:  # (a trap a server added has no State leaf until now)
                tree.set_node(f"{node}/State", state) if not tree.exists(f"{node}/State") \
                    else _set(tree, f"{node}/State", state)
            if hit and leaf["State"] != "active" and leaf["ServerID"]:
                out.append(TrapFired(protocol, leaf["ServerID"], node, measure, value,
                                     leaf["Condition"] or "below", threshold))
        return out

    def armed(self, tree: Tree) -> bool:
        """Whether some trap is enabled (the driver then samples every SampIntrvl seconds)."""
        for base in self.bases.values():  # (after every session: the traps found once, their leaves below)
            traps = tree.lookup(f"{base}/Trap")
            if traps is not None and traps.children and any(
                    (enabled := descend(trap, ("Enabled",))) is not None and _text(enabled.value) == "true"
                    for trap in traps.children.values()):
                return True
        return False

    def interval(self, tree: Tree) -> float:
        """The shortest SampIntrvl of the bases (seconds)."""
        found = [_int(_text(tree.value(f"{b}/SampIntrvl"))) for b in self.bases.values()
                 if tree.exists(f"{b}/SampIntrvl")]
        valid = [n for n in found if n is not None and SAMPLE_MIN_S <= n <= SAMPLE_MAX_S]
        return float(min(valid)) if valid else float(SAMPLE_DEFAULT_S)

    def note_server_write(self, tree: Tree, path: str, by: str) -> None:
        """A server wrote inside a trap: it becomes the trap's ServerID (where the alert goes)."""
        segs = uris.split(path)
        for base in self.bases.values():
            b = uris.split(base)
            if segs[:len(b) + 1] == b + ("Trap",) and len(segs) >= len(b) + 3 and segs[len(b) + 2] != "ServerID":
                trap = uris.join(segs[:len(b) + 2])
                self.traps_touched = True
                if not tree.exists(trap) or tree.info(trap).format != "node":
                    continue
                if not tree.exists(f"{trap}/ServerID"):
                    tree.set_node(f"{trap}/ServerID", by)
                elif _text(tree.value(f"{trap}/ServerID")) != by:
                    _set(tree, f"{trap}/ServerID", by)

    # ------------------------------------------------------------------ the log upload

    def exec_upload(self, tree: Tree, request: ExecRequest, *, protocol: str, base: str) -> int:
        """Exec of ``ErrorLog/Upload``: 202 and the upload goes on as an operation, or 400 for no usable
        URL (nothing starts)."""
        data = _text(request.data).strip()
        if data.startswith("url="):
            data = (parse_qs(data).get("url") or [""])[0]
        url = data or _text(tree.value(f"{base}/ErrorLog/UploadURL")).strip()
        if not url or check_http_url(url) is not None:
            return 400
        if self.start is None:
            return 500  # a device without a driver cannot send anything
        run = OperationRun("diagmon", request)
        run.steps = self._upload(tree, run, base, url)
        return self.start(run)

    def _upload(self, tree: Tree, run: OperationRun, base: str, url: str) -> Steps:
        """POST the log through the bearer, write the outcome, report OperationComplete."""
        body = self.log_text().encode("utf-8")
        answer: Fetched = yield Send("POST", url, body, "text/plain; charset=utf-8")
        status = answer.status
        result = RESULT_UPLOADED if 200 <= status < 300 else (status if status >= 400 else RESULT_NETWORK)
        detail = f"{len(body)} bytes" if result == RESULT_UPLOADED else (answer.error or f"HTTP {status}")
        words = f"{result} " + (f"uploaded {detail}" if result == RESULT_UPLOADED else f"failed: {detail}")
        if tree.exists(f"{base}/ErrorLog/UploadStatus"):
            _set(tree, f"{base}/ErrorLog/UploadStatus", words[:LOG_LINE_MAX])
        if result != RESULT_UPLOADED:
            self.log(tree, tree.clock(), f"log upload to {url[:100]} {words}")
        run.result = result
        run.report(ALERT_OPERATION, urlencode({"Result": result, "URL": url}))

    def trap_operation(self, trap: TrapFired) -> OperationRun:
        """A trap that fired, as an operation that only reports (TrapNotification to its server)."""
        run = OperationRun("diagmon", ExecRequest(trap.source, None, trap.server_id, None))
        run.steps = _nothing()
        run.report(ALERT_TRAP, urlencode(trap.data), source=trap.source)
        return run


def _nothing() -> Steps:
    """The steps of an operation that only reports."""
    yield from ()


_MISSING = b"\x00missing"


def _set(tree: Tree, uri: str, value: str) -> None:
    """A device-side write of an existing leaf (keeps its format); no event when nothing changed."""
    old = tree.value(uri, _MISSING)
    if old is not _MISSING and old != value:
        tree.replace(uri, value)


def radios_of(bearers: list[tuple[str, str, bool]]) -> list[Radio]:
    """(name, type, up) of the device's bearers -> the radio ones."""
    out = []
    for name, kind, up in bearers:
        level = radio_level(kind)
        if level is not None:
            out.append(Radio(name, level, up))
    return out


# ---------------------------------------------------------------------------------------------
# the managed object a profile declares: [[behaviours]] mo = "diagmon", node = "./DiagMon"


def install(tree: Tree, root: str, settings: Mapping[str, object], profile: Any) -> None:
    """The DiagMon object at ``root`` of a profile's template tree: readings as the profile's
    bearers give them (the device writes new ones when it samples); three disabled traps; the checks
    of what a server may write."""
    desc = load_builtin(MOID).root
    write_interior(tree, desc, root, mo_type=MOID, acl=dm12_object_acl(profile, root))
    fill_required(tree, desc, root)
    radios = radios_of([(b.name, b.type, b.up) for b in profile.bearers])
    radio = (desc.child("Radio") or desc).child("x")
    for r in radios:
        write_interior(tree, radio, f"{root}/Radio/{r.name}")
        if radio is not None:
            write_values(tree, radio, f"{root}/Radio/{r.name}", {"Signal": int(r.typical), "Up": r.up})
    trap = (desc.child("Trap") or desc).child("x")
    first = f"Radio/{radios[0].name}/Signal" if radios else None
    for name, measure, threshold in (("Battery", "Battery/Level", 15), ("Memory", "Memory/Free", 65536),
                                     ("Signal", first, -110)):
        if measure is None or trap is None:
            continue
        write_interior(tree, trap, f"{root}/Trap/{name}")
        write_values(tree, trap, f"{root}/Trap/{name}", {"Measure": measure, "Condition": "below",
                                                        "Threshold": threshold, "Enabled": False,
                                                        "State": "inactive", "ServerID": ""})
    write_leaf(tree, (desc.child("Memory") or desc).child("Total"), f"{root}/Memory/Total",
               Readings.for_device(profile.name).memory_total)
    write_leaf(tree, (desc.child("ErrorLog") or desc).child("Upload"), f"{root}/ErrorLog/Upload", "")
    install_checks(tree, root)


def of(behaviours: Any) -> Diagnostics | None:
    """A device's diagnostics (its behaviours' ``mo_state``); None when its profile declares no DiagMon."""
    for state in behaviours.mo_state.values():
        if isinstance(state, Diagnostics):
            return state
    return None


def _attach(behaviours: Any, tree: Tree, declared: Any, rng: DeviceRandom) -> None:
    """One device's :class:`Diagnostics`, shared by its DiagMon roots (one per protocol): the same
    readings and error log whichever protocol reads them."""
    diag = of(behaviours)
    if diag is None:
        diag = Diagnostics(behaviours.rng.seed, {}, behaviours.start_operation)
    protocol = protocol_of(declared.node)
    diag.bases[protocol] = declared.node
    behaviours.mo_state[declared.node] = diag
    tree.on_exec(f"{declared.node}/ErrorLog/Upload", partial(diag.exec_upload, protocol=protocol, base=declared.node))


register_mo(MoKind("diagmon", {}, install, _attach, None,
                   "diagnostics (OMA DiagMon, the project's subset): battery, memory and radio readings, "
                   "traps, the error log and its upload", roots=(DM1_BASE, DM2_BASE)))
