"""Profile -> management tree.

A profile's template tree is built once (from the DDFs in ``assets/ddf`` and the profile's values)
and every device of that profile is a :meth:`Tree.fork` of it with its identity written in: devices
share every node they never change. Layout:

- DM 1.x: ``./DevInfo``, ``./DevDetail`` (with ``Bearer/<name>``), ``./DMAcc/<ServerID>``, ``./Inbox``
- DM 2.0: ``./DM2/DevInfo`` (with ``Bearer/<name>``), ``./DM2/DMAcc/<SrvID>``, ``./DM2/SessionInfo``;
  an MO instance is an interior node whose Type is its MOID, its MIID the node name
- both: ``./OpEnv/<name>`` for operating environments, and the profile's extra nodes
"""

from __future__ import annotations

import base64

from emulator.device.identity import Identity, make_identity
from emulator.device.profile import AccountSpec, BearerSpec, Profile, fill
from emulator.errors import FileFormatError
from emulator.mo import behaviours, bootstrap, connmo, dm13
from emulator.mo.accounts import AUTH_TYPES, DM1_ROOT, DM2_ROOT, DMACC_1, DMACC_2, decode_nonce
from emulator.tree import Tree
from emulator.tree import uri as uris
from emulator.tree.ddf import NodeDesc, load_builtin
from emulator.tree.ddfwrite import MIME
from emulator.tree.ddfwrite import fill_required as _fill_required
from emulator.tree.ddfwrite import write_interior as _interior
from emulator.tree.ddfwrite import write_leaf as _leaf
from emulator.tree.ddfwrite import write_values as _values
from emulator.tree.uri import UriLimits

DEVINFO_1 = "urn:oma:mo:oma-dm-devinfo:1.0"
DEVDETAIL_1 = "urn:oma:mo:oma-dm-devdetail:1.0"
INBOX_1 = "urn:oma:mo:oma-dm-inbox:1.0"
DEVINFO_2 = "urn:oma:mo:oma-dm-devinfo:1.2"
SESSIONINFO_2 = "urn:oma:mo:oma-sessioninfomo:1.0"
BEARER_MO = "com.dmemulator/1.0/Bearer"
OPENV_MO = "com.dmemulator/1.0/OpEnv"


def _bearers(tree: Tree, base: str, bearers: tuple[BearerSpec, ...]) -> None:
    desc = load_builtin(BEARER_MO).root
    _interior(tree, desc, base, mo_type=BEARER_MO)
    item = desc.child("x") or desc
    for b in bearers:
        write_bearer(tree, f"{base}/{b.name}", b, item)
    connmo.install_bearer_checks(tree, base)  # a server's write of a bearer's State moves the transport


def write_bearer(tree: Tree, uri: str, b: BearerSpec, item: NodeDesc | None = None) -> None:
    """One bearer's node; also used when a bearer changes state while the device lives."""
    item = item or (load_builtin(BEARER_MO).root.child("x"))
    _interior(tree, item, uri)
    for key, value in (
        ("Type", b.type), ("State", "up" if b.up else "down"), ("NAT", b.nat), ("Address", b.address),
        ("Latency", b.latency_ms), ("Jitter", b.jitter_ms), ("Loss", b.loss), ("Bandwidth", b.bandwidth_kbps),
    ):
        _leaf(tree, item.child(key) if item else None, f"{uri}/{key}", value)


_templates: dict[int, tuple[Profile, Tree]] = {}


def template_tree(profile: Profile) -> Tree:
    """The profile's tree with placeholders where each device differs; never handed out unforked.

    Cached per profile object (profiles hold dicts, so by identity, not by hash).
    """
    cached = _templates.get(id(profile))
    if cached is not None and cached[0] is profile:
        return cached[1]
    tree = _build_template(profile)
    _templates[id(profile)] = (profile, tree)
    return tree


def _build_template(profile: Profile) -> Tree:
    dm1 = "dm12" in profile.protocols
    dm2 = "dm2" in profile.protocols
    uri_limits = profile.devdetail.get("URI", {}) if isinstance(profile.devdetail.get("URI"), dict) else {}
    limits = UriLimits(
        int(uri_limits.get("MaxDepth", 0) or 0), int(uri_limits.get("MaxTotLen", 0) or 0),
        int(uri_limits.get("MaxSegLen", 0) or 0),
    )
    tree = Tree(limits=limits)
    dm12_servers = [a.server_id for a in profile.accounts if a.protocol == "dm12"]
    dm2_servers = [a.server_id for a in profile.accounts if a.protocol == "dm2"]
    scope: dict[str, list[str]] = {}
    for acc in profile.accounts:
        for uri in acc.acl_scope:
            scope.setdefault(uri, []).append(acc.server_id)
    root_extra = scope.pop(".", [])
    if root_extra:
        ids = "+".join(root_extra)
        tree.replace_prop(".", "ACL", f"Add=*&Get=*&Replace={ids}&Delete={ids}&Exec={ids}")

    if dm1:
        info = load_builtin(DEVINFO_1).root
        _interior(tree, info, "./DevInfo", acl="Get=*")
        _values(tree, info, "./DevInfo", {"DevId": "", "Man": "", "Mod": "", "DmV": profile.dm_version, "Lang": "en"}
                | {k: v for k, v in profile.devinfo.items() if info.child(k) is not None and k != "DevType"})
        detail = load_builtin(DEVDETAIL_1).root
        _interior(tree, detail, "./DevDetail", acl="Get=*" + (f"&Replace={'+'.join(dm12_servers)}" if dm12_servers else ""))
        _values(tree, detail, "./DevDetail", dict(profile.devdetail))
        _fill_required(tree, detail, "./DevDetail")
        _fill_required(tree, info, "./DevInfo")
        _bearers(tree, "./DevDetail/Bearer", profile.bearers)
        if profile.dm_version == "1.3":
            dm13.write_features(tree, profile.dm13_features)
        dmacc = load_builtin(DMACC_1).root
        _interior(tree, dmacc, DM1_ROOT, acl="Get=*")
        for acc in profile.accounts:
            if acc.protocol == "dm12":
                _dm1_account(tree, dmacc.child("x") or dmacc, acc)
        _interior(tree, load_builtin(INBOX_1).root, "./Inbox", mo_type=INBOX_1)
    if dm2:
        ids = "+".join(dm2_servers) or "*"
        tree.set_node("./DM2", format="node", permanent=True,
                      acl=f"Add={ids}&Get={ids}&Replace={ids}&Delete={ids}&Exec={ids}")
        info2 = load_builtin(DEVINFO_2).root
        _interior(tree, info2, "./DM2/DevInfo", mo_type=DEVINFO_2)
        base_values: dict[str, object] = {
            "DevID": "", "Man": "", "Mod": "", "DmV": "2.0", "Lang": "en", "DevType": "",
            "OEM": "", "FwV": "", "SwV": "", "HwV": "",
        }
        for k, v in list(profile.devinfo.items()) + list(profile.devdetail.items()):
            if info2.child(k) is not None and not isinstance(v, dict):
                base_values[k] = v
        _values(tree, info2, "./DM2/DevInfo", base_values)
        _fill_required(tree, info2, "./DM2/DevInfo")
        _bearers(tree, "./DM2/DevInfo/Bearer", profile.bearers)
        tree.set_node(DM2_ROOT, format="node", permanent=True)
        dmacc2 = load_builtin(DMACC_2).root
        for acc in profile.accounts:
            if acc.protocol == "dm2":
                _dm2_account(tree, dmacc2, acc)
        sess = load_builtin(SESSIONINFO_2).root
        _interior(tree, sess, "./DM2/SessionInfo", mo_type=SESSIONINFO_2)
        _values(tree, sess, "./DM2/SessionInfo", {"CBT": "3", "ROAMING": "2"})
        behaviours.register(tree)
    if profile.environments:
        env_desc = load_builtin(OPENV_MO).root
        _interior(tree, env_desc, "./OpEnv", mo_type=OPENV_MO)
        item = env_desc.child("x")
        for env in profile.environments:
            base = f"./OpEnv/{env.name}"
            _interior(tree, item, base)
            _leaf(tree, item.child("Name") if item else None, f"{base}/Name", env.name)
            _leaf(tree, item.child("Kind") if item else None, f"{base}/Kind", env.kind)
            _leaf(tree, item.child("ClientID") if item else None, f"{base}/ClientID", "")
    for extra in profile.extra_mos:
        if extra.format == "node":
            tree.set_node(extra.path, format="node", type=extra.type)
        else:
            tree.set_node(extra.path, extra.value, format=extra.format, type=extra.type or MIME)
    kinds = behaviours.mo_kinds() if any(b.mo for b in profile.behaviours) else {}
    for b in profile.behaviours:  # a declared managed object: its subtree, as its kind builds it
        if b.mo:
            kinds[b.mo].install(tree, b.node, dict(b.settings), profile)
    for b in profile.behaviours:  # a declared node the profile did not build is an executable leaf
        if not b.mo and "*" not in uris.split(b.node) and not tree.exists(b.node):
            tree.set_node(b.node, "", format="chr", type=MIME)
    for uri, servers in scope.items():  # after the extra nodes: a scope may point into them
        ids = "+".join(servers)
        if not tree.exists(uri):
            raise FileFormatError(profile.source or profile.name, None,
                                  f"acl_scope {uri!r} of {', '.join(servers)} names no node of the device")
        tree.replace_prop(uri, "ACL", f"Add={ids}&Get={ids}&Replace={ids}&Delete={ids}&Exec={ids}")
    return tree


def write_dm1_account(tree: Tree, acc: AccountSpec) -> None:
    """One DM 1.x account as a profile's ``[[accounts]]`` entry makes it (the bootstrap server builds
    its bootstrap documents with it too)."""
    dmacc = load_builtin(DMACC_1).root
    _dm1_account(tree, dmacc.child("x") or dmacc, acc)


def _dm1_account(tree: Tree, desc: NodeDesc, acc: AccountSpec) -> None:
    base = f"{DM1_ROOT}/{acc.server_id}"
    own = f"Get={acc.server_id}&Replace={acc.server_id}&Delete={acc.server_id}"
    _interior(tree, desc, base, acl=own)
    _values(tree, desc, base, {"AppID": "w7", "ServerID": acc.server_id, "Name": acc.name,
                               "AAuthPref": AUTH_TYPES[acc.auth]})
    addr = desc.child("AppAddr")
    _interior(tree, addr, f"{base}/AppAddr")
    item = addr.child("x") if addr else None
    _interior(tree, item, f"{base}/AppAddr/1")
    _values(tree, item, f"{base}/AppAddr/1", {"Addr": acc.server_uri, "AddrType": "URI"}) if item else None
    auth = desc.child("AppAuth")
    _interior(tree, auth, f"{base}/AppAuth")
    entry = auth.child("x") if auth else None
    for level, user, secret in (("CLCRED", acc.client_user, acc.client_secret),
                                ("SRVCRED", acc.server_id, acc.server_secret)):
        uri = f"{base}/AppAuth/{level}"
        _interior(tree, entry, uri)
        if entry is not None:
            _values(tree, entry, uri, {"AAuthLevel": level, "AAuthType": AUTH_TYPES[acc.auth],
                                       "AAuthName": user, "AAuthSecret": secret,
                                       "AAuthData": decode_nonce(acc.nonce)})
    if acc.notification_secret and entry is not None:  # DM 1.3: notifications have their own credentials
        uri = f"{base}/AppAuth/NOTIFCRED"
        _interior(tree, entry, uri)
        _values(tree, entry, uri, {"AAuthLevel": "NOTIFCRED", "AAuthType": AUTH_TYPES["md5"],
                                   "AAuthName": acc.server_id, "AAuthSecret": acc.notification_secret,
                                   "AAuthData": b"\x00\x00\x00\x00"})
    ext = desc.child("Ext")
    _interior(tree, ext, f"{base}/Ext")
    _leaf(tree, None, f"{base}/Ext/Priority", acc.priority)
    if acc.server_auth != "dm":
        _leaf(tree, None, f"{base}/Ext/ServerAuth", acc.server_auth)
    if acc.strict:
        _leaf(tree, None, f"{base}/Ext/Strict", "true")


def _dm2_account(tree: Tree, desc: NodeDesc, acc: AccountSpec) -> None:
    base = f"{DM2_ROOT}/{acc.server_id}"
    own = f"Get={acc.server_id}&Replace={acc.server_id}"
    _interior(tree, desc, base, mo_type=DMACC_2, acl=own)
    _values(tree, desc, base, {"SrvID": acc.server_id, "SrvURI": acc.server_uri, "Name": acc.name})
    perm = desc.child("Perm")
    _interior(tree, perm, f"{base}/Perm")
    item = perm.child("x") if perm else None
    for i, moid in enumerate(acc.perms, 1):
        _interior(tree, item, f"{base}/Perm/{i}")
        if item is not None:
            _values(tree, item, f"{base}/Perm/{i}", {"MOID": moid})
    auth = desc.child("Auth")
    _interior(tree, auth, f"{base}/Auth")
    noti = auth.child("Noti") if auth else None
    _interior(tree, noti, f"{base}/Auth/Noti")
    if noti is not None:
        _values(tree, noti, f"{base}/Auth/Noti", {"Type": 1, "Data": acc.server_id.encode(),
                                                 "Secret": (acc.server_secret or acc.server_id).encode()})
    ext = desc.child("Ext")
    _interior(tree, ext, f"{base}/Ext")
    _leaf(tree, None, f"{base}/Ext/Priority", acc.priority)
    _leaf(tree, None, f"{base}/Ext/HTTPAuth/Type", acc.auth)
    _leaf(tree, None, f"{base}/Ext/HTTPAuth/Name", acc.client_user)
    _leaf(tree, None, f"{base}/Ext/HTTPAuth/Secret", acc.client_secret)
    if acc.ui_resume != "held":
        _leaf(tree, None, f"{base}/Ext/UIResume", acc.ui_resume)


def device_tree(profile: Profile, index: int, *, server: str) -> tuple[Identity, Tree]:
    """The tree of device number ``index`` of a profile, its identity and server URLs filled in."""
    identity = make_identity(profile.identity, index)
    tree = template_tree(profile).fork()
    values = {"dev_id": identity.dev_id, "serial": identity.serial, "mac": identity.mac,
              "uuid": identity.uuid, "imei": identity.imei or "", "server": server.rstrip("/"),
              "index": index}
    if tree.exists("./DevInfo/DevId"):
        tree.set_node("./DevInfo/DevId", identity.dev_id, permanent=True, access=frozenset({"Get"}))
    if tree.exists("./DM2/DevInfo/DevID"):
        tree.set_node("./DM2/DevInfo/DevID", identity.dev_id, permanent=True, access=frozenset({"Get"}))
    for acc in profile.accounts:
        if acc.protocol == "dm12":
            base = f"{DM1_ROOT}/{acc.server_id}"
            tree.replace(f"{base}/AppAddr/1/Addr", fill(acc.server_uri, values))
            tree.replace(f"{base}/AppAuth/CLCRED/AAuthName", fill(acc.client_user, values))
            if acc.notification_secret:
                tree.replace(f"{base}/AppAuth/NOTIFCRED/AAuthSecret", fill(acc.notification_secret, values))
        else:
            base = f"{DM2_ROOT}/{acc.server_id}"
            tree.replace(f"{base}/SrvURI", fill(acc.server_uri, values))
            tree.replace(f"{base}/Ext/HTTPAuth/Name", fill(acc.client_user, values))
    if profile.bootstrap is not None:  # DM 1.3: where a factory-fresh device gets its first account
        bootstrap.write_bootconfig(tree, fill(profile.bootstrap.server_uri, values),
                                   fill(profile.bootstrap.secret, values))
    for env in profile.environments:
        if env.own_identity:
            env_id = make_identity(profile.identity, index, environment=env.name)
            tree.replace(f"./OpEnv/{env.name}/ClientID", env_id.dev_id)
    for extra in profile.extra_mos:
        if extra.value and "{" in extra.value:
            tree.set_node(extra.path, fill(extra.value, values), format=extra.format, type=extra.type or MIME)
    return identity, tree


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")
