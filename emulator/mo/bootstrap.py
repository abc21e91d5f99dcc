"""DM 1.3 client-initiated bootstrap, the device's side: the BootConfig MO and taking a bootstrap in.

A factory-fresh DM 1.3 device knows no management server yet, only where to ask for one: its
BootConfig entry (ERELD 4.3: "Client Initiated Bootstrap (via HTTPS GET), Bootstrap Server Discovery
and Bootstrap Config MO"). Before its first session the device GETs ``<ServerURI>/<DevID>`` from
the bootstrap server (:meth:`emulator.fleet.fleet.Fleet.bootstrap` does the request), authenticated
with its factory bootstrap secret, and takes the answer in with :func:`apply_bootstrap`: a TNDS
document describing exactly one ``./DMAcc/<ServerID>`` account. Then it is managed like any device.

The node names are the project's [P] (the BootConfig 1.3 DDF's header was reachable, not its nodes):
``./BootConfig/<x>/ServerURI`` (the bootstrap server), ``Secret`` (the factory secret, never readable by
a server), ``State`` (``pending`` until a bootstrap was taken in, then ``done``), ``ServerID`` (the
account it created).

Initial access rights (ERELD 4.3 "control over initial access rights for a newly bootstrapped DM
Server") are the device's decision, not the document's: ACLs in the TNDS are dropped; the new
server gets Get/Replace/Delete on its own account and every command on the profile's
``bootstrap.acl_scope`` nodes, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from emulator.errors import EmulatorError
from emulator.mo.accounts import DM1_ROOT, find_account
from emulator.tree import Tree
from emulator.tree import uri as uris
from emulator.tree.acl import COMMANDS, Acl
from emulator.tree.tnds import import_tnds

BOOTCONFIG_ROOT = "./BootConfig"
PENDING, DONE = "pending", "done"
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
BASIC_USER = "bootstrap"
"""The HTTP Basic user of the bootstrap GET (a DevID has ':' and cannot be one); the path names the device."""
MAX_BOOTSTRAP = 64 << 10
"""Largest bootstrap document taken (one account is a few KB)."""
DISCOVERY_PATH = "/.well-known/dm-bootstrap"
"""Where a device asks the network for its bootstrap server (RFC 8615 well-known URI) [P]."""
MAX_DISCOVERY = 2048
"""Largest bootstrap server discovery answer taken (bytes): a URI list of one URL."""


@dataclass(frozen=True, slots=True)
class BootEntry:
    """One BootConfig entry: where to bootstrap from, with which factory secret, and its state."""

    path: str
    server_uri: str
    secret: str
    state: str


def _text(tree: Tree, uri: str) -> str:
    v = tree.value(uri, "")
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else (v or "")


def write_bootconfig(tree: Tree, server_uri: str, secret: str, *, name: str = "1") -> None:
    """The factory BootConfig entry (the device itself writes it; the Secret is readable by no server)."""
    base = f"{BOOTCONFIG_ROOT}/{name}"
    if not tree.exists(BOOTCONFIG_ROOT):
        tree.set_node(BOOTCONFIG_ROOT, format="node", permanent=True, acl="Get=*")
    tree.set_node(base, format="node")
    tree.set_node(f"{base}/ServerURI", server_uri, access=frozenset({"Get"}))
    tree.set_node(f"{base}/Secret", secret, access=frozenset({"Replace"}))
    tree.set_node(f"{base}/State", PENDING, access=frozenset({"Get"}))
    tree.set_node(f"{base}/ServerID", "", access=frozenset({"Get"}))


def entries(tree: Tree) -> list[BootEntry]:
    if not tree.exists(BOOTCONFIG_ROOT):
        return []
    out = []
    for name in tree.children(BOOTCONFIG_ROOT):
        base = f"{BOOTCONFIG_ROOT}/{name}"
        out.append(BootEntry(base, _text(tree, f"{base}/ServerURI"), _text(tree, f"{base}/Secret"),
                             _text(tree, f"{base}/State")))
    return out


def pending(tree: Tree) -> BootEntry | None:
    """The first BootConfig entry not bootstrapped yet (None: nothing to do); its ServerURI is ''
    when the device must discover its bootstrap server first."""
    return next((e for e in entries(tree) if e.state != DONE), None)


def discovered_uri(answer: bytes) -> str:
    """The bootstrap server a discovery answer names: the first URI of a ``text/uri-list`` (RFC 2483:
    CRLF lines, ``#`` comments), one the device would bootstrap from (:func:`url_problem`).
    EmulatorError (400) for anything else."""
    if len(answer) > MAX_DISCOVERY:
        raise EmulatorError(f"the discovery answer of {len(answer)} bytes exceeds the limit of {MAX_DISCOVERY}",
                            status=400)
    try:
        text = answer.decode("utf-8")
    except UnicodeDecodeError:
        raise EmulatorError("the discovery answer is not UTF-8 text", status=400) from None
    uris_found = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not uris_found:
        raise EmulatorError("the discovery answer names no bootstrap server", status=400)
    url = uris_found[0]
    if any(c.isspace() or ord(c) < 0x21 for c in url):
        raise EmulatorError(f"the discovery answer {url[:80]!r} is not one URI", status=400)
    problem = url_problem(url)
    if problem:
        raise EmulatorError(problem, status=400)
    return url


def url_problem(url: str) -> str:
    """Why the device will not bootstrap from ``url`` ('' when it will): HTTPS, or plain HTTP only
    to this machine (the demo's loopback server): a bootstrap carries the account's secrets."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"bootstrap server {url!r} is not a URL"
    if parts.scheme == "https" and parts.hostname:
        return ""
    if parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS:
        return ""
    return (f"bootstrap server {url!r} refused: a bootstrap carries secrets, so it must be https:// "
            "(plain http only to a loopback address)")


def apply_bootstrap(tree: Tree, entry: BootEntry, document: bytes, acl_scope: Iterable[str] = ()) -> str:
    """Take a bootstrap document in (all or nothing); the ServerID of the account it created.

    EmulatorError 400 when the document is not one ``./DMAcc/<name>`` account with a ServerID, 418
    when the device has an account of that ServerID already. See the module doc for the rights."""
    with tree.transaction():
        server_id = take_account(tree, document, acl_scope, source="bootstrap document")
        tree.set_node(f"{entry.path}/State", DONE, access=frozenset({"Get"}))
        tree.set_node(f"{entry.path}/ServerID", server_id, access=frozenset({"Get"}))
    return server_id


def take_account(tree: Tree, document: bytes, acl_scope: Iterable[str] = (), *, source: str = "account document") -> str:
    """One DM 1.x account from a TNDS document, taken in all or nothing, the device deciding its
    rights: the document's ACLs are dropped, the new server gets its own entry and ``acl_scope``.
    Used by a bootstrap and by a delegation that brings its delegate's account (DM 1.3). The
    ServerID; EmulatorError 400 (not exactly one usable ``./DMAcc/<name>``), 418 (known already)."""
    staging = Tree()
    staging.set_node(DM1_ROOT, format="node")
    import_tnds(staging, document, source=source)
    top = staging.children(".")
    names = staging.children(DM1_ROOT) if staging.exists(DM1_ROOT) else []
    if top != ["DMAcc"] or len(names) != 1:
        raise EmulatorError(f"a {source} must describe exactly one ./DMAcc/<name> account "
                            f"(it describes {', '.join(top) or 'nothing'})", status=400)
    base = f"{DM1_ROOT}/{uris.join((names[0],))[2:]}"
    server_id = _text(staging, f"{base}/ServerID").strip()
    if not server_id or any(c in server_id for c in "=&*+ \t"):
        raise EmulatorError(f"the account's ServerID {server_id!r} is missing or not usable", status=400)
    if tree.exists(base) or find_account(tree, server_id, "dm12") is not None:
        raise EmulatorError(f"the device already has an account for {server_id!r}", status=418)
    scope = list(acl_scope)
    for uri in scope:
        if not tree.exists(uri):
            raise EmulatorError(f"bootstrap acl_scope {uri!r} names no node of the device", status=400)
    with tree.transaction():
        import_tnds(tree, document, source=source)
        for info in list(tree.walk(base)):  # the document's ACLs are not the device's decision
            if info.acl:
                tree.replace_prop(info.path, "ACL", "")
        tree.replace_prop(base, "ACL", f"Get={server_id}&Replace={server_id}&Delete={server_id}")
        for uri in scope:
            acl = Acl.parse(_effective_acl(tree, uri))
            for cmd in COMMANDS:
                ids = acl.servers(cmd)
                if "*" not in ids:
                    acl = acl.with_servers(cmd, ids | {server_id})
            tree.replace_prop(uri, "ACL", acl.text)
    return server_id


def _effective_acl(tree: Tree, uri: str) -> str:
    """The ACL that applies to a node: its own, else its nearest ancestor's (DM ACL inheritance)."""
    segs = uris.split(uri)
    for depth in range(len(segs), -1, -1):
        text = tree.get_prop(segs[:depth], "ACL")
        if text:
            return text
    return ""
