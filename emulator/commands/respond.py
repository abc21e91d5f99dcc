"""`dm-emulator respond --profile NAME --message FILE [--wbxml]`: one server package in, the answer out.

A fresh device of the profile answers the package as if it were in the middle of a session with the
server that sent it: the message's Target becomes the device's identity (./DevInfo/DevId), its Source
becomes a DM 1.2 server the device knows and trusts (a DMAcc entry, granted by the ACLs what the
profile's own DM 1.2 server is granted, plus every command at the root: acl_scope "."), and no
Package 1 is sent. The response package is written to standard output (XML, or WBXML bytes with
--wbxml); only its first message when it would span several.

User interaction is answered by the headless policy (useralerts.default_answer): the alert's DR
default when it has one, else display acknowledged, confirm "yes", empty text, the first choice.
A launchBrowserToURI Exec is answered as if the web flow ended well.

A DM 1.3 profile (``dm_version = "1.3"``) answers as a DM 1.3 device: VerProto DM/1.3, its
DMFeatures node readable; a DM 1.2 profile refuses a DM/1.3 package whole (513, every command 215).

A message given with a bootstrap ``--content-type`` (``application/vnd.syncml.dm+wbxml; SEC=..;
MAC=..``, DM 1.3 server-initiated bootstrap) is taken as a factory-fresh device of the profile takes
a pushed bootstrap (:func:`emulator.protocol.syncml.bootstrap.take_pushed`): refused with the reason on stderr
(exit 1), or taken, and then the Package 1 the device opens its first session with is printed.

A DM 1.3 sessionless command message (:mod:`emulator.protocol.syncml.sessionless`, a ``DMSL`` file)
is checked as the device checks it (signed by one of the profile's DM 1.x servers) and run; the
report the device would sign and POST to the server's reporting URI is written out (its SyncML
message, XML). The expiry and replay checks need a clock and a history, so ``respond`` skips them. A
DM 1.2 profile refuses the message (exit 1).

A DM 2.0 JSON Package#2 is answered for the profile's highest-priority DM 2.0 account, with the
network-free rules of emulator.protocol.dm2.respond (HGET/HPUT/HPOST answer 500, a SHOW is not
opened, an EXEC result alert is not sent); what could not happen is said on stderr, one line each.
"""

from __future__ import annotations

import argparse
import sys

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError, FileFormatError
from emulator.mo.accounts import DM1_ROOT, Account, read_accounts
from emulator.protocol.actions import AskUser, OpenBrowser, SendMessage, SessionDone, UserAnswer
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.client import SyncMLClient
from emulator.protocol.syncml.message import build_message, parse_message
from emulator.protocol.syncml.useralerts import default_answer
from emulator.tree import Acl, Tree
from emulator.tree import uri as uris
from emulator.tree.acl import COMMANDS

RESPOND_SERVER = "http://127.0.0.1"


def grant_server(tree: Tree, server_id: str, *, server_uri: str = "") -> Account:
    """Make `server_id` a trusted DM 1.2 server of the device, as a DMAcc entry with acl_scope "." would.

    Every ACL that names one of the device's DM 1.2 servers names this one too (other servers' own
    DMAcc entries excepted), the root grants it every command, and ./DMAcc gets an entry for it.
    """
    known = {a.server_id for a in read_accounts(tree) if a.protocol == "dm12"}
    others = {uris.split(a.path) for a in read_accounts(tree) if a.protocol == "dm12" and a.path}
    for info in list(tree.walk(".")):
        segs = uris.split(info.path)
        if not info.acl or any(segs[: len(o)] == o for o in others):
            continue
        acl = Acl.parse(info.acl)
        for cmd in COMMANDS:
            ids = acl.servers(cmd)
            if ids & known and "*" not in ids:
                acl = acl.with_servers(cmd, ids | {server_id})
        if acl.text != info.acl:
            tree.replace_prop(segs, "ACL", acl.text)
    root = Acl.parse(tree.get_prop(".", "ACL"))
    for cmd in COMMANDS:
        ids = root.servers(cmd)
        if "*" not in ids:
            root = root.with_servers(cmd, ids | {server_id})
    tree.replace_prop(".", "ACL", root.text)
    name = "".join(c if c.isalnum() or c in "-._" else "_" for c in server_id)[:32] or "server"
    base = uris.split(DM1_ROOT) + (name,)
    own = f"Delete={server_id}&Get={server_id}&Replace={server_id}"
    tree.set_node(base, format="node", acl=own)
    for leaf, value in (("AppID", "w7"), ("ServerID", server_id), ("Name", server_id), ("AAuthPref", "TRANSPORT")):
        tree.set_node(base + (leaf,), value)
    tree.set_node(base + ("AppAddr",), format="node")
    tree.set_node(base + ("AppAddr", "1"), format="node")
    tree.set_node(base + ("AppAddr", "1", "Addr"), server_uri)
    return Account(server_id=server_id, protocol="dm12", server_uri=server_uri, name=server_id, auth="none",
                   path=uris.join(base))


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise EmulatorError(f"cannot read the message {path}: {exc.strerror or exc}", status=400) from exc


def respond_dm12(device: VirtualDevice, data: bytes, media: str, *, wbxml: bool = False) -> tuple[bytes | None, SessionDone | None]:
    """The device's answer to one SyncML package, and how the engine ended if it did not answer."""
    hdr = parse_message(data, media).header  # DecodeError: the message is unusable
    if hdr.target:
        device.tree.set_node("./DevInfo/DevId", hdr.target, permanent=True, access=frozenset({"Get"}))
        device.id = hdr.target
    server_id = hdr.source or "respond-server"
    account = grant_server(device.tree, server_id, server_uri=hdr.source or hdr.resp_uri or "")
    p = device.profile
    engine = SyncMLClient.respond_to(device.tree, account, data, media, dev_id=device.id,
                                     max_msg_size=p.max_msg_size, max_obj_size=p.max_obj_size, wbxml=wbxml,
                                     dm_version=p.dm_version)
    while (action := engine.next_action()) is not None:
        if isinstance(action, SendMessage):
            return action.body, None
        if isinstance(action, AskUser):
            engine.answer_user(action.request_id, default_answer(action))
        elif isinstance(action, OpenBrowser):
            engine.answer_user(action.request_id, UserAnswer("ok"))
        elif isinstance(action, SessionDone):
            return None, action
    return None, engine.outcome


_UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32 BE"), (b"\xff\xfe\x00\x00", "UTF-32 LE"),
               (b"\xfe\xff", "UTF-16 BE"), (b"\xff\xfe", "UTF-16 LE"))


def message_head(data: bytes, source: str) -> bytes:
    """The first significant byte of a message file: ``<`` XML, ``{``/``[`` JSON, anything else WBXML.

    A UTF-8 byte order mark is skipped (editors write one; without this the file read as WBXML).
    UTF-16/32 text is refused by name: DM messages are UTF-8, and a guess would decode garbage.
    """
    for bom, name in _OTHER_BOMS:
        if data.startswith(bom):
            raise FileFormatError(source, 1, f"the message is {name} text (byte order mark "
                                             f"{bom.hex(' ').upper()}); DM messages are UTF-8: convert it, "
                                             f"e.g. iconv -f {name.replace(' ', '')} -t UTF-8")
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    return data.lstrip()[:1]


def respond_dm2(device: VirtualDevice, data: bytes, label: str) -> int:
    """Print the Package#3 for one DM 2.0 Package#2; exit 1 when the profile speaks no DM 2.0."""
    from emulator.protocol.dm2.respond import respond_detail

    if "dm2" not in device.profile.protocols:
        print(f"dm-emulator respond: {label}: profile {device.profile.name!r} does not speak DM 2.0 "
              f"(protocols: {', '.join(device.profile.protocols)})", file=sys.stderr)
        return 1
    account = device.account(protocol="dm2")
    try:
        result = respond_detail(device.tree, account, data, dev_id=device.id,
                                has_browser=device.profile.ui.browser)
    except EmulatorError as exc:  # the engine names the URL it would have read it from: name the file
        reason = str(exc).replace(f" from {account.server_uri}", "")
        print(f"dm-emulator respond: {label}: {reason}", file=sys.stderr)
        return 1
    for note in result.notes:
        print(f"dm-emulator respond: note: {note}", file=sys.stderr)
    if result.ended:
        print("dm-emulator respond: nothing to answer (the package ends the session)", file=sys.stderr)
        return 0
    sys.stdout.buffer.write(result.body + b"\n")
    sys.stdout.flush()
    return 0


def respond_bootstrap(device: VirtualDevice, data: bytes, content_type: str, label: str, *, wbxml: bool) -> int:
    """Take a pushed bootstrap and print the device's first Package 1 to the new server; exit 1 if refused."""
    from emulator.fleet.engines import make_engine
    from emulator.protocol.syncml.bootstrap import take_pushed

    p = device.profile
    try:
        server_id = take_pushed(device.tree, data, content_type, dm_version=p.dm_version,
                                acl_scope=p.bootstrap.acl_scope if p.bootstrap else ())
    except EmulatorError as exc:
        print(f"dm-emulator respond: {label}: bootstrap refused: {exc}", file=sys.stderr)
        return 1
    account = device.account(server_id, "dm12")
    print(f"dm-emulator respond: note: bootstrap taken: new DM server {server_id!r} at {account.server_uri}; "
          "its first Package 1 follows", file=sys.stderr)
    action = make_engine(device, account, "1").next_action()
    if not isinstance(action, SendMessage):
        print(f"dm-emulator respond: {label}: the device did not open its session", file=sys.stderr)
        return 1
    body = build_message(parse_message(action.body, action.content_type), wbxml=wbxml)  # in the form asked for
    sys.stdout.buffer.write(body + (b"" if wbxml else b"\n"))
    sys.stdout.flush()
    return 0


def respond_sessionless(device: VirtualDevice, data: bytes, label: str) -> int:
    """Print the report of one DM 1.3 sessionless command message; exit 1 when the device refuses it."""
    from emulator.fleet.sessionless import report_uri, take
    from emulator.protocol.syncml.sessionless import body_media, open_envelope

    try:  # the message's Target becomes the device's identity, as for a package in a session
        body = open_envelope(data).body
        target = parse_message(body, body_media(body)).header.target
    except EmulatorError:
        target = ""  # the device's own checks below say what is wrong
    if target:
        device.tree.set_node("./DevInfo/DevId", target, permanent=True, access=frozenset({"Get"}))
        device.id = target
    try:
        account, done = take(device, data, None, 0.0)
    except EmulatorError as exc:
        print(f"dm-emulator respond: {label}: {exc}", file=sys.stderr)
        return 1
    print(f"dm-emulator respond: note: the device signs this report and POSTs it to {report_uri(device, account)} "
          "(no session); the expiry and replay checks were skipped", file=sys.stderr)
    sys.stdout.buffer.write(done.report + b"\n")
    sys.stdout.flush()
    return 0


def is_bootstrap_type(content_type: str | None) -> bool:
    """A Content-Type that carries a bootstrap's security parameters (SEC=, MAC=)."""
    params = (content_type or "").upper().replace(" ", "")
    return ";SEC=" in params or ";MAC=" in params


def run(args: argparse.Namespace) -> int:
    data = _read(args.message)
    head = message_head(data, args.message)
    profile = find_profile(args.profile)
    device = VirtualDevice(profile, 0, server=RESPOND_SERVER)
    if is_bootstrap_type(args.content_type):
        return respond_bootstrap(device, data, args.content_type, args.message, wbxml=args.wbxml)
    from emulator.protocol.syncml.sessionless import MAGIC

    if data.startswith(MAGIC):
        return respond_sessionless(device, data, args.message)
    if head in (b"{", b"["):
        return respond_dm2(device, data, args.message)
    media = codes.MEDIA_DM_XML if head == b"<" else codes.MEDIA_DM_WBXML
    body, done = respond_dm12(device, data, media, wbxml=args.wbxml)
    if body is None:
        if done is not None and done.outcome == "completed":
            print(f"dm-emulator respond: nothing to answer ({done.detail})", file=sys.stderr)
            return 0
        detail = done.detail if done is not None else "the engine stopped without an answer"
        print(f"dm-emulator respond: {args.message}: {detail}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(body)
    if not args.wbxml:
        sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
    return 0
