"""Connectivity under server control (DM-HLF-007): a ConnMO-style object whose writes move the
device's transport.

OMA ConnMO describes network access points (``NAP``) and a preferred connection reference
(``PrefConRef``); its full layout is bearer-specific and long. This object borrows those names
for what the emulator can act on [P] (DDF: ``assets/ddf/ext-dmemulator-connmo_1.0.xml``):

  ``<root>/PrefConRef``            the preferred bearer: the next session uses it when it is up
  ``<root>/Active``                the bearer in use now (the device's; empty: offline)
  ``<root>/NAP/<bearer>/State``    up or down
  ``<root>/NAP/<bearer>/APN``      cellular bearers: the access point name (1-100 printable characters)
  ``<root>/NAP/<bearer>/SSID``     Wi-Fi bearers: the network name (1-32 printable characters)
  ``<root>/NAP/<bearer>/BearerType``, ``Addr``   read only

The bearer MO's own ``State`` leaf (``./DevDetail/Bearer/<name>/State``,
``./DM2/DevInfo/Bearer/<name>/State``) counts as the same switch.

When a write takes effect [P]: at the end of the session that made it, so the status of the very
command that turns a bearer off still travels over that bearer. Then a disabled active bearer makes
the device move to the preferred bearer if it is up, else the first one up, else offline (no session
can start until a bearer comes up: a local event, a scenario's ``bearer`` step); a new PrefConRef
that is up becomes the bearer of the next session. A value the device cannot act on (State "maybe",
a PrefConRef naming no bearer, an empty SSID) is answered 400 and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.mo.operations import DeviceRandom, MoKind, register_mo
from emulator.mo.standard import dm12_object_acl
from emulator.tree import Tree
from emulator.tree import uri as uris
from emulator.tree.ddf import load_builtin
from emulator.tree.ddfwrite import write_interior, write_leaf
from emulator.tree.tree import TreeEvent, Value

MOID = "urn:oma:mo:ext-dmemulator-connmo:1.0"
DM1_BASE = "./ConnMO"
DM2_BASE = "./DM2/ConnMO"
BEARER_BASES = ("./DevDetail/Bearer", "./DM2/DevInfo/Bearer")
APN_MAX, SSID_MAX = 100, 32
CELLULAR = ("LTE", "5GNR", "NBIOT", "LTE-M", "UMTS", "GSM", "SATELLITE")


def _text(value: Value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


def _check_state(tree: Tree, path: str, value: Value) -> str | None:
    return None if _text(value) in ("up", "down") else f"State is up or down, not {_text(value)[:40]!r}"


def _check_pref(tree: Tree, path: str, value: Value) -> str | None:
    name = _text(value)
    naps = uris.split(path)[:-1] + ("NAP",)
    if not name or "/" in name or not tree.exists(naps + (name,)):
        known = ", ".join(tree.children(naps)) if tree.exists(naps) else "none"
        return f"PrefConRef must name a bearer of the device ({known}), not {name[:40]!r}"
    return None


def _printable(limit: int, what: str):  # noqa: ANN202 (a ValueCheck)
    def check(tree: Tree, path: str, value: Value) -> str | None:
        text = _text(value)
        if not 1 <= len(text) <= limit or not text.isprintable():
            return f"{what} is 1-{limit} printable characters, not {text[:40]!r}"
        return None

    return check


def install_checks(tree: Tree, base: str) -> None:
    """What a server may write into the ConnMO object at ``base`` (400 otherwise)."""
    tree.on_value(f"{base}/NAP/*/State", _check_state)
    tree.on_value(f"{base}/PrefConRef", _check_pref)
    tree.on_value(f"{base}/NAP/*/APN", _printable(APN_MAX, "APN"))
    tree.on_value(f"{base}/NAP/*/SSID", _printable(SSID_MAX, "SSID"))


def install_bearer_checks(tree: Tree, bearers: str) -> None:
    """What a server may write into a bearer MO's ``State`` (every device has one, with or without
    ConnMO: its State is the same switch)."""
    tree.on_value(f"{bearers}/*/State", _check_state)


@dataclass(frozen=True, slots=True)
class Change:
    """What a server asked of the transport: a bearer's state, or the preferred bearer."""

    kind: str  # "state" or "preferred"
    bearer: str
    up: bool = True


def server_change(event: TreeEvent) -> Change | None:
    """The transport change a server's write asks for (None: not a connectivity write)."""
    if event.by is None or event.kind not in ("replace", "add"):
        return None
    segs = uris.split(event.path)
    value = _text(event.new)
    for base in (DM1_BASE, DM2_BASE):
        b = uris.split(base)
        if segs == b + ("PrefConRef",):
            return Change("preferred", value)
        if len(segs) == len(b) + 3 and segs[:len(b) + 1] == b + ("NAP",) and segs[-1] == "State":
            return Change("state", segs[-2], value == "up")
    for base in BEARER_BASES:
        b = uris.split(base)
        if len(segs) == len(b) + 2 and segs[:len(b)] == b and segs[-1] == "State":
            return Change("state", segs[-2], value == "up")
    return None


def write_nap(tree: Tree, base: str, name: str, bearer_type: str, up: bool, address: str) -> None:
    """The device's view of one bearer in the ConnMO object (device-side writes)."""
    nap = f"{base}/NAP/{name}"
    if not tree.exists(nap):
        tree.set_node(nap, format="node")
        tree.set_node(f"{nap}/BearerType", bearer_type)
        kind = bearer_type.upper().replace(" ", "")
        if kind in CELLULAR:
            tree.set_node(f"{nap}/APN", "internet")
        elif kind == "WIFI":
            tree.set_node(f"{nap}/SSID", "dm-emulator")
        if address:
            tree.set_node(f"{nap}/Addr", address)
    _put(tree, f"{nap}/State", "up" if up else "down")


def write_active(tree: Tree, base: str, active: str) -> None:
    if tree.exists(base):
        _put(tree, f"{base}/Active", active)


def _put(tree: Tree, uri: str, value: str) -> None:
    if not tree.exists(uri):
        tree.set_node(uri, value)
    elif tree.value(uri) != value:
        tree.replace(uri, value)


# ---------------------------------------------------------------------------------------------
# the managed object a profile declares: [[behaviours]] mo = "connmo", node = "./ConnMO"


def install(tree: Tree, root: str, settings: Mapping[str, object], profile: Any) -> None:
    """The ConnMO-style object at ``root`` of a profile's template tree: one NAP per bearer."""
    desc = load_builtin(MOID).root
    write_interior(tree, desc, root, mo_type=MOID, acl=dm12_object_acl(profile, root))
    write_interior(tree, desc.child("NAP"), f"{root}/NAP")
    first_up = next((b.name for b in profile.bearers if b.up), "")
    write_leaf(tree, desc.child("PrefConRef"), f"{root}/PrefConRef", first_up)
    write_leaf(tree, desc.child("Active"), f"{root}/Active", first_up)
    for b in profile.bearers:
        write_nap(tree, root, b.name, b.type, b.up, b.address)
    install_checks(tree, root)


def _attach(behaviours: Any, tree: Tree, declared: Any, rng: DeviceRandom) -> None:
    """Nothing per device: the device moves its transport on the writes :func:`server_change` finds,
    and writes its NAPs where the tree has them."""


register_mo(MoKind("connmo", {}, install, _attach, None,
                   "connectivity (a ConnMO-style object, DM-HLF-007): the preferred bearer, each bearer's "
                   "state, APN and SSID; a write moves the device's transport", roots=(DM1_BASE, DM2_BASE)))
