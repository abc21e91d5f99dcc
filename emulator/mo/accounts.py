"""Management authorities as the engines see them, read from and written back to the DMAcc objects.

The tree is the truth (a server may change an account with Replace); :class:`Account` is a snapshot
an engine takes at session start, and nonces learnt during the session go back with
:func:`store_nonces`. DM 1.x accounts live in ``./DMAcc/<ServerID>`` (1.2 layout, CLCRED/SRVCRED
AppAuth entries, as Android does); DM 2.0 accounts in ``./DM2/DMAcc/<SrvID>`` (DMAcc 1.2 for DM 2.0),
whose HTTP credentials sit under ``Ext/HTTPAuth`` because the DM 2.0 layout has no node for them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, TypedDict

from emulator.errors import EmulatorError, UnsupportedError
from emulator.protocol.values import DmProtocol
from emulator.tree import Tree
from emulator.tree import uri as uris
from emulator.tree.acl import COMMANDS, Acl
from emulator.tree.node import Node, descend
from emulator.tree.tree import Value

DMACC_1 = "urn:oma:mo:oma-dm-dmacc:1.0"
"""The MOID of DM 1.x accounts (./DMAcc/<ServerID>)."""
DMACC_2 = "urn:oma:mo:oma-dm-dmacc:1.2"
"""The MOID of DM 2.0 accounts (./DM2/DMAcc/<SrvID>)."""
DM1_ROOT = "./DMAcc"
DM2_ROOT = "./DM2/DMAcc"
AUTH_TYPES = {"basic": "BASIC", "md5": "DIGEST", "hmac": "HMAC", "none": "TRANSPORT", "sha256": "SHA256"}
"""DM 1.x scheme -> AAuthType. ``SHA256`` (DM 1.3's auth-SHA256) is the project's spelling [P]."""
AUTH_SCHEMES = {v: k for k, v in AUTH_TYPES.items()}
AUTH_SCHEMES_DM1 = tuple(AUTH_TYPES)
AUTH_SCHEMES_DM2 = ("basic", "digest", "none")
"""What the DM 2.0 client can send (HTTP Basic, HTTP Digest, or nothing but its TLS client
certificate); md5/hmac are DM 1.x SyncML schemes."""
SERVER_AUTH_POLICIES = ("dm", "transport", "none")
"""How a DM 1.x server must prove itself (PROTOCOL.md 2.9: at the DM layer or the transport):
``dm`` DM-layer credentials as the account's scheme asks; ``transport`` a verified TLS server
certificate is enough (DM-layer credentials, if sent, are still checked); ``none`` accepted
unauthenticated, raised as a warning like TLS verification off."""
UI_RESUME_STYLES = ("held", "client")
"""DM 2.0, after a SHOW's page flow: the server holds its answer to the Package#3 (PROTOCOL.md 1.19
item 5), or the client resumes the session itself once the page ends (seeds/004 B.3)."""


@dataclass(frozen=True, slots=True)
class Account:
    """One DM server the device knows. Nonces are raw bytes (AAuthData holds them base64)."""

    server_id: str
    protocol: DmProtocol
    server_uri: str
    name: str = ""
    auth: str = "md5"  # basic, md5, hmac, sha256 (DM 1.3), none (DM 2.0: basic, digest, none)
    client_user: str = ""
    client_secret: str = ""
    client_nonce: bytes = b""  # the nonce the server gave us, for our next credentials
    server_user: str = ""
    server_secret: str = ""
    server_nonce: bytes = b""  # the nonce we gave the server, for its credentials to us
    perms: tuple[str, ...] = ()  # DM 2.0: MOIDs this server may manage
    noti_secret: bytes = b""  # DM 2.0 notification SHA256 secret / auth data
    noti_data: bytes = b""
    priority: int = 0
    path: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # HTTPS settings from <account>/Ext/TLS (both protocols): CAFile, Verify, ClientCert, ClientKey,
    # ClientCertPassword. Verify off must be explicit ("false"); anything else keeps it on.
    ca_file: str = ""
    verify: bool = True
    client_cert: str = ""
    client_key: str = ""
    client_cert_password: str = field(default="", repr=False)
    server_auth: str = "dm"  # SERVER_AUTH_POLICIES, from <account>/Ext/ServerAuth
    ui_resume: str = "held"  # UI_RESUME_STYLES, from <account>/Ext/UIResume (DM 2.0)
    strict: bool = False  # from <account>/Ext/Strict (DM 1.x): server deviations fail the session
    # DM 1.3 separate notification credentials, from <account>/AppAuth/NOTIFCRED ('': notifications
    # are checked with the server's credentials, as DM 1.2 does)
    notification_user: str = ""
    notification_secret: str = field(default="", repr=False)
    notification_nonce: bytes = b""


_FIELDS = tuple(f.name for f in fields(Account))
_all_fields = attrgetter(*_FIELDS)
_FIELD_AT = {name: i for i, name in enumerate(_FIELDS)}


def with_field(account: Account, name: str, value: object) -> Account:
    """``dataclasses.replace(account, <name>=value)`` without its walk over the fields' metadata: a
    device patches the nonces a DM 1.2 session kept into its accounts after every such session."""
    values: list[Any] = list(_all_fields(account))
    values[_FIELD_AT[name]] = value
    return Account(*values)


def decode_nonce(value: str | bytes | None) -> bytes:
    """Nonces as bytes: stored raw (Format bin) or as base64 text (profiles, Android's AAuthData)."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return value.encode("utf-8")  # tolerate a nonce stored as plain text


def _text(tree: Tree, uri: str) -> str:
    v = tree.value(uri, "")
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else (v or "")


def pick_account(accounts: list[Account], server_id: str | None, protocol: str | None, owner: str) -> Account:
    """The account of ``server_id`` among ``accounts`` (None: the first, i.e. highest-priority, one of
    ``protocol``); EmulatorError (404) naming ``owner`` ("device X", "environment E of X") if none."""
    for acc in accounts:
        if (server_id is None or acc.server_id == server_id) and (protocol is None or acc.protocol == protocol):
            return acc
    what = f"server {server_id!r}" if server_id else f"a {protocol or 'DM'} server"
    raise EmulatorError(f"{owner} has no account for {what}", status=404)


def read_accounts(tree: Tree) -> list[Account]:
    """Every account of both protocols, highest priority first.

    Each account's node is found once and its leaves read below it (:func:`descend`): a device
    reads its accounts at its first session, a few dozen leaves, and a lookup from the root per
    leaf was most of a fresh device's first session in the tree."""
    out: list[Account] = []
    for root, read in ((DM1_ROOT, _read_dm1), (DM2_ROOT, _read_dm2)):
        top = tree.lookup(root)
        if top is not None and top.children is not None:
            for name, node in top.children.items():
                out.append(read(node, f"{root}/{uris.join((name,))[2:]}"))
    return sorted(out, key=lambda a: -a.priority)


def _value(node: Node, *names: str) -> Value:
    found = descend(node, names)
    return None if found is None else found.value


def _leaf(node: Node, *names: str) -> str:
    """The text of the leaf at ``names`` below ``node``; "" when it is missing or interior."""
    v = _value(node, *names)
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else (v or "")


def find_account(tree: Tree, server_id: str, protocol: str | None = None) -> Account | None:
    for acc in read_accounts(tree):
        if acc.server_id == server_id and (protocol is None or acc.protocol == protocol):
            return acc
    return None


TLS_LEAVES = {"ca_file": "CAFile", "client_cert": "ClientCert", "client_key": "ClientKey",
              "client_cert_password": "ClientCertPassword"}


class _TlsFields(TypedDict, total=False):
    """The Account fields an ``Ext/TLS`` node gives."""

    ca_file: str
    client_cert: str
    client_key: str
    client_cert_password: str
    verify: bool


def _read_tls(account: Node) -> _TlsFields:
    """The account's ``Ext/TLS`` leaves as Account fields (none when the account has no TLS node)."""
    tls = descend(account, ("Ext", "TLS"))
    if tls is None:
        return {}
    leaf = {field: _leaf(tls, name) for field, name in TLS_LEAVES.items()}
    return _TlsFields(ca_file=leaf["ca_file"], client_cert=leaf["client_cert"], client_key=leaf["client_key"],
                      client_cert_password=leaf["client_cert_password"],
                      verify=_leaf(tls, "Verify").strip().lower() not in ("false", "0", "no", "off"))


def store_tls(tree: Tree, account: Account, *, ca_file: str | None = None, verify: bool | None = None,
              client_cert: str | None = None, client_key: str | None = None,
              client_cert_password: str | None = None) -> None:
    """Write an account's TLS settings (only those given) to its ``Ext/TLS`` nodes."""
    values = {"CAFile": ca_file, "ClientCert": client_cert, "ClientKey": client_key,
              "ClientCertPassword": client_cert_password,
              "Verify": None if verify is None else ("true" if verify else "false")}
    for leaf, value in values.items():
        if value is not None:
            tree.set_node(f"{account.path}/Ext/TLS/{leaf}", value, format="chr", type="text/plain")


def _read_dm1(node: Node, base: str) -> Account:
    def auth(level: str, leaf: str) -> str:
        return _leaf(node, "AppAuth", level, leaf)

    addr = descend(node, ("AppAddr",))
    server_uri = ""
    if addr is not None and addr.children:
        server_uri = _leaf(next(iter(addr.children.values())), "Addr")
    return Account(
        server_id=_leaf(node, "ServerID"),
        protocol="dm12",
        server_uri=server_uri,
        name=_leaf(node, "Name"),
        auth=AUTH_SCHEMES.get(auth("CLCRED", "AAuthType") or _leaf(node, "AAuthPref"), "md5"),
        client_user=auth("CLCRED", "AAuthName"),
        client_secret=auth("CLCRED", "AAuthSecret"),
        client_nonce=decode_nonce(_value(node, "AppAuth", "CLCRED", "AAuthData")),
        server_user=auth("SRVCRED", "AAuthName"),
        server_secret=auth("SRVCRED", "AAuthSecret"),
        server_nonce=decode_nonce(_value(node, "AppAuth", "SRVCRED", "AAuthData")),
        notification_user=auth("NOTIFCRED", "AAuthName"),
        notification_secret=auth("NOTIFCRED", "AAuthSecret"),
        notification_nonce=decode_nonce(_value(node, "AppAuth", "NOTIFCRED", "AAuthData")),
        priority=int(_leaf(node, "Ext", "Priority") or 0),
        path=base,
        server_auth=_choice(_leaf(node, "Ext", "ServerAuth"), SERVER_AUTH_POLICIES),
        strict=_leaf(node, "Ext", "Strict").strip().lower() in ("true", "1", "yes"),
        **_read_tls(node),
    )


def _choice(value: str, allowed: tuple[str, ...]) -> str:
    """A setting read from the tree; an empty or unknown value (a server may Replace anything) is the
    safe default, the first of ``allowed``."""
    value = value.strip().lower()
    return value if value in allowed else allowed[0]


def _read_dm2(node: Node, base: str) -> Account:
    perm = descend(node, ("Perm",))
    perms = [_leaf(p, "MOID") for p in perm.children.values()] if perm is not None and perm.children else []
    return Account(
        server_id=_leaf(node, "SrvID"),
        protocol="dm2",
        server_uri=_leaf(node, "SrvURI"),
        name=_leaf(node, "Name"),
        auth=_leaf(node, "Ext", "HTTPAuth", "Type") or "basic",
        client_user=_leaf(node, "Ext", "HTTPAuth", "Name"),
        client_secret=_leaf(node, "Ext", "HTTPAuth", "Secret"),
        perms=tuple(p for p in perms if p),
        noti_secret=decode_nonce(_value(node, "Auth", "Noti", "Secret")),
        noti_data=decode_nonce(_value(node, "Auth", "Noti", "Data")),
        priority=int(_leaf(node, "Ext", "Priority") or 0),
        path=base,
        ui_resume=_choice(_leaf(node, "Ext", "UIResume"), UI_RESUME_STYLES),
        **_read_tls(node),
    )


def store_nonces(tree: Tree, account: Account, *, client_nonce: bytes | None = None,
                 server_nonce: bytes | None = None) -> None:
    """Keep the nonces a session learnt, so the next session (or a restart) uses them."""
    if account.protocol != "dm12":
        return
    if client_nonce is not None:
        tree.set_node(f"{account.path}/AppAuth/CLCRED/AAuthData", client_nonce, format="bin",
                      type="application/octet-stream")
    if server_nonce is not None:
        tree.set_node(f"{account.path}/AppAuth/SRVCRED/AAuthData", server_nonce, format="bin",
                      type="application/octet-stream")


def configure_account(
    tree: Tree,
    account: Account,
    *,
    server_uri: str | None = None,
    server_id: str | None = None,
    auth: str | None = None,
    client_user: str | None = None,
    client_secret: str | None = None,
    server_secret: str | None = None,
    ca_file: str | None = None,
    verify: bool | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    client_cert_password: str | None = None,
    server_auth: str | None = None,
    ui_resume: str | None = None,
) -> Account:
    """Point an account at another server, writing only the settings given; returns it read back.

    Written through the tree as the device itself, so the change shows up (and is stored) like any
    other, and a server reading DMAcc sees it. One transaction: a refused value changes nothing.
    A new ``server_id`` also takes over the old one's ACL grants everywhere in the tree (and the
    DM 1.x SRVCRED name when it was the old id): otherwise the new server may do nothing at all.
    Bad values are the user's: EmulatorError (400), UnsupportedError for a scheme the protocol lacks.
    """
    if server_uri is not None:
        _check_server_uri(server_uri)
    if auth is not None:
        allowed = AUTH_SCHEMES_DM2 if account.protocol == "dm2" else AUTH_SCHEMES_DM1
        if auth not in allowed:
            raise UnsupportedError(f"{account.protocol} accounts take auth {' or '.join(allowed)}, not {auth!r}")
    if server_auth is not None and (account.protocol != "dm12" or server_auth not in SERVER_AUTH_POLICIES):
        raise UnsupportedError(f"server authentication {server_auth!r}: dm12 accounts take "
                               f"{', '.join(SERVER_AUTH_POLICIES)}; a DM 2.0 server is authenticated by TLS")
    if ui_resume is not None and (account.protocol != "dm2" or ui_resume not in UI_RESUME_STYLES):
        raise UnsupportedError(f"UI resumption {ui_resume!r}: dm2 accounts take {', '.join(UI_RESUME_STYLES)}")
    if server_id is not None:
        server_id = server_id.strip()
        if not server_id or any(ch in server_id for ch in "&+="):
            raise EmulatorError(f"server id {server_id!r} is empty or holds a character ACLs reserve (& + =)",
                                status=400)
        other = find_account(tree, server_id, account.protocol)
        if other is not None and other.path != account.path:
            raise EmulatorError(f"the device already has a {account.protocol} account for {server_id!r} "
                                f"({other.path})", status=418)
    base = account.path
    with tree.transaction():
        if account.protocol == "dm12":
            _configure_dm1(tree, account, server_uri=server_uri, server_id=server_id, auth=auth,
                           client_user=client_user, client_secret=client_secret, server_secret=server_secret)
        else:
            for leaf, value in (("SrvURI", server_uri), ("SrvID", server_id), ("Ext/HTTPAuth/Type", auth),
                                ("Ext/HTTPAuth/Name", client_user), ("Ext/HTTPAuth/Secret", client_secret)):
                _put(tree, f"{base}/{leaf}", value)
        if server_id is not None and server_id != account.server_id:
            _move_grants(tree, account.server_id, server_id)
        _put(tree, f"{base}/Ext/ServerAuth", server_auth)
        _put(tree, f"{base}/Ext/UIResume", ui_resume)
        store_tls(tree, account, ca_file=ca_file, verify=verify, client_cert=client_cert, client_key=client_key,
                  client_cert_password=client_cert_password)
    node = tree.lookup(base) or Node(None, "node", "", children={})  # (gone: read back as empty, as before)
    return _read_dm1(node, base) if account.protocol == "dm12" else _read_dm2(node, base)


def _configure_dm1(tree: Tree, account: Account, *, server_uri: str | None, server_id: str | None,
                   auth: str | None, client_user: str | None, client_secret: str | None,
                   server_secret: str | None) -> None:
    base = account.path
    if server_uri is not None:
        addr_root = f"{base}/AppAddr"
        first = tree.children(addr_root) if tree.exists(addr_root) else []
        item = f"{addr_root}/{first[0] if first else '1'}"
        _put(tree, f"{item}/Addr", server_uri)
        _put(tree, f"{item}/AddrType", "URI")
    if server_id is not None:
        _put(tree, f"{base}/ServerID", server_id)
        if _text(tree, f"{base}/AppAuth/SRVCRED/AAuthName") in ("", account.server_id):
            _put(tree, f"{base}/AppAuth/SRVCRED/AAuthName", server_id)
    if auth is not None:
        _put(tree, f"{base}/AAuthPref", AUTH_TYPES[auth])
        for level in ("CLCRED", "SRVCRED"):
            _put(tree, f"{base}/AppAuth/{level}/AAuthLevel", level)
            _put(tree, f"{base}/AppAuth/{level}/AAuthType", AUTH_TYPES[auth])
    _put(tree, f"{base}/AppAuth/CLCRED/AAuthName", client_user)
    _put(tree, f"{base}/AppAuth/CLCRED/AAuthSecret", client_secret)
    _put(tree, f"{base}/AppAuth/SRVCRED/AAuthSecret", server_secret)


def _put(tree: Tree, uri: str, value: str | None) -> None:
    """Replace a leaf keeping its format and flags (DDF-built), or create it as chr when missing."""
    if value is None:
        return
    if tree.exists(uri):
        tree.replace(uri, value)
    else:
        tree.set_node(uri, value, format="chr", type="text/plain")


def _move_grants(tree: Tree, old: str, new: str) -> None:
    """Every ACL entry naming ``old`` names ``new`` instead."""
    for info in list(tree.walk(".")):
        if old not in info.acl:
            continue
        acl = Acl.parse(info.acl)
        for cmd in COMMANDS:
            ids = acl.servers(cmd)
            if old in ids:
                acl = acl.with_servers(cmd, (ids - {old}) | {new})
        if acl.text != info.acl:
            tree.replace_prop(info.path, "ACL", acl.text)


def _check_server_uri(uri: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(uri)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        ok = False
    if not ok or any(ch.isspace() for ch in uri):
        raise EmulatorError(f"server URL {uri!r} is not an http:// or https:// URL with a host", status=400)


def owning_account(tree: Tree, path: str | tuple[str, ...], accounts: list[Account]) -> Account | None:
    """The account of the server that owns a node (DM-HLF-018: route a session to the server it is
    about): the highest-priority one named (not ``*``) for Replace on the node's effective ACL, else
    for Exec, else for Get; None when the node names nobody in particular or does not exist."""
    segs = uris.split(path) if isinstance(path, str) else path
    acl = None
    for depth in range(len(segs), -1, -1):
        prefix = segs[:depth]
        if tree.exists(prefix):
            text = tree.info(prefix).acl
            if text:
                acl = Acl.parse(text)
                break
    if acl is None:
        return None
    for command in ("Replace", "Exec", "Get"):
        named = acl.servers(command) - {"*"}
        for account in accounts:
            if account.server_id in named:
                return account
    return None


def account_for_url(accounts: list[Account], url: str) -> Account | None:
    """The highest-priority account whose server URI has the origin of ``url`` (scheme, host, port)."""
    from urllib.parse import urlsplit

    def origin(u: str) -> tuple[str, str] | None:
        try:
            parts = urlsplit(u)
        except ValueError:
            return None
        return (parts.scheme.lower(), parts.netloc.lower()) if parts.scheme and parts.netloc else None

    want = origin(url)
    return next((a for a in accounts if want is not None and origin(a.server_uri) == want), None)
