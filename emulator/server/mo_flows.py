"""Reference server scripts for the standard MOs: a lock/unlock/wipe (LAWMO) and a software install,
activate and remove (SCOMO), for DM 1.2 and DM 2.0.

A flow is a list of stages for one device. Each stage is one package of commands ending with an
Exec the device answers 202; the next stage goes out in the session that brings the device's
generic alert for that Exec (its OperationComplete, Source the executed node), so a flow runs as
the device reports, without the server notifying it between stages. A result other than a success
(12xx) stops the flow there. While a flow runs it replaces the device's script on its protocol
(DM 2.0 :func:`emulator.server.dm2.script_for`, DM 1.2 the session's steps); once it ended the
usual script comes back.

Commands are written once, as tree paths below the MO root the shipped profiles declare
(:data:`ROOTS`); for DM 2.0 a path below the instance becomes the ClientURI ``<MOID>/<MIID>/...``, an Exec an
``EXEC`` without a ServerURI (the device's alert carries the result), and the Adds that stage a
SCOMO Download node one ``HGET`` of an MO serialization from the server's repository into that node.

``flows(state)`` holds the flows by device; :class:`FlowRun.results` what each Exec came back with
(the generic alerts themselves are also in the server's usual logs: DM 2.0 ``DeviceLog.alerts``, DM
1.2 ``Dm12Session.generic_alerts``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import EmulatorError
from emulator.protocol.dm2.moser import MOSerialization
from emulator.protocol.syncml.commands import Add, Command, Exec, Item, Meta, Replace
from emulator.server.state import ServerState, repo_path, repo_url

LAWMO_MOID = "urn:oma:mo:oma-lawmo:1.0"
SCOMO_MOID = "urn:oma:mo:oma-scomo:1.0"
LAWMO_ALERT = "urn:oma:at:lawmo:1.0:OperationComplete"
SCOMO_ALERT = "urn:oma:at:scomo:1.0:OperationComplete"
ROOTS = {("lawmo", "dm12"): "./LAWMO", ("lawmo", "dm2"): "./DM2/oma-lawmo/LAWMO",
         ("scomo", "dm12"): "./SCOMO", ("scomo", "dm2"): "./DM2/oma-scomo/SCOMO"}
"""Where the shipped profiles declare the instances (the DM 2.0 MIIDs are ``LAWMO`` and ``SCOMO``)."""
MOIDS = {"lawmo": LAWMO_MOID, "scomo": SCOMO_MOID}
FLOWS = ("lawmo", "scomo", "reset")
"""lawmo: lock, unlock, wipe; scomo: install inactive, activate, remove; reset: a LAWMO factory reset."""
_KEY = "mo_flows"
_CODE = re.compile(r"(?:<ResultCode>\s*)?(\d{3,4})")


@dataclass(frozen=True, slots=True)
class Op:
    """One command of a stage: ``add``/``replace`` a leaf (``value``, ``fmt``) or ``exec`` a node."""

    kind: str
    path: str
    value: str = ""
    fmt: str = "chr"


@dataclass
class FlowRun:
    """One device's flow: its stages, where it is, and what each Exec gave (``(node, code)``)."""

    dev_id: str
    name: str
    protocol: str
    mo: str
    stages: list[list[Op]]
    index: int = 0  # the stage to send next
    waiting: str = ""  # the node whose alert ends the stage sent
    results: list[tuple[str, int]] = field(default_factory=list)
    outcome: str = "running"  # running, completed, failed at <node>: <code>

    @property
    def done(self) -> bool:
        return self.outcome != "running"

    def to_json(self) -> dict[str, Any]:
        return {"device": self.dev_id, "flow": self.name, "protocol": self.protocol, "stage": self.index,
                "stages": len(self.stages), "waiting": self.waiting, "outcome": self.outcome,
                "results": [[node, code] for node, code in self.results]}


def flows(state: ServerState) -> dict[tuple[str, str], FlowRun]:
    """The flows by (DevID, protocol)."""
    found: dict[tuple[str, str], FlowRun] = state.extra.setdefault(_KEY, {})
    return found


def lawmo_stages(root: str, wipe: tuple[str, ...]) -> list[list[Op]]:
    """Fully lock, unlock, then wipe the listed AvailableWipeList items."""
    return [
        [Op("exec", f"{root}/Operations/FullyLock")],
        [Op("exec", f"{root}/Operations/UnLock")],
        [*(Op("replace", f"{root}/AvailableWipeList/{item}/ToBeWiped", "true", "bool") for item in wipe),
         Op("exec", f"{root}/Operations/Wipe")],
    ]


def scomo_stages(root: str, name: str, pkg_id: str, url: str, version: str, env: str) -> list[list[Op]]:
    """Stage a Download node and DownloadInstallInactive it; activate the component; remove it."""
    base = f"{root}/Download/{name}"
    stage = [Op("add", f"{base}/PkgID", pkg_id), Op("add", f"{base}/Name", pkg_id), Op("add", f"{base}/PkgURL", url),
             Op("add", f"{base}/InstallParams", f"version={version}")]
    if env:
        stage.append(Op("add", f"{base}/EnvType", env))
    deployed = f"{root}/Inventory/Deployed/{name}/Operations"
    return [[*stage, Op("exec", f"{base}/Operations/DownloadInstallInactive")],
            [Op("exec", f"{deployed}/Activate")], [Op("exec", f"{deployed}/Remove")]]


def start_flow(state: ServerState, dev_id: str, name: str, protocol: str, *, wipe: tuple[str, ...] = ("Contacts",),
               package_url: str = "", package: str = "app1", pkg_id: str = "", version: str = "1.0",
               environment: str = "") -> FlowRun:
    """Start flow ``name`` (lawmo, scomo) for ``dev_id`` on ``protocol``; EmulatorError (400) for a bad
    argument. It replaces a flow the device had on that protocol."""
    if name not in FLOWS:
        raise EmulatorError(f"unknown flow {name!r}; known: {', '.join(FLOWS)}", status=400)
    if protocol not in ("dm12", "dm2"):
        raise EmulatorError(f"unknown protocol {protocol!r} (dm2 or dm12)", status=400)
    if not dev_id:
        raise EmulatorError("a flow needs a device", status=400)
    mo = "lawmo" if name == "reset" else name
    root = ROOTS[(mo, protocol)]
    for text, what in ((package, "package"), *((w, "wipe item") for w in wipe)):
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", text):
            raise EmulatorError(f"{what} {text!r}: letters, digits and ._- only (1-64)", status=400)
    if name == "lawmo":
        stages = lawmo_stages(root, wipe)
    elif name == "reset":
        stages = [[Op("exec", f"{root}/Operations/FactoryReset")]]
    else:
        if not package_url:
            raise EmulatorError("the scomo flow needs a package_url", status=400)
        stages = scomo_stages(root, package, pkg_id or package, package_url, version, environment)
    run = FlowRun(dev_id, name, protocol, mo, stages)
    flows(state)[(dev_id, protocol)] = run
    return run


def _result(data: object) -> int:
    text = data if isinstance(data, str) else str(data)
    m = _CODE.search(text)
    return int(m.group(1)) if m else 0


def _take(run: FlowRun, alerts: list[tuple[str, str, object]]) -> None:
    """The device's generic alerts (type, source, data): the one for the Exec awaited ends its stage."""
    if not run.waiting:
        return
    wanted = LAWMO_ALERT if run.mo == "lawmo" else SCOMO_ALERT
    rel = run.waiting[len(ROOTS[(run.mo, run.protocol)]) + 1:]  # below the MO root: the same in a ClientURI
    for alert_type, source, data in alerts:
        if alert_type == wanted and source.endswith(rel):
            code = _result(data)
            run.results.append((run.waiting, code))
            run.waiting = ""
            if not 1200 <= code < 1300:
                run.outcome = f"failed at {rel}: {code}"
            elif run.index >= len(run.stages):
                run.outcome = "completed"
            return


def _next_stage(run: FlowRun) -> list[Op]:
    if run.done or run.waiting or run.index >= len(run.stages):
        return []
    stage = run.stages[run.index]
    run.index += 1
    run.waiting = next((op.path for op in reversed(stage) if op.kind == "exec"), "")
    return stage


# ---------------------------------------------------------------------------------------------- DM 1.2


def dm12_steps(state: ServerState, dev_id: str) -> list[tuple[str, Any]] | None:
    """The steps of a DM 1.2 session of ``dev_id`` while it has a flow (None: it has none)."""
    run = flows(state).get((dev_id, "dm12"))
    if run is None or run.done:
        return None

    def step(session: Any) -> list[Command]:
        alerts = []
        for alert in session.generic_alerts:
            for item in alert.items:
                alert_type = item.meta.type if item.meta is not None else ""
                alerts.append((alert_type or "", item.source or "", item.data or ""))
        _take(run, alerts)
        return [_dm12_command(op, run) for op in _next_stage(run)]

    return [(f"{run.name} flow", step)]


def _dm12_command(op: Op, run: FlowRun) -> Command:
    if op.kind == "exec":
        return Exec(cmd_id="0", correlator=f"{run.name}-{run.index}", items=[Item(target=op.path)])
    meta = Meta(format=op.fmt, type="text/plain")
    cls = Add if op.kind == "add" else Replace
    return cls(cmd_id="0", meta=meta, items=[Item(target=op.path, data=op.value)])


# ---------------------------------------------------------------------------------------------- DM 2.0


def client_uri(path: str, mo: str) -> str:
    """A path below the DM 2.0 instance of ``mo`` as its ClientURI ``<MOID>/<MIID>/rest``."""
    root = ROOTS[(mo, "dm2")]
    return f"{MOIDS[mo]}/{root.rsplit('/', 1)[1]}{path[len(root):]}"


def dm2_steps(state: ServerState, dev_id: str, base: str) -> list[list[list[str]]] | None:
    """The DM 2.0 script of a session of ``dev_id`` while it has a flow (None: it has none); the
    alerts of its Package#1 are already in the device's log."""
    run = flows(state).get((dev_id, "dm2"))
    if run is None or run.done:
        return None
    log = state.device(dev_id)
    _take(run, [(a.alert_type, a.source_uri or "", (a.data or {}).get("Value", a.data)) for a in log.alerts])
    commands: list[list[str]] = []
    staged: dict[str, dict[str, Any]] = {}
    for op in _next_stage(run):
        if op.kind == "exec":
            commands.extend(_hgets(state, run, staged, base))
            commands.append(["EXEC", client_uri(op.path, run.mo)])
        elif op.kind == "add":  # a new Download node: gathered into one HGET
            node, leaf = op.path.rsplit("/", 1)
            staged.setdefault(node, {})[leaf] = op.value
        else:
            node, leaf = op.path.rsplit("/", 1)
            value: Any = op.value == "true" if op.fmt == "bool" else op.value
            commands.extend(_hgets(state, run, staged, base))
            commands.append(_hget(state, run, node, {leaf: value}, base, replace_leaf=leaf))
    commands.extend(_hgets(state, run, staged, base))
    return [commands] if commands else []


def _hgets(state: ServerState, run: FlowRun, staged: dict[str, dict[str, Any]], base: str) -> list[list[str]]:
    out = [_hget(state, run, node, leaves, base) for node, leaves in staged.items()]
    staged.clear()
    return out


def _hget(state: ServerState, run: FlowRun, node: str, data: dict[str, Any], base: str, *,
          replace_leaf: str | None = None) -> list[str]:
    """HGET of ``data`` into ``node`` (a new node, or one leaf replaced: ``replace_leaf``)."""
    name = node.rsplit("/", 1)[1]
    target = f"{node}/{replace_leaf}" if replace_leaf else node
    mo_data = {replace_leaf: data[replace_leaf]} if replace_leaf else {name: data}
    key = repo_path(run.dev_id, f"{run.name}-{run.index}-{len(state.repo)}")
    state.put_repo(key, [MOSerialization(client_uri=client_uri(target, run.mo), mo_data=mo_data)])
    return ["HGET", repo_url(base, key), client_uri(target, run.mo)]
