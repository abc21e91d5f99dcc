"""Management authorities as the engines see them, read from and written back to the DMAcc objects.

The tree is the truth (a server may change an account with Replace); :class:`Account` is a snapshot
an engine takes at session start, and nonces learnt during the session go back with
:func:`store_nonces`. DM 1.x accounts live in ``./DMAcc/<ServerID>`` (1.2 layout, CLCRED/SRVCRED
AppAuth entries, as Android does); DM 2.0 accounts in ``./DM2/DMAcc/<SrvID>`` (DMAcc 1.2 for DM 2.0),
whose HTTP credentials sit under ``Ext/HTTPAuth`` because the DM 2.0 layout has no node for them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from emulator.tree import Tree
from emulator.tree import uri as uris

DM1_ROOT = "./DMAcc"
DM2_ROOT = "./DM2/DMAcc"
AUTH_TYPES = {"basic": "BASIC", "md5": "DIGEST", "hmac": "HMAC", "none": "TRANSPORT"}
AUTH_SCHEMES = {v: k for k, v in AUTH_TYPES.items()}


@dataclass(frozen=True, slots=True)
class Account:
    """One DM server the device knows. Nonces are raw bytes (AAuthData holds them base64)."""

    server_id: str
    protocol: str  # dm12 or dm2
    server_uri: str
    name: str = ""
    auth: str = "md5"  # basic, md5, hmac, none
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


def read_accounts(tree: Tree) -> list[Account]:
    """Every account of both protocols, highest priority first."""
    out: list[Account] = []
    if tree.exists(DM1_ROOT):
        for name in tree.children(DM1_ROOT):
            out.append(_read_dm1(tree, f"{DM1_ROOT}/{uris.join((name,))[2:]}"))
    if tree.exists(DM2_ROOT):
        for name in tree.children(DM2_ROOT):
            out.append(_read_dm2(tree, f"{DM2_ROOT}/{uris.join((name,))[2:]}"))
    return sorted(out, key=lambda a: -a.priority)


def find_account(tree: Tree, server_id: str, protocol: str | None = None) -> Account | None:
    for acc in read_accounts(tree):
        if acc.server_id == server_id and (protocol is None or acc.protocol == protocol):
            return acc
    return None


TLS_LEAVES = {"ca_file": "CAFile", "client_cert": "ClientCert", "client_key": "ClientKey",
              "client_cert_password": "ClientCertPassword"}


def _read_tls(tree: Tree, base: str) -> dict[str, object]:
    """The account's ``Ext/TLS`` leaves as Account fields (none when the account has no TLS node)."""
    tls = f"{base}/Ext/TLS"
    if not tree.exists(tls):
        return {}
    out: dict[str, object] = {field: _text(tree, f"{tls}/{leaf}") for field, leaf in TLS_LEAVES.items()}
    out["verify"] = _text(tree, f"{tls}/Verify").strip().lower() not in ("false", "0", "no", "off")
    return out


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


def _read_dm1(tree: Tree, base: str) -> Account:
    def auth(level: str, leaf: str) -> str:
        return _text(tree, f"{base}/AppAuth/{level}/{leaf}")

    addr_root = f"{base}/AppAddr"
    server_uri = ""
    if tree.exists(addr_root):
        first = tree.children(addr_root)
        if first:
            server_uri = _text(tree, f"{addr_root}/{first[0]}/Addr")
    return Account(
        server_id=_text(tree, f"{base}/ServerID"),
        protocol="dm12",
        server_uri=server_uri,
        name=_text(tree, f"{base}/Name"),
        auth=AUTH_SCHEMES.get(auth("CLCRED", "AAuthType") or _text(tree, f"{base}/AAuthPref"), "md5"),
        client_user=auth("CLCRED", "AAuthName"),
        client_secret=auth("CLCRED", "AAuthSecret"),
        client_nonce=decode_nonce(tree.value(f"{base}/AppAuth/CLCRED/AAuthData")),
        server_user=auth("SRVCRED", "AAuthName"),
        server_secret=auth("SRVCRED", "AAuthSecret"),
        server_nonce=decode_nonce(tree.value(f"{base}/AppAuth/SRVCRED/AAuthData")),
        priority=int(_text(tree, f"{base}/Ext/Priority") or 0),
        path=base,
        **_read_tls(tree, base),  # type: ignore[arg-type]
    )


def _read_dm2(tree: Tree, base: str) -> Account:
    perms: list[str] = []
    if tree.exists(f"{base}/Perm"):
        perms = [_text(tree, f"{base}/Perm/{p}/MOID") for p in tree.children(f"{base}/Perm")]
    return Account(
        server_id=_text(tree, f"{base}/SrvID"),
        protocol="dm2",
        server_uri=_text(tree, f"{base}/SrvURI"),
        name=_text(tree, f"{base}/Name"),
        auth=_text(tree, f"{base}/Ext/HTTPAuth/Type") or "basic",
        client_user=_text(tree, f"{base}/Ext/HTTPAuth/Name"),
        client_secret=_text(tree, f"{base}/Ext/HTTPAuth/Secret"),
        perms=tuple(p for p in perms if p),
        noti_secret=decode_nonce(tree.value(f"{base}/Auth/Noti/Secret")),
        noti_data=decode_nonce(tree.value(f"{base}/Auth/Noti/Data")),
        priority=int(_text(tree, f"{base}/Ext/Priority") or 0),
        path=base,
        **_read_tls(tree, base),  # type: ignore[arg-type]
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
