"""LAWMO, the Lock and Wipe Management Object (OMA-TS-LAWMO-V1_0), as device behaviour.

A profile declares an instance (``[[behaviours]] mo = "lawmo"``, ``node`` its root: ``./LAWMO`` for DM
1.2, ``./DM2/oma-lawmo/<MIID>`` for DM 2.0, where the MOID ``urn:oma:mo:oma-lawmo:1.0`` reaches it).
Nodes (DDF ``assets/ddf/oma-lawmo_1.0.xml``): ``State`` (10 fully locked, 20 partially locked, 30
unlocked), ``AvailableWipeList/<x>/{ListItemName,ToBeWiped}``, ``LAWMOConfig/NotifyUser``,
``Operations/{FullyLock,PartiallyLock,UnLock,FactoryReset,Wipe}``, ``Ext``. An Exec of an operation
answers 202; after ``operation_s`` the device does it and reports in a new session with a generic
alert ``urn:oma:at:lawmo:1.0:OperationComplete``: data the LAWMO result code (format int), Source the
executed node, the Exec's Correlator.

What the operations do to the emulated device:

- the lock state is the device's, not one instance's: every LAWMO instance shows it; a fully locked
  device refuses every local app, a partially locked one every app but ``partial_lock_apps``
  (:func:`app_refusal`, used by :mod:`emulator.device.apps`);
- Wipe deletes what the ``wipe`` knob maps each list item to (``{Contacts = "./Data/Contacts"}``: the
  children of that node) for the items whose ``ToBeWiped`` is true, or those the Exec's data names
  (comma-separated; a name not in the list is answered 404 and nothing is wiped); no item chosen
  ends with 1406 (wipe operation not performed);
- FactoryReset gives the device its profile's tree again: the accounts the profile provisions
  survive (their credentials as they are now), everything added later goes
  (``VirtualDevice.factory_reset``);
- with ``LAWMOConfig/NotifyUser`` true the user is asked first; ``consent = "decline"`` ends the
  operation with 1401;
- a drawn failure (``fail``) leaves the device as it was and reports its code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from emulator.mo.operations import Enter, MoKind, OperationRun, Steps, Wait, register_mo
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
from emulator.tree import Tree
from emulator.tree import uri as uris
from emulator.tree.ddf import load_builtin
from emulator.tree.tree import ExecRequest

MOID = "urn:oma:mo:oma-lawmo:1.0"
ALERT_TYPE = "urn:oma:at:lawmo:1.0:OperationComplete"
FULLY_LOCKED, PARTIALLY_LOCKED, UNLOCKED = 10, 20, 30
STATES = {FULLY_LOCKED: "fully locked", PARTIALLY_LOCKED: "partially locked", UNLOCKED: "unlocked"}
OPERATIONS = ("FullyLock", "PartiallyLock", "UnLock", "FactoryReset", "Wipe")
LOCKS = {"FullyLock": FULLY_LOCKED, "PartiallyLock": PARTIALLY_LOCKED, "UnLock": UNLOCKED}

SUCCEEDED = 1200
RESULT_CODES = {
    1200: "Operation Succeeded",
    1400: "Client Error",
    1401: "User Cancelled",
    1402: "Fully Lock Device Failed",
    1403: "Partially Lock Device Failed",
    1404: "UnLock Device Failed",
    1405: "Wipe Device's Data Failed",
    1406: "Wipe Operation Not Performed",
}
"""The LAWMO result codes (OMA-TS-LAWMO-V1_0); 1250-1299 are vendor-specified successes and
1450-1499 vendor-specified client errors."""
VENDOR = frozenset(range(1450, 1500))
_COMMON = frozenset({1400}) | VENDOR
CODES = {"FullyLock": _COMMON | {1402}, "PartiallyLock": _COMMON | {1403}, "UnLock": _COMMON | {1404},
         "Wipe": _COMMON | {1405}, "FactoryReset": _COMMON}
"""The failures each operation can end with (a ``fail`` code outside them leaves the operation alone)."""
DECLARABLE = frozenset().union(*CODES.values())

SETTINGS: dict[str, object] = {
    "operation_s": 1.0,  # seconds a lock, unlock, wipe or factory reset takes
    "consent": "accept",  # the user's answer when NotifyUser asks: accept, or decline (result 1401)
    "fail": {},  # result code (as text) -> probability this device's operation ends with it
    "wipe": {},  # AvailableWipeList item -> the node whose children a wipe deletes ("" for none)
    "partial_lock_apps": [],  # local apps a partial lock keeps running
}


def explain(code: int) -> str:
    if code in RESULT_CODES:
        return RESULT_CODES[code]
    if 1250 <= code <= 1299:
        return "vendor-specified success"
    return "vendor-specified client error" if code in VENDOR else "unknown LAWMO result code"


def _check(name: str, value: object) -> str | None:
    if name == "wipe":
        assert isinstance(value, dict)
        for item, target in value.items():
            if not item or "/" in item or item in (".", ".."):
                return f"{item!r} cannot be a list item name"
            if not isinstance(target, str) or (target and not target.startswith("./")):
                return f"{item}: expected a node URI starting with ./ (or \"\")"
        return None
    if name == "partial_lock_apps":
        assert isinstance(value, list)
        return None if all(isinstance(a, str) for a in value) else "expected a list of app names"
    return check_common(name, value, DECLARABLE, "LAWMO")


def install(tree: Tree, root: str, settings: Mapping[str, object], profile: Any = None) -> None:
    """The instance at ``root`` of a (template) tree: unlocked, the profile's wipe list unchosen."""
    desc = load_builtin(MOID).root
    node(tree, root, desc, mo_type=MOID)
    leaf(tree, f"{root}/State", sub(desc, "State"), str(UNLOCKED))
    node(tree, f"{root}/AvailableWipeList", sub(desc, "AvailableWipeList"))
    item = sub(desc, "AvailableWipeList", "x")
    wipe = settings["wipe"]
    assert isinstance(wipe, dict)
    for name in wipe:
        base = f"{root}/AvailableWipeList/{name}"
        node(tree, base, item)
        leaf(tree, f"{base}/ListItemName", sub(item, "ListItemName"), name)
        leaf(tree, f"{base}/ToBeWiped", sub(item, "ToBeWiped"), "false")
    node(tree, f"{root}/LAWMOConfig", sub(desc, "LAWMOConfig"))
    leaf(tree, f"{root}/LAWMOConfig/NotifyUser", sub(desc, "LAWMOConfig", "NotifyUser"), "false")
    node(tree, f"{root}/Operations", sub(desc, "Operations"))
    for op in OPERATIONS:
        leaf(tree, f"{root}/Operations/{op}", sub(desc, "Operations", op), None)
    node(tree, f"{root}/Ext", sub(desc, "Ext"))


def lock_state(tree: Tree, roots: Iterable[str]) -> int:
    """The device's lock state, as its LAWMO instances at ``roots`` show it (UNLOCKED without any)."""
    for root in roots:
        if tree.exists(f"{root}/State"):
            value = tree.value(f"{root}/State")
            if isinstance(value, str) and value.isdigit():
                return int(value)
    return UNLOCKED


def app_refusal(behaviours: Any, tree: Tree, app: str) -> str | None:
    """Why a local app may not run on the device whose declared behaviours are ``behaviours`` (None:
    it may): a full lock stops every app, a partial lock those its LAWMO does not keep."""
    instances = [s for s in behaviours.mo_state.values() if isinstance(s, Lawmo)]
    if not instances:
        return None
    state = lock_state(tree, (i.root for i in instances))
    if state == FULLY_LOCKED:
        return "the device is fully locked (LAWMO)"
    kept = {a for i in instances for a in i.settings["partial_lock_apps"]}  # type: ignore[attr-defined]
    if state == PARTIALLY_LOCKED and app not in kept:
        return "the device is partially locked (LAWMO) and this app is not kept running"
    return None


class Lawmo(MoInstance):
    """One LAWMO instance of a device: its Exec handlers and the operations they start."""

    def attach(self, tree: Tree) -> None:
        for op in OPERATIONS:
            tree.on_exec(f"{self.root}/Operations/{op}", self.exec)

    def exec(self, tree: Tree, request: ExecRequest) -> int:
        op = uris.split(request.path)[-1]
        chosen: list[str] | None = None
        if op == "Wipe" and request.data:
            data = request.data
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
            chosen = [n.strip() for n in text.split(",") if n.strip()]
            if any(n not in self.settings["wipe"] for n in chosen):  # type: ignore[operator]
                return 404  # no such list entry: nothing wiped, nothing reported [P]
        run = OperationRun("lawmo", request)
        run.steps = self._run(tree, op, run, chosen)
        return int(self.behaviours.start_operation(run))

    def _run(self, tree: Tree, op: str, run: OperationRun, chosen: list[str] | None) -> Steps:
        yield Wait(float(self.settings["operation_s"]))  # type: ignore[arg-type]
        code = self._carry_out(tree, op, chosen)
        run.result = code
        mark = "informational" if 1200 <= code < 1300 else "critical"
        run.report(ALERT_TYPE, str(code), format="int", source=run.request.path, mark=mark)
        if op in ("FullyLock", "PartiallyLock", "UnLock") and code == SUCCEEDED:
            state = LOCKS[op]
            yield Enter(str(state), STATES[state])

    def _carry_out(self, tree: Tree, op: str, chosen: list[str] | None) -> int:
        notify = f"{self.root}/LAWMOConfig/NotifyUser"
        if tree.exists(notify) and tree.value(notify) == "true" and self.settings["consent"] == "decline":
            return USER_CANCELLED
        drawn = draw_failure(self.settings, self.rng)
        if drawn in CODES[op]:
            return drawn
        if op in ("FullyLock", "PartiallyLock", "UnLock"):
            state = LOCKS[op]
            for other in self.behaviours.mo_state.values():  # the lock is the device's: every instance shows it
                if isinstance(other, Lawmo):
                    set_int(tree, f"{other.root}/State", state)
        elif op == "Wipe":
            wipe = self.settings["wipe"]
            assert isinstance(wipe, dict)
            items = chosen if chosen is not None else [
                n for n in wipe if tree.exists(f"{self.root}/AvailableWipeList/{n}/ToBeWiped")
                and tree.value(f"{self.root}/AvailableWipeList/{n}/ToBeWiped") == "true"]
            if not items:
                return 1406
            with tree.transaction():
                for name in items:
                    target = wipe[name]
                    if target and tree.exists(target):
                        for child in tree.children(target):
                            tree.delete(f"{target}/{child}", by=None)
        elif op == "FactoryReset":
            device = self.behaviours.device
            if device is None:
                return 1400  # no device to reset (a bare tree in a test)
            device.factory_reset()
        return SUCCEEDED


register_mo(MoKind("lawmo", SETTINGS, install, Lawmo.attach_declared, _check,
                   "lock and wipe (OMA-TS-LAWMO): FullyLock, PartiallyLock, UnLock, FactoryReset, Wipe, State 10-30",
                   RESULT_CODES, (ALERT_TYPE,)))
