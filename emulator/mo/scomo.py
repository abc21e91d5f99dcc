"""SCOMO, the Software Component Management Object (OMA-TS-DM-SCOMO-V1_0), as a device carries it out.

Nodes (DDF ``assets/ddf/oma-scomo_1.0.xml``):

- ``Download/<x>/{PkgID,Name,PkgURL,Description,InstallParams,EnvType,PkgType,Status,Operations}``:
  a server adds ``Download/<x>`` with at least ``PkgID`` and ``PkgURL``; the device fills in
  ``Status`` (10) and ``Operations/{Download,DownloadInstall,DownloadInstallInactive}`` itself;
  ``PkgURL`` may name the package or an OMA download descriptor (DLOTA), followed as FUMO follows one
  (:func:`emulator.mo.dlota.download`: the object it names, its size and SHA-256 checked, the install
  status posted to its installNotifyURI);
- ``Inventory/Delivered/<x>`` (Status, State 10 delivered / 20 installed, ``Operations/{Install,
  InstallInactive,Remove}``) and ``Inventory/Deployed/<x>`` (ID, PkgIDRef, Name, Version, EnvType,
  Status, State 10 inactive / 20 active, ``Operations/{Activate,Deactivate,Remove}``).

A profile declares an instance (``[[behaviours]] mo = "scomo"``, ``node`` its root: ``./SCOMO`` for
DM 1.2, ``./DM2/oma-scomo/<MIID>`` for DM 2.0, where the MOID ``urn:oma:mo:oma-scomo:1.0`` reaches
it), with the components it carries from the factory (``components``). Every Exec is answered 202;
the operation runs on after the session (:mod:`emulator.mo.operations`: the download over HTTP(S)
through the device's bearer, then ``install_s`` seconds of install, activation...) and its result goes
to the executing server as a generic alert ``urn:oma:at:scomo:1.0:OperationComplete``: Source the
executed node, Target the Delivered or Deployed node it produced, data
``<ResultCode>1200</ResultCode><Identifier>ID</Identifier>`` (format xml), the Exec's Correlator.
Status leaves move through the spec's values while it runs (Download 30 downloading, 40 complete,
50 installing, 20 / 60 / 70 failed...), so a server polling them sees the progress.

Result codes: 1200 success; 1250-1299 vendor success; 1400 client error, 1401 user cancelled, 1402
download failed (also a PkgURL that is no absolute http(s) URL), 1403 download authentication
failed (HTTP 401/403/407), 1404 out of memory on download (the package passes ``free_bytes``), 1405 install failed, 1406 out of memory on install, 1407 package validation
failed, 1408 remove failed, 1409 activate failed, 1410 deactivate failed, 1411 not implemented, 1412
undefined error, 1413 environment type not supported; 1450-1499 vendor client errors; 1500 download
server error (an HTTP error status), 1501 download server unavailable (no answer, a network failure,
502/503/504); 1550-1599 vendor download server errors.

Operating environments (DM-HLF-006): on a device with several, each component is installed into
one, named by ``EnvType`` (a name under ``./OpEnv``). An empty ``EnvType`` means the environment
the executing server manages (else the host). A name the device does not have, or an environment
whose accounts do not include the executing server, ends with 1413 and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.mo import dlota
from emulator.mo.operations import Enter, Fetched, MoKind, OperationRun, Steps, Wait, register_mo
from emulator.mo.standard import (
    USER_CANCELLED,
    MoInstance,
    check_common,
    draw_failure,
    leaf,
    node,
    set_int,
    sub,
)
from emulator.tree import Tree, TreeEvent
from emulator.tree import uri as uris
from emulator.tree.ddf import NodeDesc, load_builtin
from emulator.tree.tree import ExecRequest

MOID = "urn:oma:mo:oma-scomo:1.0"
ALERT_TYPE = "urn:oma:at:scomo:1.0:OperationComplete"

# Download/<x>/Status
DL_IDLE, DL_FAILED, DL_PROGRESSING, DL_COMPLETE, DL_INSTALLING, DL_INSTALL_FAILED_DATA, DL_INSTALL_FAILED = (
    10, 20, 30, 40, 50, 60, 70)
# Inventory/Delivered/<x>/Status and State
DV_IDLE, DV_REMOVE_FAILED, DV_REMOVING, DV_INSTALLING, DV_INSTALL_FAILED_DATA = 10, 20, 30, 40, 50
DELIVERED, INSTALLED = 10, 20
# Inventory/Deployed/<x>/Status and State
DP_IDLE, DP_REMOVE_FAILED, DP_REMOVING, DP_ACTIVATE_FAILED, DP_ACTIVATING, DP_DEACTIVATE_FAILED, DP_DEACTIVATING = (
    10, 20, 30, 40, 50, 60, 70)
INACTIVE, ACTIVE = 10, 20

SUCCEEDED = 1200
RESULT_CODES = {
    1200: "Request Succeeded",
    1400: "Client Error",
    1401: "User Cancelled",
    1402: "Download Failed",
    1403: "Alternate Download Authentication Failure",
    1404: "Download Failed due to Device Out of Memory",
    1405: "Install Failed",
    1406: "Install Failed due to Device Out of Memory",
    1407: "Failed Package Validation",
    1408: "Remove Failed",
    1409: "Activate Failed",
    1410: "Deactivate Failed",
    1411: "Not Implemented",
    1412: "Undefined Error",
    1413: "Operation Rejected - Unsupported Environment",
    1500: "Alternate Download Server Error",
    1501: "Alternate Download Server Unavailable",
}
"""The SCOMO result codes (OMA-TS-DM-SCOMO-V1_0 8.7); 1250-1299, 1450-1499 and 1550-1599 are
vendor-specified successes, client errors and download server errors."""
VENDOR = frozenset(range(1450, 1500))
_COMMON = frozenset({1400, 1411, 1412}) | VENDOR
DOWNLOAD_CODES = _COMMON | {1402, 1403, 1404, 1500, 1501} | frozenset(range(1550, 1600))
INSTALL_CODES = _COMMON | {1405, 1406, 1407}
REMOVE_CODES = _COMMON | {1408}
ACTIVATE_CODES = _COMMON | {1409}
DEACTIVATE_CODES = _COMMON | {1410}
DECLARABLE = DOWNLOAD_CODES | INSTALL_CODES | REMOVE_CODES | ACTIVATE_CODES | DEACTIVATE_CODES

DOWNLOAD_OPS = ("Download", "DownloadInstall", "DownloadInstallInactive")
DELIVERED_OPS = ("Install", "InstallInactive", "Remove")
DEPLOYED_OPS = ("Activate", "Deactivate", "Remove")

SETTINGS: dict[str, object] = {
    "install_s": 1.0,  # seconds an install (also an activation, deactivation, removal) takes
    "consent": "accept",  # the user's answer before an install: accept, or decline (result 1401)
    "fail": {},  # result code (as text) -> probability this device's operation ends with it
    "free_bytes": 64 << 20,  # room for a package: a larger one fails the download (1404)
    "download_kbps": 0.0,  # the package server's rate on top of the bearer's (0: the bearer's only)
    "components": [],  # deployed from the factory: {id, name, version, environment, active}
}
_COMPONENT_KEYS = {"id": str, "name": str, "version": str, "environment": str, "active": bool}


def explain(code: int) -> str:
    if code in RESULT_CODES:
        return RESULT_CODES[code]
    for lo, hi, text in ((1250, 1299, "vendor-specified success"), (1450, 1499, "vendor-specified client error"),
                         (1550, 1599, "vendor-specified download server error")):
        if lo <= code <= hi:
            return text
    return "unknown SCOMO result code"


def _check(name: str, value: object) -> str | None:
    if name == "components":
        assert isinstance(value, list)
        for c in value:
            if not isinstance(c, dict) or not {"id", "version"} <= c.keys() or not c.keys() <= _COMPONENT_KEYS.keys():
                return "each component is a table with id and version (name, environment, active optional)"
            for key, kind in _COMPONENT_KEYS.items():
                if key in c and not isinstance(c[key], kind):
                    return f"component {key} must be a {kind.__name__}"
            if not c["id"] or "/" in c["id"] or c["id"] in (".", ".."):
                return f"{c['id']!r} cannot be a component node name"
        return None
    if name == "free_bytes" and float(value) < 0:  # type: ignore[arg-type]
        return "expected bytes >= 0"
    if name == "download_kbps" and float(value) < 0:  # type: ignore[arg-type]
        return "expected kbit/s >= 0"
    return check_common(name, value, DECLARABLE, "SCOMO")


def alert_data(code: int, identifier: str) -> str:
    """The OperationComplete data: the result code and the component's identifier."""
    return f"<ResultCode>{code}</ResultCode><Identifier>{_xml(identifier)}</Identifier>"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _desc() -> NodeDesc:
    return load_builtin(MOID).root


def install(tree: Tree, root: str, settings: Mapping[str, object], profile: Any = None) -> None:
    """The instance at ``root`` of a (template) tree, with the factory components deployed."""
    desc = _desc()
    node(tree, root, desc, mo_type=MOID)
    node(tree, f"{root}/Download", sub(desc, "Download"))
    node(tree, f"{root}/Inventory", sub(desc, "Inventory"))
    node(tree, f"{root}/Inventory/Delivered", sub(desc, "Inventory", "Delivered"))
    node(tree, f"{root}/Inventory/Deployed", sub(desc, "Inventory", "Deployed"))
    node(tree, f"{root}/Ext", sub(desc, "Ext"))
    components = settings["components"]
    assert isinstance(components, list)
    for c in components:
        deploy(tree, root, c["id"], pkg_id="", name_text=c.get("name", ""), version=c["version"],
               env=c.get("environment", ""), active=c.get("active", True))


def deploy(tree: Tree, root: str, name: str, *, pkg_id: str, name_text: str = "", version: str, env: str,
           active: bool, component_id: str | None = None) -> str:
    """Write ``Inventory/Deployed/<name>`` (a new component, or an upgrade of one); its path."""
    item = sub(_desc(), "Inventory", "Deployed", "x")
    base = f"{root}/Inventory/Deployed/{name}"
    with tree.transaction():
        node(tree, base, item)
        for key, value in (("ID", component_id or name), ("PkgIDRef", pkg_id), ("Name", name_text or name),
                           ("Version", version), ("EnvType", env), ("Status", str(DP_IDLE)),
                           ("State", str(ACTIVE if active else INACTIVE))):
            leaf(tree, f"{base}/{key}", sub(item, key), value)
        node(tree, f"{base}/Operations", sub(item, "Operations"))
        for op in DEPLOYED_OPS:
            leaf(tree, f"{base}/Operations/{op}", sub(item, "Operations", op), None)
        node(tree, f"{base}/Ext", sub(item, "Ext"))
    return base


DESCRIPTOR_CODES = {"bad descriptor": 1500, "too large": 1404, "corrupt": 1402}
"""A download through a descriptor that failed (:data:`emulator.mo.dlota.PROBLEMS`) [P], as FUMO reads
them: a descriptor the device cannot use is the download server's error (1500), one announcing more
than ``free_bytes`` is out of memory (1404), an object whose SHA-256 is not the announced one failed
to download (1402)."""


def download_failure(f: Fetched) -> int:
    """The SCOMO result code of a download that did not complete [P]."""
    if f.outcome == "too large":
        return 1404
    if f.outcome == "network":
        return 1501
    if f.outcome == "http error":
        if f.status in (401, 403, 407):
            return 1403
        return 1501 if f.status in (502, 503, 504) else 1500
    return 1402  # a bad URL, a size that does not match, an answer that cannot be read


class Scomo(MoInstance):
    """One SCOMO instance of a device: Exec handlers, the Download nodes it completes, its operations."""

    _filling = False  # completing a Download node: its own adds are not the server's

    def attach(self, tree: Tree) -> None:
        root = self.root
        for op in DOWNLOAD_OPS:
            tree.on_exec(f"{root}/Download/*/Operations/{op}", self.exec)
        for op in DELIVERED_OPS:
            tree.on_exec(f"{root}/Inventory/Delivered/*/Operations/{op}", self.exec)
        for op in DEPLOYED_OPS:
            tree.on_exec(f"{root}/Inventory/Deployed/*/Operations/{op}", self.exec)
        tree.subscribe(lambda event: self.on_change(tree, event))

    # ------------------------------------------------------------------ Download/<x> the server adds

    def on_change(self, tree: Tree, event: TreeEvent) -> None:
        """A server added (part of) ``Download/<x>``: the device adds its Status and Operations."""
        if event.kind != "add" or self._filling:
            return
        segs = uris.split(event.path)
        base = uris.split(self.root) + ("Download",)
        if len(segs) > len(base) and segs[: len(base)] == base:
            self._complete(tree, uris.join(segs[: len(base) + 1]))

    def _complete(self, tree: Tree, base: str) -> None:
        if not tree.exists(base) or tree.info(base).children is None or tree.exists(f"{base}/Operations"):
            return
        item = sub(_desc(), "Download", "x")
        self._filling = True
        try:
            if not tree.exists(f"{base}/Status"):
                leaf(tree, f"{base}/Status", sub(item, "Status"), str(DL_IDLE))
            node(tree, f"{base}/Operations", sub(item, "Operations"))
            for op in DOWNLOAD_OPS:
                leaf(tree, f"{base}/Operations/{op}", sub(item, "Operations", op), None)
        finally:
            self._filling = False

    # ------------------------------------------------------------------ Exec

    def exec(self, tree: Tree, request: ExecRequest) -> int:
        segs = uris.split(request.path)
        op, item, kind = segs[-1], uris.join(segs[:-2]), segs[-4]  # kind: Download, Delivered, Deployed
        run = OperationRun("scomo", request)
        if kind == "Download":
            run.steps = self._download(tree, item, op, run)
        elif kind == "Delivered":
            run.steps = self._delivered(tree, item, op, run)
        else:
            run.steps = self._deployed(tree, item, op, run)
        return int(self.behaviours.start_operation(run))

    def _finish(self, run: OperationRun, code: int, identifier: str, target: str | None = None) -> None:
        run.result = code
        mark = "informational" if 1200 <= code < 1300 else "critical"
        run.report(ALERT_TYPE, alert_data(code, identifier), format="xml", source=run.request.path, mark=mark,
                   target=target)

    def _status(self, tree: Tree, uri: str, value: int, text: str) -> Enter:
        set_int(tree, uri, value)
        return Enter(str(value), text)

    def _environment(self, env: str, server: str | None) -> str | None:
        """The environment a component goes into (None: 1413, see the module doc)."""
        device = self.behaviours.device
        envs = device.profile.environments if device is not None else ()
        if not envs:
            return "" if not env else None
        if not env:
            mine = [e for e in envs if server in e.accounts]
            host = [e for e in envs if e.kind == "host"]
            return (mine or host or list(envs))[0].name
        found = next((e for e in envs if e.name == env), None)
        if found is None or (found.accounts and server is not None and server not in found.accounts):
            return None
        return found.name

    def _consented(self) -> bool:
        return self.settings["consent"] != "decline"

    # -- Download/<x>

    def _download(self, tree: Tree, item: str, op: str, run: OperationRun) -> Steps:
        name = uris.split(item)[-1]
        values = {k: _text(tree, f"{item}/{k}") for k in ("PkgID", "Name", "PkgURL", "Description", "EnvType",
                                                              "PkgType", "InstallParams")}
        pkg_id = values["PkgID"] or name
        drawn = draw_failure(self.settings, self.rng)
        env = self._environment(values["EnvType"], run.request.by)
        if env is None:
            self._finish(run, 1413, pkg_id)
            return
        yield self._status(tree, f"{item}/Status", DL_PROGRESSING, "download progressing")
        room, rate = self.settings["free_bytes"], self.settings["download_kbps"]
        assert isinstance(room, int | float) and isinstance(rate, int | float)
        got: dlota.Downloaded = yield from dlota.download(values["PkgURL"], int(room), float(rate))
        fetched = got.fetched
        code = DESCRIPTOR_CODES[got.problem] if got.problem else (
            SUCCEEDED if fetched.ok else download_failure(fetched))
        if code == SUCCEEDED and drawn in DOWNLOAD_CODES:
            code = drawn
        if (told := dlota.notify(got, dlota.install_status(got, code == SUCCEEDED))) is not None:
            yield told
        if code != SUCCEEDED:
            yield self._status(tree, f"{item}/Status", DL_FAILED, "download failed")
            self._finish(run, code, pkg_id)
            return
        delivered = self._deliver(tree, name, values, pkg_id, env, fetched)
        yield self._status(tree, f"{item}/Status", DL_COMPLETE, "download complete")
        if op == "Download":
            self._finish(run, SUCCEEDED, pkg_id, delivered)
            return
        if not self._consented():
            yield self._status(tree, f"{item}/Status", DL_INSTALL_FAILED_DATA, "user cancelled")
            self._finish(run, USER_CANCELLED, pkg_id)
            return
        yield self._status(tree, f"{item}/Status", DL_INSTALLING, "install progressing")
        yield Wait(float(self.settings["install_s"]))  # type: ignore[arg-type]
        if drawn in INSTALL_CODES:
            yield self._status(tree, f"{item}/Status", DL_INSTALL_FAILED_DATA, "install failed")
            self._finish(run, drawn, pkg_id)
            return
        target = self._install(tree, delivered, active=op == "DownloadInstall")
        yield self._status(tree, f"{item}/Status", DL_IDLE, "installed")
        self._finish(run, SUCCEEDED, pkg_id, target)

    def _deliver(self, tree: Tree, name: str, values: dict[str, str], pkg_id: str, env: str, fetched: Fetched) -> str:
        item = sub(_desc(), "Inventory", "Delivered", "x")
        base = f"{self.root}/Inventory/Delivered/{name}"
        with tree.transaction():
            node(tree, base, item)
            for key, value in (("PkgID", pkg_id), ("Name", values["Name"] or pkg_id),
                               ("Description", values["Description"]), ("InstallParams", values["InstallParams"]),
                               ("EnvType", env), ("PkgType", values["PkgType"]), ("Status", str(DV_IDLE)),
                               ("State", str(DELIVERED))):
                leaf(tree, f"{base}/{key}", sub(item, key), value)
            node(tree, f"{base}/Operations", sub(item, "Operations"))
            for op in DELIVERED_OPS:
                leaf(tree, f"{base}/Operations/{op}", sub(item, "Operations", op), None)
            node(tree, f"{base}/Ext", sub(item, "Ext"))
            # what the device keeps of the package: its size and digest (the bytes themselves are not stored)
            tree.set_node(f"{base}/Ext/Size", str(fetched.size), format="int", type="text/plain")
            tree.set_node(f"{base}/Ext/SHA256", fetched.digest, format="chr", type="text/plain")
        return base

    def _install(self, tree: Tree, delivered: str, *, active: bool) -> str:
        name = uris.split(delivered)[-1]
        params = _text(tree, f"{delivered}/InstallParams")
        pkg_id = _text(tree, f"{delivered}/PkgID")
        target = deploy(tree, self.root, name, pkg_id=pkg_id, name_text=_text(tree, f"{delivered}/Name"),
                        version=_param(params, "version") or "1.0", env=_text(tree, f"{delivered}/EnvType"),
                        active=active, component_id=_param(params, "id") or pkg_id or name)
        set_int(tree, f"{delivered}/State", INSTALLED)
        set_int(tree, f"{delivered}/Status", DV_IDLE)
        return target

    # -- Inventory/Delivered/<x>

    def _delivered(self, tree: Tree, item: str, op: str, run: OperationRun) -> Steps:
        drawn = draw_failure(self.settings, self.rng)
        pkg_id = _text(tree, f"{item}/PkgID") or uris.split(item)[-1]
        yield Wait(float(self.settings["install_s"]))  # type: ignore[arg-type]
        if not tree.exists(item):  # removed while this operation waited its turn
            self._finish(run, 1400, pkg_id)
            return
        if op == "Remove":
            if drawn in REMOVE_CODES:
                yield self._status(tree, f"{item}/Status", DV_REMOVE_FAILED, "remove failed")
                self._finish(run, drawn, pkg_id)
                return
            tree.delete(item, by=None)
            self._finish(run, SUCCEEDED, pkg_id)
            return
        if not self._consented():
            self._finish(run, USER_CANCELLED, pkg_id)
            return
        if drawn in INSTALL_CODES:
            yield self._status(tree, f"{item}/Status", DV_INSTALL_FAILED_DATA, "install failed")
            self._finish(run, drawn, pkg_id)
            return
        self._finish(run, SUCCEEDED, pkg_id, self._install(tree, item, active=op == "Install"))

    # -- Inventory/Deployed/<x>

    def _deployed(self, tree: Tree, item: str, op: str, run: OperationRun) -> Steps:
        drawn = draw_failure(self.settings, self.rng)
        ident = _text(tree, f"{item}/ID") or uris.split(item)[-1]
        progress = {"Remove": (DP_REMOVING, "removing"), "Activate": (DP_ACTIVATING, "activating"),
                    "Deactivate": (DP_DEACTIVATING, "deactivating")}[op]
        yield self._status(tree, f"{item}/Status", *progress)
        yield Wait(float(self.settings["install_s"]))  # type: ignore[arg-type]
        if not tree.exists(item):  # removed while this operation waited its turn
            self._finish(run, 1400, ident)
            return
        codes, failed = {"Remove": (REMOVE_CODES, DP_REMOVE_FAILED), "Activate": (ACTIVATE_CODES, DP_ACTIVATE_FAILED),
                         "Deactivate": (DEACTIVATE_CODES, DP_DEACTIVATE_FAILED)}[op]
        if drawn in codes:
            yield self._status(tree, f"{item}/Status", failed, f"{op.lower()} failed")
            self._finish(run, drawn, ident)
            return
        if op == "Remove":
            with tree.transaction():
                tree.delete(item, by=None)
                set_int(tree, f"{self.root}/Inventory/Delivered/{uris.split(item)[-1]}/State", DELIVERED)
            self._finish(run, SUCCEEDED, ident)
            return
        with tree.transaction():
            set_int(tree, f"{item}/State", ACTIVE if op == "Activate" else INACTIVE)
            set_int(tree, f"{item}/Status", DP_IDLE)
        self._finish(run, SUCCEEDED, ident, item)


def _text(tree: Tree, uri: str) -> str:
    if not tree.exists(uri):
        return ""
    value = tree.value(uri)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def _param(params: str, key: str) -> str:
    """``key=value`` out of InstallParams (``version=2.1;id=maps``) [P]."""
    for part in params.replace(",", ";").split(";"):
        k, _, v = part.partition("=")
        if k.strip() == key:
            return v.strip()
    return ""


register_mo(MoKind("scomo", SETTINGS, install, Scomo.attach_declared, _check,
                   "software components (OMA-TS-DM-SCOMO): Download, DownloadInstall(Inactive), Install, "
                   "Activate, Deactivate, Remove", RESULT_CODES, (ALERT_TYPE,)))
