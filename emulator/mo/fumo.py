"""FUMO, the firmware update management object (OMA-TS-DM_FUMO-V1_0), as device behaviour.

A profile declares an instance (``[[behaviours]] mo = "fumo"``, ``node`` its root: a DM 1.2 path
such as ``./FwUpdate/x``, or ``./DM2/oma-fumo/<MIID>`` for DM 2.0, where the MOID
``urn:oma:mo:oma-fumo:1.0`` reaches it); the subtree is built from the shipped DDF
(``assets/ddf/oma-fumo_1.0.xml``). An Exec of ``Download``, ``Update`` or ``DownloadAndUpdate``
answers 202 and the operation goes on after the session (:mod:`emulator.mo.operations`):

- download: ``PkgURL`` fetched over the bearer (State 30); when the answer is an OMA download
  descriptor (DLOTA), the object it names is fetched next, its size checked against the descriptor,
  and the install status posted to its installNotifyURI; State 40, or 20 with the result code;
- update: the package held (downloaded, or written into ``Update/PkgData``) installed: the battery
  and the user's consent checked, State 50 then 60 for ``install_s``; on success the device
  reboots (``reboot_s``), ``FwV`` becomes ``PkgVersion`` and State 100 (the package is deleted:
  "without data"); a failure ends in 70 (package kept) or 80 (package dropped);
- the result: a generic alert of the operation's type (``org.openmobilealliance.dm.
  firmwareupdate.download`` ...) with the Exec's Correlator, the exec'd node as Source, and the
  FUMO result code as Data (format int), sent in a new session (after the reboot for an update).

Result codes as the FUMO table defines them (:data:`RESULT_CODES`); which failure gives which is
the project's reading, in :func:`download_failure` and the README's "How DM is read here".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.mo import dlota
from emulator.mo.operations import (
    DeviceRandom,
    Enter,
    Fetched,
    MoKind,
    OperationRun,
    Steps,
    Wait,
    register_mo,
)
from emulator.mo.standard import check_common, draw_failure
from emulator.tree import Tree
from emulator.tree import uri as uris
from emulator.tree.ddf import NodeDesc, load_builtin
from emulator.tree.tree import ExecRequest

FUMO_MOID = "urn:oma:mo:oma-fumo:1.0"
ALERT_PREFIX = "org.openmobilealliance.dm.firmwareupdate."
ALERT_TYPES = {"Download": ALERT_PREFIX + "download", "Update": ALERT_PREFIX + "update",
               "DownloadAndUpdate": ALERT_PREFIX + "downloadandupdate"}
"""Generic alert type per executed node (OMA-TS-DM_FUMO-V1_0 section 8; OMNA alert types)."""

STATES = {10: "Idle/Start", 20: "Download Failed", 30: "Download Progressing", 40: "Download Complete",
          50: "Ready to Update", 60: "Update Progressing", 70: "Update Failed / Have Data",
          80: "Update Failed / No Data", 90: "Update Successful / Have Data", 100: "Update Successful / No Data"}

RESULT_CODES = {
    200: "Successful",
    400: "Management Client Error",
    401: "User Cancelled",
    402: "Corrupted Firmware Update Package",
    403: "Firmware Update Package - Device Mismatch",
    404: "Failed Firmware Update Package Validation",
    405: "Firmware Update Package Not Acceptable",
    406: "Alternate Download Authentication Failure",
    407: "Alternate Download Request Time-Out",
    408: "Not Implemented",
    409: "Undefined Error",
    410: "Firmware Update Failed",
    411: "Malformed or Bad URL",
    412: "Alternate Download Server Unavailable",
    450: "Client Error - Vendor Specified (dm-emulator: battery too low)",
    500: "Alternate Download Server Error",
    501: "Download Fails due to Device is Out of Memory",
    502: "Firmware Update Fails due to Device Out of Memory",
    503: "Download Fails due to Network Issues",
}
"""The FUMO result code table; 250-299 are successes and 450-499, 550-599 failures a vendor
specifies. 450 is the project's vendor code for an update refused on a low battery [P]."""

DOWNLOAD_CODES = frozenset({400, 406, 407, 411, 412, 500, 501, 503})
"""Codes a download ends with (State 20); the others end an update (State 70 or 80)."""
DROPS_PACKAGE = frozenset({402, 403, 404, 405})
"""Update failures after which the package is dropped (State 80, "no data"): it is unusable [P]."""

LOW_BATTERY = 450
DESCRIPTOR_CODES = {"bad descriptor": 500, "too large": 501, "corrupt": 402}
"""A download through a descriptor that failed (:data:`emulator.mo.dlota.PROBLEMS`) [P]: a descriptor
the device cannot use is the alternate download server's error, one announcing more than the room is
out of memory, an object whose SHA-256 is not the announced one is a corrupted package."""

SETTINGS: dict[str, object] = {
    "install_s": 5.0,  # seconds State stays at 60 (installing)
    "reboot_s": 2.0,  # seconds the device is rebooting after a successful update
    "battery": 100,  # the device's battery level, percent
    "min_battery": 0,  # below this level an update is refused (result 450)
    "consent": "accept",  # the user's answer before an install: accept, or decline (result 401)
    "fail": {},  # result code (as text) -> probability this device's operation ends with it
    "free_bytes": 64 << 20,  # room for a package: a larger one fails (501)
    "download_kbps": 0.0,  # the package server's rate on top of the bearer's (0: the bearer's only)
}


FAIL_CODES = frozenset(range(250, 600))
"""Codes the ``fail`` knob may name: every FUMO success with vendor data and every failure."""


def _check(name: str, value: Any) -> str | None:
    """What is wrong with one FUMO knob beyond its type (check_settings checked that); the knobs
    LAWMO and SCOMO share (``fail``, ``consent``, ``*_s``) as :mod:`emulator.mo.standard` checks them."""
    if name in ("fail", "consent") or name.endswith("_s"):
        return check_common(name, value, FAIL_CODES, "FUMO")
    if name == "download_kbps" and not 0 <= float(value) <= 100_000_000:
        return "expected 0 to 100,000,000 kbit/s"
    if name in ("battery", "min_battery") and not 0 <= float(value) <= 100:
        return "expected a percentage, 0 to 100"
    if name == "free_bytes" and float(value) < 0:
        return "expected bytes >= 0"
    return None


FW_LEAVES = ("./DevDetail/FwV", "./DM2/DevInfo/FwV")


def set_firmware(tree: Tree, version: str) -> None:
    """The device's firmware version becomes ``version`` (DevDetail/FwV, DM 2.0 DevInfo/FwV)."""
    for leaf in FW_LEAVES:
        if tree.exists(leaf):
            tree.set_node(leaf, version, permanent=tree.info(leaf).permanent)


# ---------------------------------------------------------------------------------------------
# the subtree


def _build(tree: Tree, desc: NodeDesc, path: str, *, root: bool = False) -> None:
    if desc.format == "node":
        tree.set_node(path, format="node", type=FUMO_MOID if root else "", access=desc.access or None,
                      acl=None if not root or path.startswith("./DM2/") else "Get=*&Replace=*&Exec=*")
        for child in desc.children:
            if child.name is not None:
                _build(tree, child, f"{path}/{child.name}")
        return
    value: str | bytes = {"int": "10" if desc.name == "State" else "0", "bin": b""}.get(desc.format, "")
    tree.set_node(path, value, format=desc.format, type=desc.mime[0] if desc.mime else "text/plain",
                  access=desc.access or None)


def install(tree: Tree, root: str, settings: Mapping[str, object], profile: Any = None) -> None:
    """The instance's subtree at ``root``, from the shipped DDF, State 10."""
    _build(tree, load_builtin(FUMO_MOID).root, root, root=True)


# ---------------------------------------------------------------------------------------------
# the state machine


def download_failure(f: Fetched) -> int:
    """The FUMO result code of a download that did not complete [P]."""
    if f.outcome == "bad url":
        return 411
    if f.outcome == "too large":
        return 501
    if f.outcome == "size mismatch":
        return 402
    if f.outcome == "network":
        return 407 if "no answer within" in f.error or "deadline" in f.error else 503
    if f.outcome == "http error":
        if f.status in (401, 403, 407):
            return 406
        if f.status in (502, 503, 504):
            return 412
        return 500
    return 500


class Fumo:
    """One device's FUMO instances: the Exec handlers and the packages they hold."""

    def __init__(self, behaviours: Any, root: str, settings: Mapping[str, object], rng: DeviceRandom) -> None:
        self.behaviours = behaviours
        self.root = root
        self.settings: dict[str, Any] = dict(settings)  # the profile's, then a scenario's (DeviceBehaviours.configure)
        self.rng = rng
        self.package: tuple[int, str] | None = None  # (size, sha256) of the package held
        self.busy = False

    def attach(self, tree: Tree) -> None:
        for node in ALERT_TYPES:
            tree.on_exec(f"{self.root}/{node}", self.exec)

    # --- helpers

    def _state(self, tree: Tree, state: int) -> Enter:
        tree.replace(f"{self.root}/State", str(state), by=None)
        return Enter(str(state), STATES[state])

    def _value(self, tree: Tree, rel: str) -> str:
        path = f"{self.root}/{rel}"
        if not tree.exists(path):
            return ""
        v = tree.value(path)
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else (v or "")

    # --- Exec

    def exec(self, tree: Tree, request: ExecRequest) -> int:
        node = uris.split(request.path)[-1]
        if self.busy:
            return 500  # one operation at a time per instance [P]
        run = OperationRun("fumo", request)
        run.steps = self._run(tree, node, run)
        status = self.behaviours.start_operation(run)
        if status == 202:
            self.busy = True
        return status

    def _run(self, tree: Tree, node: str, run: OperationRun) -> Steps:
        try:
            injected = draw_failure(self.settings, self.rng)
            if node in ("Download", "DownloadAndUpdate"):
                code = yield from self._download(tree, node, injected)
                if code != 200 or node == "Download":
                    self._finish(run, node, code)
                    return
            elif self.package is None:
                pkg = tree.value(f"{self.root}/Update/PkgData") if tree.exists(f"{self.root}/Update/PkgData") else None
                if not pkg:
                    self._finish(run, node, 400)  # nothing to install: no download, no PkgData
                    yield self._state(tree, 80)
                    return
                if len(pkg) > int(self.settings["free_bytes"]):
                    self._finish(run, node, 502)
                    yield self._state(tree, 80)
                    return
                self.package = (len(pkg), "")
            code = yield from self._update(tree, injected)
            self._finish(run, node, code)
        finally:
            self.busy = False

    def _finish(self, run: OperationRun, node: str, code: int) -> None:
        run.result = code
        mark = None if 200 <= code < 300 else "critical"
        run.report(ALERT_TYPES[node], str(code), format="int", source=run.request.path, mark=mark)

    def _download(self, tree: Tree, node: str, injected: int) -> Any:
        yield self._state(tree, 30)
        room = int(self.settings["free_bytes"])
        got: dlota.Downloaded = yield from dlota.download(self._value(tree, f"{node}/PkgURL"), room,
                                                          float(self.settings["download_kbps"]))
        dd = got.descriptor
        if dd is not None and got.problem != "too large" and dd.version and not self._value(tree, "PkgVersion"):
            tree.replace(f"{self.root}/PkgVersion", dd.version, by=None)
        code = DESCRIPTOR_CODES[got.problem] if got.problem else (
            200 if got.fetched.ok else download_failure(got.fetched))
        if code == 200 and injected in DOWNLOAD_CODES:
            code = injected
        if (told := dlota.notify(got, dlota.install_status(got, code == 200))) is not None:
            yield told
        if code != 200:
            self.package = None
            yield self._state(tree, 20)
            return code
        self.package = (got.fetched.size, got.fetched.digest)
        yield self._state(tree, 40)
        return 200

    def _update(self, tree: Tree, injected: int) -> Any:
        s = self.settings
        if float(s["battery"]) < float(s["min_battery"]):
            yield self._state(tree, 70)
            return LOW_BATTERY
        yield self._state(tree, 50)
        if s["consent"] == "decline":
            yield self._state(tree, 70)
            return 401
        yield self._state(tree, 60)
        yield Wait(float(s["install_s"]))
        if injected and injected not in DOWNLOAD_CODES and not 250 <= injected < 300:
            if injected in DROPS_PACKAGE:
                self.package = None
            yield self._state(tree, 80 if self.package is None else 70)
            return injected
        yield Enter("rebooting", "the device restarts on its new firmware")
        yield Wait(float(s["reboot_s"]))
        version = self._value(tree, "PkgVersion") or self._value(tree, "PkgName")
        if version:
            set_firmware(tree, version)
        self.package = None
        if tree.exists(f"{self.root}/Update/PkgData"):
            tree.replace(f"{self.root}/Update/PkgData", b"", by=None)
        yield self._state(tree, 100)
        return injected or 200


def _attach(behaviours: Any, tree: Tree, declared: Any, rng: DeviceRandom) -> None:
    fumo = Fumo(behaviours, declared.node, dict(declared.settings), rng)
    behaviours.mo_state[declared.node] = fumo
    fumo.attach(tree)


register_mo(MoKind("fumo", SETTINGS, install, _attach, _check,
                   "firmware update (OMA-TS-DM_FUMO): Download, Update, DownloadAndUpdate, State 10-100",
                   RESULT_CODES, (ALERT_PREFIX,)))
