"""The step kinds a campaign (:mod:`emulator.server.campaigns`) is made of, and what each sends in
either protocol.

One step is one operation on a device's MO, written once and sent as DM 1.2 commands or DM 2.0
commands:

- ``fumo``: Replace (DM 2.0: HGET) of ``PkgURL``/``PkgVersion`` and Exec of ``DownloadAndUpdate``
  (or ``Download``); ``consent`` asks the user first (DM 1.2 Alert 1101, DM 2.0 SHOW of a page). Its
  report is the FUMO generic alert.
- ``scomo.install`` (a Download node staged, Exec ``DownloadInstallInactive``), ``scomo.activate``,
  ``scomo.remove``: the SCOMO OperationComplete alert reports each.
- ``lawmo.lock`` (FullyLock), ``lawmo.unlock``, ``lawmo.wipe`` (the ``wipe`` items' ToBeWiped set
  first), ``lawmo.reset`` (FactoryReset): the LAWMO OperationComplete alert reports each.
- ``diag.read`` (Get of battery, memory, radios, error log), ``diag.trap`` (arm one trap),
  ``diag.upload`` (Exec of the error log's upload to a one-time URL): these end with the device's
  statuses (200 when every command succeeded, else the first failing status), not with an alert.

A step that ends with an alert succeeds on its MO's success range (FUMO 200-299, SCOMO and LAWMO
1200-1299); anything else ends the device's run there.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import EmulatorError
from emulator.mo import result_codes
from emulator.mo.fumo import ALERT_PREFIX, ALERT_TYPES, FUMO_MOID
from emulator.protocol.dm2.moser import MOSerialization
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Add, Alert, Command, Exec, Get, Item, Meta, Replace
from emulator.server.routes import repo_url

LAWMO_MOID = "urn:oma:mo:oma-lawmo:1.0"
SCOMO_MOID = "urn:oma:mo:oma-scomo:1.0"
DIAG_MOID = "urn:oma:mo:oma-diagmon:1.0"
LAWMO_ALERT = "urn:oma:at:lawmo:1.0:OperationComplete"
SCOMO_ALERT = "urn:oma:at:scomo:1.0:OperationComplete"
ROOTS = {("lawmo", "dm12"): "./LAWMO", ("lawmo", "dm2"): "./DM2/oma-lawmo/LAWMO",
         ("scomo", "dm12"): "./SCOMO", ("scomo", "dm2"): "./DM2/oma-scomo/SCOMO"}
"""Where the shipped profiles declare the instances (the DM 2.0 MIIDs are ``LAWMO`` and ``SCOMO``)."""
MOIDS = {"lawmo": LAWMO_MOID, "scomo": SCOMO_MOID}
DM12_FUMO_NODE = "./FwUpdate/fw"
DM2_FUMO_INSTANCE = f"{FUMO_MOID}/*"
DM12_DIAG = "./DiagMon"
FUMO_OPERATIONS = ("DownloadAndUpdate", "Download")
KINDS = ("fumo", "scomo.install", "scomo.activate", "scomo.remove", "lawmo.lock", "lawmo.unlock", "lawmo.wipe",
         "lawmo.reset", "diag.read", "diag.trap", "diag.upload")
MAX_TEXT = 255
"""Longest name, version or identifier a step takes (a URL path, a node name)."""
TRAP_DEFAULTS = {"Battery": "Battery/Level", "Memory": "Memory/Free"}
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_KEYS = {
    "fumo": {"package", "size", "version", "operation", "descriptor", "consent", "dm12_node", "dm2_instance"},
    "scomo.install": {"package", "size", "version", "name", "pkg_id", "environment", "descriptor"},
    "scomo.activate": {"name"}, "scomo.remove": {"name"},
    "lawmo.lock": set(), "lawmo.unlock": set(), "lawmo.wipe": {"wipe"}, "lawmo.reset": set(),
    "diag.read": set(), "diag.trap": {"trap", "measure", "condition", "threshold"}, "diag.upload": set(),
}


@dataclass(frozen=True, slots=True)
class TrapSpec:
    """A checked trap setup."""

    trap: str
    measure: str
    condition: str
    threshold: int


@dataclass(frozen=True, slots=True)
class Op:
    """One command of a step: ``add``/``replace`` a leaf (``value``, ``fmt``) or ``exec`` a node."""

    kind: str
    path: str
    value: str = ""
    fmt: str = "chr"


@dataclass(frozen=True)
class Step:
    """One checked step of a campaign."""

    kind: str
    package: str = ""  # fumo, scomo.install: the repository's package
    url: str = ""  # its URL (the descriptor's, with ``descriptor``)
    version: str = ""
    operation: str = "DownloadAndUpdate"
    consent: bool = False
    dm12_node: str = DM12_FUMO_NODE
    dm2_instance: str = DM2_FUMO_INSTANCE
    name: str = "app1"  # the SCOMO component (Download/<name>, Inventory/Deployed/<name>)
    pkg_id: str = ""
    environment: str = ""
    wipe: tuple[str, ...] = ("Contacts",)
    trap: TrapSpec | None = None
    params: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def mo(self) -> str:
        return self.kind.split(".")[0]

    @property
    def reported(self) -> bool:
        """Whether a generic alert ends the step (else the device's statuses do)."""
        return self.mo in ("fumo", "scomo", "lawmo")

    def alert_type(self) -> str:
        return {"fumo": ALERT_TYPES.get(self.operation, ALERT_PREFIX), "scomo": SCOMO_ALERT,
                "lawmo": LAWMO_ALERT}.get(self.mo, "")

    def success(self, code: int) -> bool:
        if self.mo == "fumo":
            return 200 <= code < 300
        if self.mo in ("scomo", "lawmo"):
            return 1200 <= code < 1300
        return 200 <= code < 300

    def meaning(self, code: int) -> str:
        return result_codes.explain(self.alert_type() or None, code)

    def exec_path(self, protocol: str) -> str:
        """The node the step's Exec names in the device's tree ("" for a step without one)."""
        if self.mo == "fumo":
            return f"{self.dm12_node if protocol == 'dm12' else self.dm2_instance}/{self.operation}"
        ops = self.ops(protocol)
        return next((op.path for op in reversed(ops) if op.kind == "exec"), "")

    def matches(self, protocol: str, alert_type: str, source: str) -> bool:
        """Whether a generic alert (type, Source) is this step's report."""
        if self.mo == "fumo":
            return alert_type.split(": ")[-1].startswith(ALERT_PREFIX)
        if alert_type != self.alert_type():
            return False
        root = ROOTS[(self.mo, protocol)]
        return source.endswith(self.exec_path(protocol)[len(root) + 1:])  # the same below the root in a ClientURI

    def ops(self, protocol: str) -> list[Op]:
        """The SCOMO or LAWMO commands, as paths of the device's tree."""
        if self.mo not in ("scomo", "lawmo"):
            return []
        root = ROOTS[(self.mo, protocol)]
        deployed = f"{root}/Inventory/Deployed/{self.name}/Operations"
        if self.kind == "scomo.install":
            base = f"{root}/Download/{self.name}"
            stage = [Op("add", f"{base}/PkgID", self.pkg_id or self.name), Op("add", f"{base}/Name", self.pkg_id or self.name),
                     Op("add", f"{base}/PkgURL", self.url), Op("add", f"{base}/InstallParams", f"version={self.version}")]
            if self.environment:
                stage.append(Op("add", f"{base}/EnvType", self.environment))
            return [*stage, Op("exec", f"{base}/Operations/DownloadInstallInactive")]
        if self.kind == "scomo.activate":
            return [Op("exec", f"{deployed}/Activate")]
        if self.kind == "scomo.remove":
            return [Op("exec", f"{deployed}/Remove")]
        if self.kind == "lawmo.wipe":
            return [*(Op("replace", f"{root}/AvailableWipeList/{item}/ToBeWiped", "true", "bool") for item in self.wipe),
                    Op("exec", f"{root}/Operations/Wipe")]
        operation = {"lawmo.lock": "FullyLock", "lawmo.unlock": "UnLock", "lawmo.reset": "FactoryReset"}[self.kind]
        return [Op("exec", f"{root}/Operations/{operation}")]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params}


# ------------------------------------------------------------------ reading a step from JSON


def check_trap(params: dict[str, Any]) -> TrapSpec:
    """The trap a step arms; EmulatorError (400) naming what is wrong."""
    trap = str(params.get("trap", "Battery"))
    if not trap or not trap.isalnum() or len(trap) > 32:
        raise EmulatorError(f"trap must be a name of 1-32 letters or digits, not {trap[:40]!r}", status=400)
    measure = str(params.get("measure", TRAP_DEFAULTS.get(trap, "")))
    names = measure.split("/")
    if not measure or names[0] not in ("Battery", "Memory", "Radio") or any(not n for n in names) or ".." in names:
        raise EmulatorError(f"measure must be Battery/Level, Memory/Free or Radio/<bearer>/Signal, not "
                            f"{measure[:60]!r}", status=400)
    condition = str(params.get("condition", "below"))
    if condition not in ("below", "above"):
        raise EmulatorError(f"condition must be below or above, not {condition[:40]!r}", status=400)
    raw = params.get("threshold")
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise EmulatorError(f"threshold must be an integer, not {str(raw)[:40]!r}", status=400)
    try:
        threshold = int(raw)
    except ValueError:
        raise EmulatorError(f"threshold must be an integer, not {str(raw)[:40]!r}", status=400) from None
    if abs(threshold) >= 10**12:
        raise EmulatorError("threshold must have fewer than 13 digits", status=400)
    return TrapSpec(trap, measure, condition, threshold)


def _text(spec: dict[str, Any], key: str, default: str = "", *, pattern: re.Pattern[str] | None = None) -> str:
    value = spec.get(key, default)
    if not isinstance(value, str) or len(value) > MAX_TEXT or (key in spec and not value):
        raise EmulatorError(f"{key}: a non-empty string of at most {MAX_TEXT} characters", status=400)
    if pattern is not None and value and not pattern.fullmatch(value):
        raise EmulatorError(f"{key} {value[:80]!r}: letters, digits and ._- only (1-64)", status=400)
    return value


def _flag(spec: dict[str, Any], key: str, default: bool) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise EmulatorError(f"{key}: true or false", status=400)
    return value


def step_from_json(spec: object, *, base: str, packages: Any, where: str = "step") -> Step:
    """A step from the admin API's JSON (``{"kind": ..., <its keys>}``); a package named must be in
    the repository (or ``size`` given: then it is generated). EmulatorError (400/404/409), and
    nothing is added to the repository unless the whole step is good."""
    if not isinstance(spec, dict):
        raise EmulatorError(f"{where}: a JSON object with a kind", status=400)
    kind = spec.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise EmulatorError(f"{where}: unknown kind {str(kind)[:40]!r} (known: {', '.join(KINDS)})", status=400)
    known = _KEYS[kind] | {"kind"}
    unknown = set(spec) - known
    if unknown:
        raise EmulatorError(f"{where} ({kind}): unknown keys {', '.join(sorted(unknown))[:200]} "
                            f"(known: {', '.join(sorted(known))})", status=400)
    params = {k: v for k, v in spec.items() if k != "kind"}
    version = _text(spec, "version")
    if kind == "fumo":
        operation = _text(spec, "operation", "DownloadAndUpdate")
        if operation not in FUMO_OPERATIONS:
            raise EmulatorError(f"{where}: operation {operation[:40]!r}: one of {', '.join(FUMO_OPERATIONS)}", status=400)
        consent = _flag(spec, "consent", False)
        dm12_node, dm2_instance = _text(spec, "dm12_node", DM12_FUMO_NODE), _text(spec, "dm2_instance", DM2_FUMO_INSTANCE)
        name, url, version = _package(spec, base, packages, version, where)
        return Step(kind, name, url, version, operation, consent, dm12_node, dm2_instance, params=params)
    if kind == "scomo.install":
        component = _text(spec, "name", "app1", pattern=_NAME)
        pkg_id, env = _text(spec, "pkg_id"), _text(spec, "environment")
        name, url, version = _package(spec, base, packages, version, where)
        return Step(kind, name, url, version or "1.0", name=component, pkg_id=pkg_id, environment=env, params=params)
    if kind in ("scomo.activate", "scomo.remove"):
        return Step(kind, name=_text(spec, "name", "app1", pattern=_NAME), params=params)
    if kind == "lawmo.wipe":
        wipe = spec.get("wipe", ["Contacts"])
        if (not isinstance(wipe, list) or not wipe or len(wipe) > 32
                or not all(isinstance(w, str) and _NAME.fullmatch(w) for w in wipe)):
            raise EmulatorError(f"{where}: wipe must be a list of 1-32 wipe list items (letters, digits and ._-)",
                                status=400)
        return Step(kind, wipe=tuple(wipe), params=params)
    if kind == "diag.trap":
        return Step(kind, trap=check_trap(spec), params=params)
    return Step(kind, params=params)


def _package(spec: dict[str, Any], base: str, packages: Any, version: str, where: str) -> tuple[str, str, str]:
    """(name, URL, version) of the step's package: in the repository, or generated when ``size`` is given."""
    name = spec.get("package")
    if not isinstance(name, str) or not name:
        raise EmulatorError(f"{where}: needs the name of its package", status=400)
    descriptor = _flag(spec, "descriptor", spec.get("kind") == "fumo")
    if not base:
        raise EmulatorError("the server does not know the URL devices reach it at (base_url)", status=409)
    pkg = packages.add(name, spec["size"], version) if "size" in spec else packages.get(name)
    return pkg.name, packages.url(base, pkg.name, descriptor=descriptor), version or pkg.version


def check_step_package(spec: object, packages: Any) -> None:
    """Raise what :func:`step_from_json` would for the package, without generating it: every step of
    a campaign is checked before any package is made."""
    if isinstance(spec, dict) and "size" in spec and hasattr(packages, "check"):
        packages.check(spec.get("package"), spec["size"], spec.get("version", ""))


# ------------------------------------------------------------------ DM 1.2 commands


def dm12_commands(step: Step, correlator: str, package: int, session: Any, upload_url: str = "") -> list[Command]:
    """The DM 1.2 commands of ``step``'s ``package``-th package (from 0; [] when it has no more);
    ``upload_url``: where a ``diag.upload`` step has the device upload its log."""
    if step.mo == "fumo":
        if package > 0:
            return []
        meta = Meta(format="chr", type="text/plain")
        items = [Item(target=f"{step.dm12_node}/{step.operation}/PkgURL", data=step.url)]
        if step.version:
            items.append(Item(target=f"{step.dm12_node}/PkgVersion", data=step.version))
        return [Replace(cmd_id="0", meta=meta, items=items),
                Exec(cmd_id="0", correlator=correlator, items=[Item(target=f"{step.dm12_node}/{step.operation}")])]
    if step.mo in ("scomo", "lawmo"):
        return [_dm12_op(op, correlator) for op in step.ops("dm12")] if package == 0 else []
    if step.kind == "diag.read":
        if package == 0:
            gets: list[Command] = [Get(cmd_id="0", items=[Item(target=f"{DM12_DIAG}/{leaf}")]) for leaf in
                                   ("Battery/Level", "Battery/Status", "Memory/Total", "Memory/Free", "ErrorLog/Entries")]
            return [*gets, Get(cmd_id="0", items=[Item(target=f"{DM12_DIAG}/Radio?list=Struct")])]
        if package == 1:
            prefix = f"{DM12_DIAG}/Radio/"
            found = sorted({k[len(prefix):].split("/")[0] for k in session.results if k.startswith(prefix)})
            return [Get(cmd_id="0", items=[Item(target=f"{prefix}{r}/Signal")]) for r in found if r]
        return []
    if package > 0:
        return []
    if step.kind == "diag.trap":
        spec = step.trap
        assert spec is not None
        node = f"{DM12_DIAG}/Trap/{spec.trap}"
        values = (("Measure", spec.measure, "chr"), ("Condition", spec.condition, "chr"),
                  ("Threshold", str(spec.threshold), "int"), ("Enabled", "true", "bool"))
        cls = Replace if spec.trap in ("Battery", "Memory", "Signal") else Add
        added: list[Command] = [] if cls is Replace else [Add(cmd_id="0", meta=Meta(format="node"), items=[Item(target=node)])]
        return added + [cls(cmd_id="0", meta=Meta(format=fmt, type="text/plain"),
                            items=[Item(target=f"{node}/{leaf}", data=value)]) for leaf, value, fmt in values]
    return [Exec(cmd_id="0", correlator=f"diag-{secrets.token_hex(4)}",
                 items=[Item(target=f"{DM12_DIAG}/ErrorLog/Upload", data=upload_url)])]


def dm12_consent(step: Step) -> list[Command]:
    """The confirm alert a ``consent`` FUMO step sends first (the user's "no" declines the run)."""
    text = f"Install firmware {step.version or step.package} now? The device restarts."
    return [Alert(cmd_id="0", code=codes.ALERT_CONFIRM_OR_REJECT, items=[Item(data="MAXDT=60&DR=1"), Item(data=text)])]


def _dm12_op(op: Op, correlator: str) -> Command:
    if op.kind == "exec":
        return Exec(cmd_id="0", correlator=correlator, items=[Item(target=op.path)])
    cls = Add if op.kind == "add" else Replace
    return cls(cmd_id="0", meta=Meta(format=op.fmt, type="text/plain"), items=[Item(target=op.path, data=op.value)])


# ------------------------------------------------------------------ DM 2.0 commands


def client_uri(path: str, mo: str) -> str:
    """A path below the DM 2.0 instance of ``mo`` as its ClientURI ``<MOID>/<MIID>/rest``."""
    root = ROOTS[(mo, "dm2")]
    return f"{MOIDS[mo]}/{root.rsplit('/', 1)[1]}{path[len(root):]}"


def dm2_commands(step: Step, key: str, state: Any, dev_id: str, base: str) -> list[list[str]]:
    """The DM 2.0 commands of ``step`` (one package); values the device fetches go into the
    server's repository under ``key`` first. ``${...}`` are filled by the session."""
    if step.mo == "fumo":
        return fumo_dm2_update(step, key, state, base) if not step.consent else [["SHOW", "${ui:fumo}"]]
    if step.mo in ("scomo", "lawmo"):
        return _dm2_ops(step, key, state, base)
    root = f"{DIAG_MOID}/"
    if step.kind == "diag.read":
        return [["GET", f"{root}/Battery"], ["GET", f"{root}/Memory"], ["GET", f"{root}/Radio"],
                ["GET", f"{root}/ErrorLog/Entries"]]
    if step.kind == "diag.trap":
        spec = step.trap
        assert spec is not None
        out = []
        for leaf, value in (("Measure", spec.measure), ("Condition", spec.condition), ("Threshold", spec.threshold),
                            ("Enabled", True)):
            uri = f"{root}/Trap/{spec.trap}/{leaf}"
            state.put_repo(f"{key}/{leaf}", [MOSerialization(client_uri=uri, mo_data={leaf: value})])
            out.append(["HGET", repo_url(base, f"{key}/{leaf}"), uri])
        return out
    upload = f"{key}/upload-url"
    return [["HGET", repo_url(base, upload) + f"?${{diag-upload:{upload}}}", f"{root}/ErrorLog/UploadURL"],
            ["EXEC", f"{root}/ErrorLog/Upload", "${alerts}"]]


def fumo_dm2_update(step: Step, key: str, state: Any, base: str) -> list[list[str]]:
    """HGET of PkgURL (and PkgVersion) into the FUMO instance, then EXEC with the alerts ServerURI."""
    state.put_repo(f"{key}/url", [MOSerialization(f"{FUMO_MOID}//", {step.operation: {"PkgURL": step.url}})])
    out = [["HGET", repo_url(base, f"{key}/url"), f"{step.dm2_instance}/{step.operation}"]]
    if step.version:
        state.put_repo(f"{key}/version", [MOSerialization(f"{FUMO_MOID}//", {"PkgVersion": step.version})])
        out.append(["HGET", repo_url(base, f"{key}/version"), f"{step.dm2_instance}/PkgVersion"])
    return [*out, ["EXEC", f"{step.dm2_instance}/{step.operation}", "${alerts}"]]


def _dm2_ops(step: Step, key: str, state: Any, base: str) -> list[list[str]]:
    """SCOMO/LAWMO ops as DM 2.0 commands: the Adds of a new node gathered into one HGET of an MO
    serialization, a Replace one HGET of its leaf, an Exec an EXEC without a ServerURI (the
    device's alert then comes in a session of its own, which takes the next step)."""
    commands: list[list[str]] = []
    staged: dict[str, dict[str, Any]] = {}

    def flush() -> None:
        for node, leaves in staged.items():
            commands.append(_hget(state, step.mo, node, {node.rsplit("/", 1)[1]: leaves}, node, key, base))
        staged.clear()

    for op in step.ops("dm2"):
        node, leaf = op.path.rsplit("/", 1)
        if op.kind == "exec":
            flush()
            commands.append(["EXEC", client_uri(op.path, step.mo)])
        elif op.kind == "add":
            staged.setdefault(node, {})[leaf] = op.value
        else:
            flush()
            value: Any = op.value == "true" if op.fmt == "bool" else op.value
            commands.append(_hget(state, step.mo, op.path, {leaf: value}, op.path, key, base))
    flush()
    return commands


def _hget(state: Any, mo: str, target: str, mo_data: dict[str, Any], path: str, key: str, base: str) -> list[str]:
    item = f"{key}/{len(state.repo)}"
    state.put_repo(item, [MOSerialization(client_uri=client_uri(target, mo), mo_data=mo_data)])
    return ["HGET", repo_url(base, item), client_uri(path, mo)]

