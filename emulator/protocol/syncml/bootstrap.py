"""Server-initiated bootstrap of a DM 1.x device: the message a server pushes, and its MAC.

Why its own codec: a bootstrap message reaches a device that has no account yet, so nothing of the
session's authentication applies; what protects it is a MAC over the exact bytes, carried in the
Content-Type (OMA-TS-DM_Security-V1_2 5.1.7.2, "Bootstrap via DM"):

    Content-Type: application/vnd.syncml.dm+wbxml; SEC=<method>; MAC=<hex HMAC-SHA1(key, body)>

The body is a standard OMA DM message, always WBXML ("cannot use XML for bootstrap"), that the
device takes in without answering (OMA-TS-DM_Bootstrap-V1_2 3.1.4). Here [P] it holds exactly one
Add whose one Item carries a TNDS document (Meta Type ``application/vnd.syncml.dmtnds+xml``, the
XML text in Data) describing one ``./DMAcc/<x>`` account, which the device applies with the same
all-or-nothing code as a client-initiated bootstrap (:mod:`emulator.mo.bootstrap`).

Methods: ``USERPIN`` (key: a PIN agreed out of band; here the device's factory bootstrap secret,
``./BootConfig/<x>/Secret``), ``NETWORKID`` and ``USERPIN_NETWORKID`` (key: a network shared secret
such as the IMSI, which an emulated device does not have: refused by name). Pure: no I/O;
:func:`take_pushed` is the device's whole decision, on its tree.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from emulator.errors import DecodeError, EmulatorError
from emulator.mo.accounts import read_accounts
from emulator.mo.bootstrap import apply_bootstrap, pending
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Add, Item, Message, Meta, SyncHdr
from emulator.protocol.syncml.message import build_message, parse_message
from emulator.tree import Tree

METHODS = ("USERPIN", "NETWORKID", "USERPIN_NETWORKID")
"""The SEC values DM Security 1.2 names; only USERPIN has a key on an emulated device."""
MAX_BOOTSTRAP_MESSAGE = 16 << 10
"""Largest bootstrap message taken (bytes): one account's TNDS is 2-3 KB; a push channel handing
over more is refused before any of it is decoded (README "DM 1.3")."""
_PARAM = re.compile(r";\s*([A-Za-z_]+)\s*=\s*\"?([^;\"]*)\"?")


class BootstrapRefused(EmulatorError):
    """A pushed bootstrap the device does not take: the message says why; nothing was applied."""

    status = 403


def mac(key: str, body: bytes) -> str:
    """HMAC-SHA1 of the message with the key, as lower-case hex (DM Security 1.2 5.1.7.2.1)."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha1).hexdigest()


def content_type(method: str, digest: str) -> str:
    """The Content-Type a bootstrap message travels with."""
    return f"{codes.MEDIA_DM_WBXML}; SEC={method}; MAC={digest}"


def build_bootstrap(tnds: bytes, *, dev_id: str, server_uri: str, key: str,
                    method: str = "USERPIN") -> tuple[bytes, str]:
    """(WBXML message, Content-Type) of a bootstrap carrying one TNDS document, MAC'd with ``key``."""
    if method not in METHODS:
        raise EmulatorError(f"unknown bootstrap security method {method!r} ({', '.join(METHODS)})", status=400)
    msg = Message(header=SyncHdr(session_id="0", msg_id="1", target=dev_id, source=server_uri, ver_proto="DM/1.3"),
                  commands=[Add(cmd_id="1", items=[Item(target=".", meta=Meta(type=codes.MEDIA_TNDS_XML, format="xml"),
                                        data=tnds.decode("utf-8"))])], final=True)
    body = build_message(msg, wbxml=True)
    return body, content_type(method, mac(key, body))


def security(ctype: str) -> tuple[str, str]:
    """(SEC, MAC) of a bootstrap Content-Type; BootstrapRefused when it is not one."""
    if ctype.split(";", 1)[0].strip().lower() != codes.MEDIA_DM_WBXML:
        raise BootstrapRefused(f"a bootstrap message is {codes.MEDIA_DM_WBXML} (never XML), not {ctype[:80]!r}")
    params = {k.upper(): v.strip() for k, v in _PARAM.findall(ctype)}
    method, digest = params.get("SEC", ""), params.get("MAC", "").lower()
    if not method or not digest:
        raise BootstrapRefused("a bootstrap message must carry SEC and MAC in its Content-Type")
    if not re.fullmatch(r"[0-9a-f]{40}", digest):
        raise BootstrapRefused("the bootstrap MAC is not 40 hex digits (HMAC-SHA1)")
    return method.upper(), digest


def open_bootstrap(body: bytes, ctype: str, *, pin: str) -> bytes:
    """The TNDS document of a pushed bootstrap, once its MAC verifies with ``pin`` (USERPIN).

    BootstrapRefused for anything else: too large, not WBXML, no or a wrong MAC, a method without a
    key here, or a message that is not exactly one Add of one TNDS item. Nothing is decoded before
    the MAC verifies."""
    if len(body) > MAX_BOOTSTRAP_MESSAGE:
        raise BootstrapRefused(f"bootstrap message of {len(body)} bytes exceeds the limit of {MAX_BOOTSTRAP_MESSAGE}")
    method, digest = security(ctype)
    if method in ("NETWORKID", "USERPIN_NETWORKID"):
        raise BootstrapRefused(f"SEC={method} needs a network shared secret (IMSI/ESN) this device does not have; "
                               "it takes USERPIN")
    if method != "USERPIN":
        raise BootstrapRefused(f"unknown bootstrap security method SEC={method[:30]!r}")
    if not pin or not hmac.compare_digest(mac(pin, body), digest):
        raise BootstrapRefused("the bootstrap MAC does not verify with the device's PIN")
    try:
        msg = parse_message(body, codes.MEDIA_DM_WBXML, max_size=MAX_BOOTSTRAP_MESSAGE)
    except DecodeError as exc:
        raise BootstrapRefused(f"malformed bootstrap message: {exc}") from None
    if len(msg.commands) != 1 or not isinstance(msg.commands[0], Add) or len(msg.commands[0].items) != 1:
        raise BootstrapRefused("a bootstrap message holds exactly one Add of one TNDS item")
    item = msg.commands[0].items[0]
    meta = item.meta or msg.commands[0].meta
    if meta is None or meta.type != codes.MEDIA_TNDS_XML or not item.data:
        raise BootstrapRefused(f"the bootstrap Add must carry {codes.MEDIA_TNDS_XML} data")
    return item.data if isinstance(item.data, bytes) else item.data.encode("utf-8")


def take_pushed(tree: Tree, raw: bytes, content_type: str, *, dm_version: str,
                acl_scope: Iterable[str] = ()) -> str:
    """Take a server-initiated bootstrap into a device's tree: the ServerID of the account it created.

    Only a factory-fresh DM 1.3 device (no account of either protocol) with a pending BootConfig
    entry takes one, once its MAC verifies with the entry's secret (:func:`open_bootstrap`); then
    as :func:`emulator.mo.bootstrap.apply_bootstrap`. EmulatorError with the reason otherwise;
    nothing changes."""
    if dm_version != "1.3":
        raise BootstrapRefused("a DM 1.2 device takes no server-initiated bootstrap (DM 1.3)")
    if read_accounts(tree):
        raise BootstrapRefused("the device is not factory-fresh: it has a DM account already")
    entry = pending(tree)
    if entry is None:
        raise BootstrapRefused("the device has no pending BootConfig entry to bootstrap")
    return apply_bootstrap(tree, entry, open_bootstrap(raw, content_type, pin=entry.secret), acl_scope)
