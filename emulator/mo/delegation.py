"""Delegation between management authorities (DM-HLF-013, 022-026, DM-SECARIZE-001; PROTOCOL 4).

No public text gives the message formats (PROTOCOL 4.2, 4.3), so the rules are the project's and are
written out in the README ("Management authorities and delegation: the rules"). The idea: a
delegation is nothing but ACL edits the device makes *as itself* on the delegated scope, plus a
record that remembers the limits. Every engine already checks ACLs on every command, so the effect
of a delegation is enforced wherever a server touches the tree; the record is only consulted when
somebody delegates again (sub-delegation limits), changes an ACL inside a delegated scope, or revokes.

A scope is a subtree: a DM 1.x URI (``./Vendor/App``) or a DM 2.0 instance ClientURI
(``urn:oma:mo:<name>:<ver>/<MIID>``). What the device does:

- shared: wherever the delegator is named in an ACL of the scope, the delegate is named next to it;
- full: every ACL of the scope names the delegate alone, for exactly the commands the delegator
  held there; the delegator and every other server (``*`` included) lose access: DM-HLF-025;
- the scope root always gets an ACL of its own first, so nothing leaks from or to its ancestors;
- sub-delegation (the delegator's rights on the scope came from a delegation) is bounded by the
  ``depth`` and ``prohibited`` set of every delegation that gave it those rights (DM-HLF-026).

How servers ask: DM 1.x ``Exec ./DMAcc/<ServerID>/Ext/Delegate`` with ``Item/Data``
``delegate=<id>&scope=<uri>&kind=full&depth=1&prohibited=<id>`` (``prohibited`` may repeat; DM 1.3
server-to-server delegation adds ``account=<base64url TNDS>``: the delegate's DMAcc account, which
the device takes in, deciding its rights itself, and keeps only if the delegation is made);
DM 2.0 ``EXEC urn:oma:mo:oma-dm-dmacc:1.2/<SrvID>/Ext/Delegate?delegate=...`` (the same fields in the
ClientURI query, since EXEC carries no data); ``Ext/Revoke`` takes ``id=<n>`` or ``delegate`` and
``scope``. The Python API (:class:`Delegations`) is what the window and scenarios use.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

from emulator.errors import DecodeError, EmulatorError
from emulator.events import AlertRaised, EventBus, RecordChanged
from emulator.mo.accounts import DM1_ROOT, DM2_ROOT, DMACC_2, Account, read_accounts
from emulator.mo.instances import effective_acl, instance_views
from emulator.tree import Acl, Tree
from emulator.tree import uri as uris
from emulator.tree.acl import COMMANDS
from emulator.tree.clienturi import WILDCARD, format_client_uri, is_xname, parse_client_uri, resolve
from emulator.tree.tree import ExecRequest

log = logging.getLogger(__name__)

Path = tuple[str, ...]
KINDS = ("shared", "full")
DELEGATE_LEAF = ("Ext", "Delegate")
REVOKE_LEAF = ("Ext", "Revoke")
ALERT_DELEGATED = "urn:dmemulator:delegation"
ALERT_REFUSED = "urn:dmemulator:delegation:refused"
MAX_DEPTH = 16
MAX_ACCOUNT_DOCUMENT = 8192
"""Largest delegate's account (TNDS, decoded) a Delegate request may bring, in bytes."""
KEEP = 1000  # refusals kept (the newest)


class DelegationError(EmulatorError):
    """A delegation (or an ACL change inside a delegated scope) the device refuses.

    425 (permission denied: no right to delegate, depth exhausted, prohibited authority, a fully
    delegated scope), 403 (the delegate was not granted the MO at bootstrap), 404 (unknown server,
    scope or record), 400 (malformed request), 418 (the same delegation exists). DM 2.0 answers 425
    as 403 (PROTOCOL 1.19 item 9).
    """

    status = 425


class _Owner(Protocol):
    """What a delegation registry needs of its device: the tree (which may be swapped), the bus."""

    @property
    def tree(self) -> Tree: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DelegationRequest:
    """What a delegator asks for; ``depth`` = further levels of sub-delegation the delegate may use."""

    delegate: str
    scope: str
    kind: str = "shared"
    depth: int = 0
    prohibited: frozenset[str] = frozenset()
    account: bytes = b""  # DM 1.3: a TNDS of the delegate's DMAcc account, taken in with the delegation


@dataclass(frozen=True, slots=True)
class Delegation:
    """One delegation in force. ``before`` holds the explicit ACLs of the scope when it was made
    (the scope root's possibly empty), which revocation puts back."""

    id: int
    delegator: str
    delegate: str
    scope: str
    path: Path
    kind: str
    depth: int
    prohibited: frozenset[str] = frozenset()
    parent: int | None = None
    before: tuple[tuple[Path, str], ...] = field(default=(), repr=False)

    def covers(self, path: Path) -> bool:
        return path[: len(self.path)] == self.path

    @property
    def uri(self) -> str:
        return uris.join(self.path)

    def describe(self) -> str:
        limits = f", depth {self.depth}" + (f", not to {', '.join(sorted(self.prohibited))}" if self.prohibited else "")
        return f"#{self.id} {self.kind} {self.delegator} -> {self.delegate} on {self.scope}{limits}"

    def to_data(self) -> dict[str, Any]:
        return {"id": self.id, "delegator": self.delegator, "delegate": self.delegate, "scope": self.scope,
                "path": list(self.path), "kind": self.kind, "depth": self.depth,
                "prohibited": sorted(self.prohibited), "parent": self.parent,
                "before": [[list(p), acl] for p, acl in self.before]}

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> Delegation:
        try:
            return cls(int(d["id"]), str(d["delegator"]), str(d["delegate"]), str(d["scope"]),
                       tuple(str(s) for s in d["path"]), str(d["kind"]), int(d["depth"]),
                       frozenset(str(s) for s in d.get("prohibited", ())),
                       None if d.get("parent") is None else int(d["parent"]),
                       tuple((tuple(str(s) for s in p), str(acl)) for p, acl in d.get("before", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"damaged delegation record {d!r}: {exc}") from None


def parse_request(data: str | bytes | None) -> DelegationRequest:
    """``delegate=<id>&scope=<uri>[&kind=shared|full][&depth=<n>][&prohibited=<id>]...`` (400 if wrong)."""
    fields = _fields(data)
    delegate = _one(fields, "delegate")
    scope = _one(fields, "scope")
    kind = _one(fields, "kind", "shared")
    if kind not in KINDS:
        raise DelegationError(f"kind must be shared or full, not {kind!r}", status=400)
    depth_text = _one(fields, "depth", "0")
    if not depth_text.isdigit() or int(depth_text) > MAX_DEPTH:
        raise DelegationError(f"depth must be a number 0..{MAX_DEPTH}, not {depth_text!r}", status=400)
    account = b""
    if fields.get("account"):
        text = _one(fields, "account")
        try:
            account = base64.b64decode(text.encode("ascii") + b"=" * (-len(text) % 4), altchars=b"-_", validate=True)
        except (ValueError, binascii.Error):
            raise DelegationError("account= is not base64url", status=400) from None
        if not account:
            raise DelegationError("account= is empty", status=400)
        if len(account) > MAX_ACCOUNT_DOCUMENT:
            raise DelegationError(f"the delegate's account document is {len(account)} bytes, over the "
                                  f"{MAX_ACCOUNT_DOCUMENT}-byte limit", status=400)
    return DelegationRequest(delegate, scope, kind, int(depth_text), frozenset(fields.get("prohibited", ())), account)


def canonical_scope(scope: str) -> str:
    """One spelling per scope (``./A/B``; ``MOID/MIID/``), so a revocation names it as the record does."""
    try:
        if scope.startswith("./") or scope == ".":
            return uris.join(uris.split(scope))
        uri = parse_client_uri(scope)
        return format_client_uri(uri.moid, uri.instance, uri.path)
    except EmulatorError:
        return scope


def _fields(data: str | bytes | None) -> dict[str, list[str]]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")
    out: dict[str, list[str]] = {}
    for name, value in parse_qsl(text.strip(), keep_blank_values=True):
        out.setdefault(name, []).append(value)
    return out


def _one(fields: dict[str, list[str]], name: str, default: str | None = None) -> str:
    values = fields.get(name)
    if not values or not values[0]:
        if default is not None:
            return default
        raise DelegationError(f"the request has no {name}=", status=400)
    if len(values) > 1:
        raise DelegationError(f"{name}= given {len(values)} times", status=400)
    return values[0]


def _acl_nodes(tree: Tree, root: Path) -> Iterator[tuple[Path, str]]:
    """(path, ACL text) of every node of a subtree that has an ACL of its own."""
    for info in tree.walk(root):
        if info.acl:
            yield uris.split(info.path), info.acl


class Delegations:
    """The delegations of one device and the rules it applies to them (see the module doc)."""

    def __init__(self, owner: _Owner) -> None:
        self.owner = owner
        self.records: dict[int, Delegation] = {}
        self.refusals: list[str] = []
        self._next_id = 1

    # ------------------------------------------------------------------ queries

    def active(self) -> list[Delegation]:
        return list(self.records.values())

    def limits_for(self, server_id: str, path: Path) -> list[Delegation]:
        """The delegations through which ``server_id`` holds rights at ``path`` (its sub-delegation limits)."""
        return [r for r in self.records.values() if r.delegate == server_id and r.covers(path)]

    def descendants(self, record_id: int) -> list[Delegation]:
        """Sub-delegations made from ``record_id``, deepest first."""
        out: list[Delegation] = []
        for r in self.records.values():
            if r.parent == record_id:
                out.extend(self.descendants(r.id))
                out.append(r)
        return out

    def state_of(self, server_id: str) -> str:
        """One line for the window: what this authority delegated and holds through delegation."""
        parts = [f"{r.kind} to {r.delegate} on {r.scope}" for r in self.records.values() if r.delegator == server_id]
        parts += [f"holds {r.kind} from {r.delegator} on {r.scope} (depth {r.depth})"
                  for r in self.records.values() if r.delegate == server_id]
        return "; ".join(parts)

    # ------------------------------------------------------------------ delegating

    def delegate(self, delegator: str, request: DelegationRequest) -> Delegation:
        """Apply a delegation (see the module doc); DelegationError, logged and raised as an alert, if refused."""
        try:
            record = self._delegate(delegator, request)
        except EmulatorError as exc:
            self._refused(delegator, f"delegation to {request.delegate} on {request.scope}", exc)
            raise
        self.owner.bus.publish(RecordChanged(self.owner.id, "delegation"))
        self._publish(ALERT_DELEGATED, f"{record.describe()}", {"record": record.id, "delegator": delegator,
                                                               "delegate": record.delegate, "kind": record.kind})
        return record

    def _delegate(self, delegator: str, req: DelegationRequest) -> Delegation:
        tree = self.owner.tree
        accounts = {a.server_id: a for a in read_accounts(tree)}
        if req.delegate == delegator:
            raise DelegationError(f"{delegator} cannot delegate to itself", status=400)
        if req.kind not in KINDS:
            raise DelegationError(f"kind must be shared or full, not {req.kind!r}", status=400)
        if not 0 <= req.depth <= MAX_DEPTH:
            raise DelegationError(f"depth must be 0..{MAX_DEPTH}", status=400)
        target = accounts.get(req.delegate)
        if target is None:
            raise DelegationError(f"no management authority {req.delegate!r} on this device", status=404)
        path, moid = self._scope_path(tree, req.scope, delegator, accounts.get(delegator))
        if moid is not None and (target.protocol != "dm2" or moid not in target.perms):
            raise DelegationError(f"{req.delegate} was not granted {moid} at bootstrap: delegation cannot widen it",
                                  status=403)
        acl = effective_acl(tree, path)
        if not acl.allows("Replace", delegator):
            raise DelegationError(f"{delegator} does not control {req.scope} (no Replace right): nothing to delegate")
        for r in self.records.values():
            if (r.delegator, r.delegate, r.path) == (delegator, req.delegate, path):
                raise DelegationError(f"{r.describe()} is already in force", status=418)
        limits = self.limits_for(delegator, path)
        depth, prohibited, parent = req.depth, frozenset(req.prohibited), None
        if limits:
            left = min(r.depth for r in limits)
            inherited = frozenset().union(*(r.prohibited for r in limits))
            if left <= 0:
                raise DelegationError(f"{delegator} holds {req.scope} through delegation "
                                      f"#{', #'.join(str(r.id) for r in limits)} which allows no further sub-delegation")
            if req.delegate in inherited:
                raise DelegationError(f"sub-delegation of {req.scope} to {req.delegate} is prohibited "
                                      f"by the delegation that gave it to {delegator}")
            depth = min(depth, left - 1)
            prohibited |= inherited
            parent = max(limits, key=lambda r: (len(r.path), r.id)).id
        before = tuple(_acl_nodes(tree, path))
        if not any(p == path for p, _ in before):
            before = ((path, ""),) + before
        with tree.transaction():
            if not tree.info(path).acl:  # the root gets an ACL of its own: nothing inherited or leaked
                tree.replace_prop(path, "ACL", acl.text)
            for node, text in list(_acl_nodes(tree, path)):
                new = _delegated_acl(Acl.parse(text), delegator, req.delegate, req.kind)
                if new.text != text:
                    tree.replace_prop(node, "ACL", new.text)
        record = Delegation(self._next_id, delegator, req.delegate, canonical_scope(req.scope), path, req.kind,
                            depth, prohibited, parent, before)
        self._next_id += 1
        self.records[record.id] = record
        return record

    def _scope_path(self, tree: Tree, scope: str, delegator: str, account: Account | None) -> tuple[Path, str | None]:
        """Tree path of a scope (and its MOID when it is a DM 2.0 instance); 404 when the delegator cannot see it."""
        if scope.startswith("./") or scope == ".":
            try:
                path = uris.split(scope)
            except EmulatorError as exc:
                raise DelegationError(f"bad scope {scope!r}: {exc}", status=400) from None
            if not tree.exists(path):
                raise DelegationError(f"no node {scope}", status=404)
            if any(path[: len(root)] == root for root in (uris.split(DM1_ROOT), uris.split(DM2_ROOT))) or not path:
                raise DelegationError(f"{scope} holds accounts (credentials): it cannot be delegated", status=403)
            return path, None
        try:
            uri = parse_client_uri(scope)
        except DecodeError as exc:
            raise DelegationError(f"bad scope {scope!r}: {exc}", status=400) from None
        if uri.path or uri.instance == WILDCARD or is_xname(uri.instance):
            raise DelegationError(f"a DM 2.0 scope names one MO instance (MOID/MIID), not {scope!r}", status=400)
        if account is not None and account.protocol == "dm2" and uri.moid not in account.perms:
            raise DelegationError(f"{delegator} was not granted {uri.moid}", status=403)
        if uri.moid == DMACC_2:
            raise DelegationError("DM accounts (credentials) cannot be delegated", status=403)
        views = instance_views(tree, uri.moid, delegator)
        try:
            targets = resolve(uri, views)
        except EmulatorError:
            targets = []
        if len(targets) != 1:
            raise DelegationError(f"{scope} names no instance {delegator} can see", status=404)
        miid, _ = targets[0]
        return views[miid].root, uri.moid

    # ------------------------------------------------------------------ revoking

    def revoke(self, by: str | None, record_id: int) -> list[Delegation]:
        """Undo a delegation and every sub-delegation made from it; ``by`` its delegator (or an
        earlier one in its chain), None for the device/user. Returns the records revoked."""
        try:
            record = self.records.get(record_id)
            if record is None:
                raise DelegationError(f"no delegation #{record_id}", status=404)
            if by is not None and by not in self._chain_delegators(record):
                raise DelegationError(f"{by} did not make delegation #{record_id}")
        except EmulatorError as exc:
            self._refused(by or "device", f"revocation of #{record_id}", exc)
            raise
        done = [*self.descendants(record.id), record]
        tree = self.owner.tree
        with tree.transaction():
            for r in done:
                self._restore(tree, r)
                del self.records[r.id]
        self.owner.bus.publish(RecordChanged(self.owner.id, "revocation"))
        self._publish(ALERT_DELEGATED, f"revoked {', '.join('#' + str(r.id) for r in done)}",
                      {"revoked": [r.id for r in done], "by": by or ""})
        return done

    def find(self, delegator: str | None, delegate: str, scope: str) -> Delegation:
        scope = canonical_scope(scope)
        for r in self.records.values():
            if r.delegate == delegate and r.scope == scope and (delegator is None or r.delegator == delegator):
                return r
        raise DelegationError(f"no delegation to {delegate} on {scope}", status=404)

    def _chain_delegators(self, record: Delegation) -> set[str]:
        out = {record.delegator}
        parent = self.records.get(record.parent) if record.parent is not None else None
        while parent is not None:
            out.add(parent.delegator)
            parent = self.records.get(parent.parent) if parent.parent is not None else None
        return out

    @staticmethod
    def _restore(tree: Tree, r: Delegation) -> None:
        """Undo one delegation. Full: the scope's ACLs go back to what they were (only the delegate's
        chain could change them meanwhile); nodes made since go back to the delegator. Shared: the
        delegate is taken out of every ACL it was not in before, so other delegations stay."""
        if not tree.exists(r.path):
            return
        before = {p: Acl.parse(text) for p, text in r.before}
        for info in list(tree.walk(r.path)):
            path = uris.split(info.path)
            acl = Acl.parse(info.acl)
            old = before.get(path)
            if r.kind == "full":
                new = old if old is not None else _swap(acl, r.delegate, r.delegator)
            else:
                kept = old if old is not None else Acl.parse("")
                new = Acl({c: acl.servers(c) - ({r.delegate} - kept.servers(c)) for c in COMMANDS})
                if path == r.path and old is not None and not old and path:
                    parent = effective_acl(tree, path[:-1])
                    if new == parent:
                        new = old  # the root's ACL was made for the delegation: inherit again
            if new.text != info.acl:
                tree.replace_prop(path, "ACL", new.text)

    # ------------------------------------------------------------------ the guard on ACL changes

    def check_acl_change(self, by: str, path: Path, new_text: str) -> None:
        """Refuse a server's ACL Replace that would break a delegation's rules (DelegationError 425):
        inside a fully delegated scope only the delegate and its sub-delegates may change ACLs; a server
        holding a scope through delegation may not name new servers (that is what Delegate is for, with
        its limits)."""
        try:
            for r in self.records.values():
                if r.kind == "full" and r.covers(path):
                    editors = {r.delegate} | {d.delegate for d in self.descendants(r.id)}
                    if by not in editors:
                        raise DelegationError(f"{r.scope} is fully delegated to {r.delegate}: {by} may not change "
                                              f"its ACLs")
            if self.limits_for(by, path):
                try:
                    new = Acl.parse(new_text)
                except EmulatorError:
                    return  # the tree answers a malformed ACL itself
                current = effective_acl(self.owner.tree, path) if self.owner.tree.exists(path) else Acl.parse("")
                known = {s for c in COMMANDS for s in current.servers(c)}
                named = {s for c in COMMANDS for s in new.servers(c)}
                added = named - known
                if added:
                    raise DelegationError(f"{by} holds {uris.join(path)} through delegation: it may not grant "
                                          f"{', '.join(sorted(added))} by ACL (use Ext/Delegate)")
        except DelegationError as exc:
            self._refused(by, f"ACL change on {uris.join(path)}", exc)
            raise

    # ------------------------------------------------------------------ exec nodes

    def exec_delegate(self, tree: Tree, request: ExecRequest) -> int:
        """Behaviour of ``<account>/Ext/Delegate``: the account's server delegates (see module doc)."""
        delegator = _account_of(request.path)
        if request.by is not None and request.by != delegator:
            raise DelegationError(f"{request.by} cannot delegate in the name of {delegator}")
        try:
            req = parse_request(request.data)
        except EmulatorError as exc:
            self._refused(delegator, "a delegation request", exc)
            raise
        if not req.account:
            self.delegate(delegator, req)
            return 200
        from emulator.mo.bootstrap import take_account

        with tree.transaction():  # the delegate's account stays only if the delegation is made
            try:
                taken = take_account(tree, req.account, source="delegate's account document")
            except EmulatorError as exc:
                self._refused(delegator, f"the account of {req.delegate}", exc)
                raise
            if taken != req.delegate:
                wrong = DelegationError(f"the account document is for {taken!r}, not {req.delegate!r}", status=400)
                self._refused(delegator, f"the account of {req.delegate}", wrong)
                raise wrong
            self.delegate(delegator, req)
        return 200

    def exec_revoke(self, tree: Tree, request: ExecRequest) -> int:
        """Behaviour of ``<account>/Ext/Revoke``: ``id=<n>``, or ``delegate=`` and ``scope=``."""
        by = _account_of(request.path)
        fields = _fields(request.data)
        try:
            if fields.get("id"):
                text = _one(fields, "id")
                if not text.isdigit():
                    raise DelegationError(f"id must be a number, not {text!r}", status=400)
                record_id = int(text)
            else:
                record_id = self.find(by, _one(fields, "delegate"), _one(fields, "scope")).id
        except EmulatorError as exc:
            self._refused(by, "a revocation request", exc)
            raise
        self.revoke(by, record_id)
        return 200

    # ------------------------------------------------------------------ persistence and events

    def to_data(self) -> list[dict[str, Any]]:
        return [r.to_data() for r in self.records.values()]

    def load(self, data: Iterable[dict[str, Any]]) -> None:
        """Records from a workspace (the ACLs they made are already in the stored tree)."""
        self.records = {}
        for d in data:
            r = Delegation.from_data(d)
            self.records[r.id] = r
        self._next_id = max(self.records, default=0) + 1

    def _refused(self, who: str, what: str, exc: EmulatorError) -> None:
        text = f"{who}: {what} refused ({exc.status}): {exc}"
        self.refusals.append(text)
        if len(self.refusals) > KEEP:
            del self.refusals[:-KEEP]
        log.info("%s: %s", self.owner.id, text)
        self._publish(ALERT_REFUSED, text, {"server": who, "status": exc.status})

    def _publish(self, alert_type: str, detail: str, data: dict[str, Any]) -> None:
        self.owner.bus.publish(AlertRaised(self.owner.id, alert_type, detail, data))


def _delegated_acl(acl: Acl, delegator: str, delegate: str, kind: str) -> Acl:
    if kind == "full":
        return Acl({c: frozenset({delegate}) for c in COMMANDS if acl.allows(c, delegator)})
    grants = {}
    for c in COMMANDS:
        ids = acl.servers(c)
        grants[c] = ids | {delegate} if delegator in ids else ids
    return Acl(grants)


def _swap(acl: Acl, old: str, new: str) -> Acl:
    return Acl({c: (acl.servers(c) - {old}) | {new} if old in acl.servers(c) else acl.servers(c) for c in COMMANDS})


def _account_of(path: str) -> str:
    """The ServerID of the account an ``.../<id>/Ext/Delegate`` node belongs to."""
    return uris.split(path)[-3]


def install_nodes(tree: Tree) -> None:
    """The ``Ext/Delegate`` and ``Ext/Revoke`` nodes of every account (only its own server may Exec
    them); idempotent, meant for a profile's template tree so devices share the nodes."""
    for root in (DM1_ROOT, DM2_ROOT):
        if not tree.exists(root):
            continue
        for name in tree.children(root):
            base = uris.split(root) + (name,)
            sid = tree.value(base + (("SrvID",) if root == DM2_ROOT else ("ServerID",))) or name
            sid = sid.decode() if isinstance(sid, bytes) else sid
            for leaf in (DELEGATE_LEAF, REVOKE_LEAF):
                uri = base + leaf
                if not tree.exists(uri):
                    tree.set_node(uri, "", format="chr", acl=f"Exec={sid}&Get={sid}",
                                  access=frozenset({"Get", "Exec"}), permanent=True)


def register_handlers(tree: Tree, delegations: Delegations) -> None:
    """Point the account nodes of one device's tree at that device's delegations."""
    for root in (DM1_ROOT, DM2_ROOT):
        tree.on_exec(f"{root}/*/Ext/Delegate", delegations.exec_delegate)
        tree.on_exec(f"{root}/*/Ext/Revoke", delegations.exec_revoke)
