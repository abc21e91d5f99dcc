"""Local applications on a device (DM-HLF-005, 016, 017; DM-SECARIZE-002; use case B.2).

A simulated application registers with the device's DM client, is granted access to specific MO
instances, reads (and, when granted, writes) their settings, and is notified when they change, by a
server or by another application. The rules the client applies (also in the README):

- A grant names a subtree: a DM 1.x URI (``./Vendor/Mail``), one DM 2.0 instance
  (``urn:oma:mo:<name>:<ver>/<MIID>``) or every instance of an MO, present and future
  (``urn:oma:mo:<name>:<ver>/*``). Grants are read-only unless made with ``write=True``.
- DM accounts hold credentials: no grant may cover ``./DMAcc`` or ``./DM2/DMAcc`` (or the root).
- Anything outside the grants is refused with :class:`AppAccessError` (403); the refusal is kept in
  ``device.apps.refusals`` and published as an ``AlertRaised`` (``urn:dmemulator:app:refused``).
- Notifications come from the tree's change events, for the subtrees the app subscribed to (inside
  its grants), except the app's own changes. Each names who changed the node: a ServerID,
  ``app:<name>`` or ``device``.
- DEFAULT (DM 2.0): when an app asks for an MO (:meth:`LocalApp.obtain`) of which the device has no
  instance yet, the device fetches it with an HTTP GET from the ServerURI a server bound with DEFAULT,
  over the device's current bearer, and creates the instance as that server (the account whose SrvURI
  has the same origin; it must have been granted the MO), without telling the server. The GET goes
  through what the device's fleet gives it (``device.fetch``), so it is in the traffic log like any
  message (session ``app:<name>``); a device in no fleet cannot fetch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from emulator.errors import DecodeError, EmulatorError
from emulator.events import AlertRaised, EventBus, RecordChanged
from emulator.mo.accounts import DM1_ROOT, DM2_ROOT, Account
from emulator.mo.instances import defaults, find_instances, instance_of, instance_views
from emulator.mo.lawmo import app_refusal
from emulator.protocol.actions import HttpRequest, HttpResult, header
from emulator.protocol.dm2 import media
from emulator.protocol.dm2.client import default_fetch
from emulator.protocol.dm2.executor import Actor, store
from emulator.protocol.dm2.moser import decode_mos
from emulator.tree import Tree, TreeEvent
from emulator.tree import uri as uris
from emulator.tree.clienturi import (
    WILDCARD,
    format_client_uri,
    is_xname,
    parse_client_uri,
    resolve,
)
from emulator.tree.ddf import find_builtin

log = logging.getLogger(__name__)

Path = tuple[str, ...]
Value = str | bytes | None
ALERT_APP_REFUSED = "urn:dmemulator:app:refused"
ALERT_APP_DEFAULT = "urn:dmemulator:app:default"
KEEP = 1000  # notifications per app and refusals per device kept (the newest)
_CREDENTIALS: tuple[Path, ...] = (uris.split(DM1_ROOT), uris.split(DM2_ROOT))
_ACCOUNT_MOIDS = ("urn:oma:mo:oma-dm-dmacc:1.0", "urn:oma:mo:oma-dm-dmacc:1.1", "urn:oma:mo:oma-dm-dmacc:1.2")


class AppAccessError(EmulatorError):
    """An application asked for something outside its grants (or a grant the device never gives)."""

    status = 403


@dataclass(frozen=True, slots=True)
class Grant:
    """Access to one subtree (see the module doc for the three forms of ``target``)."""

    target: str
    write: bool = False

    @property
    def is_tree(self) -> bool:
        return self.target.startswith("./") or self.target == "."

    def moid_miid(self) -> tuple[str, str]:
        uri = parse_client_uri(self.target)
        if uri.path or is_xname(uri.instance) or not uri.instance:
            raise AppAccessError(f"grant {self.target!r}: name one instance (MOID/MIID) or all (MOID/*)")
        return uri.moid, uri.instance

    def roots(self, tree: Tree) -> list[Path]:
        """The subtrees this grant covers now."""
        if self.is_tree:
            return [uris.split(self.target)]
        moid, miid = self.moid_miid()
        found = find_instances(tree, moid)
        if miid == WILDCARD:
            return list(found.values())
        return [found[miid]] if miid in found else []

    def covers_moid(self, moid: str) -> bool:
        return not self.is_tree and self.moid_miid() == (moid, WILDCARD)


@dataclass(frozen=True, slots=True)
class AppNotification:
    """One change an application was told about."""

    app: str
    subscription: str
    path: str
    kind: str  # add, replace, delete, rename, prop, exec
    by: str  # a ServerID, app:<name> or device
    old: Value
    new: Value
    ts: float


@dataclass(frozen=True, slots=True)
class AppRefusal:
    app: str
    operation: str
    target: str
    reason: str
    ts: float


@dataclass(slots=True)
class _Subscription:
    uri: str
    roots: list[Path]
    moid: str | None  # "moid/*": instances made later count too
    callback: Callable[[AppNotification], None] | None


@dataclass(eq=False)
class LocalApp:
    """One registered application (create with :meth:`AppRegistry.register`)."""

    name: str
    grants: tuple[Grant, ...]
    registry: AppRegistry
    notifications: list[AppNotification] = field(default_factory=list)
    _subs: list[_Subscription] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"app:{self.name}"

    # ------------------------------------------------------------------ reading and writing

    def read(self, uri: str) -> Any:
        """A leaf's value or an interior node's subtree (name -> value or dict); a ClientURI with
        wildcards or x-names gives ``{path: value}`` for every node it names."""
        tree = self.registry.tree
        paths = self._allowed(uri, "read", write=False)
        if not _is_pattern(uri):
            return _content(tree, paths[0])
        return {uris.join(p): _content(tree, p) for p in paths}

    def write(self, uri: str, value: Value) -> None:
        """Replace a leaf's value (a write grant is needed); servers and other apps are notified."""
        tree = self.registry.tree
        paths = self._allowed(uri, "write", write=True)
        with self.registry.acting(self), tree.transaction():
            for p in paths:
                tree.replace(p, value)

    def subscribe(self, uri: str, callback: Callable[[AppNotification], None] | None = None) -> Callable[[], None]:
        """Be told of every change inside ``uri`` (a tree URI, an instance or ``MOID/*``, inside the grants)."""
        tree = self.registry.tree
        moid = None
        if not (uri.startswith("./") or uri == "."):
            try:
                parsed = parse_client_uri(uri)
            except DecodeError as exc:
                raise self.registry.refuse(self, "subscribe", uri, f"not a ClientURI: {exc}") from None
            if parsed.instance == WILDCARD and not parsed.path:
                moid = parsed.moid
        if moid is not None:
            if not any(g.covers_moid(moid) for g in self.grants):
                raise self.registry.refuse(self, "subscribe", uri, "no grant on every instance of this MO")
            roots: list[Path] = []
        else:
            roots = self._allowed(uri, "subscribe", write=False)
        sub = _Subscription(uri, roots, moid, callback)
        self._subs.append(sub)
        self.registry._listen(tree)

        def unsubscribe() -> None:
            if sub in self._subs:
                self._subs.remove(sub)

        return unsubscribe

    def instances(self, moid: str) -> list[str]:
        """ClientURIs of the instances of ``moid`` this app may read."""
        tree = self.registry.tree
        out = []
        for miid, path in find_instances(tree, moid).items():
            if self._granted(path, write=False):
                out.append(format_client_uri(moid, miid))
        return out

    async def obtain(self, moid: str) -> list[str]:
        """The app's instances of ``moid``; when the device has none yet, fetch one through DEFAULT."""
        self.registry.check_unlocked(self, "obtain", moid)
        if not any(g.covers_moid(moid) or (not g.is_tree and g.moid_miid()[0] == moid) for g in self.grants):
            raise self.registry.refuse(self, "obtain", moid, "no grant on this MO")
        have = self.instances(moid)
        if have:
            return have
        return await self.registry.fetch_default(self, moid)

    # ------------------------------------------------------------------ grants

    def _granted(self, path: Path, *, write: bool) -> bool:
        tree = self.registry.tree
        for g in self.grants:
            if write and not g.write:
                continue
            if any(path[: len(root)] == root for root in g.roots(tree)):
                return True
        return False

    def _allowed(self, uri: str, operation: str, *, write: bool) -> list[Path]:
        reg = self.registry
        reg.check_unlocked(self, operation, uri)
        try:
            paths = _targets(reg.tree, uri)
        except EmulatorError as exc:
            if exc.status == 404:
                # as good as absent: an app cannot probe outside its grants
                raise reg.refuse(self, operation, uri, "no such node in the app's grants") from None
            raise reg.refuse(self, operation, uri, str(exc)) from None
        for p in paths:
            if not self._granted(p, write=write):
                reason = "a read-only grant" if write and self._granted(p, write=False) else "outside the app's grants"
                raise reg.refuse(self, operation, uri, f"{uris.join(p)} is {reason}")
        return paths

    def _deliver(self, event: TreeEvent, who: str, path: Path) -> None:
        if who == self.id:
            return
        for sub in self._subs:
            if not self._matches(sub, path):
                continue
            if not self._granted(path, write=False) and event.kind != "delete":
                continue
            note = AppNotification(self.name, sub.uri, event.path, event.kind, who, event.old, event.new, time.time())
            self.notifications.append(note)
            if len(self.notifications) > KEEP:
                del self.notifications[:-KEEP]
            if sub.callback is not None:
                try:
                    sub.callback(note)
                except Exception:  # an app's bug must not break the device
                    log.exception("app %s: notification callback failed", self.name)
            return

    def _matches(self, sub: _Subscription, path: Path) -> bool:
        if sub.moid is None:
            return any(path[: len(r)] == r for r in sub.roots)
        if any(path[: len(r)] == r for r in sub.roots):
            return True
        inst = instance_of(self.registry.tree, path)
        while inst is not None:
            if inst.moid == sub.moid:
                sub.roots.append(inst.path)  # remembered: its deletion is still news
                return True
            inst = instance_of(self.registry.tree, inst.path[:-1]) if len(inst.path) > 1 else None
        return False


Fetch = Callable[[HttpRequest, Account, str, str], Awaitable[HttpResult]]
"""(request, account it goes as, log label, summary) -> the answer: how a device's fleet carries a
request made outside any session (a local app's DEFAULT fetch) over the device's bearer, logged."""


class Host(Protocol):
    """What the applications read of their device (a VirtualDevice is one): its tree (a workspace
    restore may swap it), bus and accounts, and how it fetches outside a session."""

    @property
    def id(self) -> str: ...

    @property
    def tree(self) -> Tree: ...

    @property
    def bus(self) -> EventBus: ...

    fetch: Fetch | None

    def accounts(self, protocol: str | None = None) -> list[Account]: ...


class AppRegistry:
    """The applications of one device (``device.apps``)."""

    def __init__(self, device: Host) -> None:
        self.device = device
        self.apps: dict[str, LocalApp] = {}
        self.refusals: list[AppRefusal] = []
        self._acting: LocalApp | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._listening: Tree | None = None

    @property
    def tree(self) -> Tree:
        return self.device.tree

    def register(self, name: str, grants: Iterable[Grant | str]) -> LocalApp:
        """Register an application with its grants; AppAccessError for a grant the device never gives."""
        if not name or any(c in name for c in "/?&=+* \t"):
            raise EmulatorError(f"{name!r} cannot be an application name", status=400)
        if name in self.apps:
            raise EmulatorError(f"an application {name!r} is already registered", status=418)
        checked: list[Grant] = []
        app = LocalApp(name, (), self)
        for g in grants:
            grant = g if isinstance(g, Grant) else Grant(g)
            try:
                self._check_grant(grant)
            except EmulatorError as exc:
                raise self.refuse(app, "register", grant.target, str(exc)) from None
            checked.append(grant)
        app.grants = tuple(checked)
        self.apps[name] = app
        self.device.bus.publish(RecordChanged(self.device.id, "app registration"))
        return app

    def unregister(self, name: str) -> None:
        if self.apps.pop(name, None) is not None:
            self.device.bus.publish(RecordChanged(self.device.id, "app registration"))

    def to_data(self) -> list[dict[str, Any]]:
        """The registrations, for the workspace (apps come back registered after a restart)."""
        return [{"name": a.name, "grants": [[g.target, g.write] for g in a.grants]} for a in self.apps.values()]

    def load(self, data: Iterable[dict[str, Any]]) -> None:
        """Registrations from a workspace, checked again: a grant the device no longer gives is dropped."""
        for d in data:
            try:
                self.register(str(d["name"]), [Grant(str(t), bool(w)) for t, w in d.get("grants", [])])
            except (EmulatorError, KeyError, TypeError, ValueError):
                continue

    def _check_grant(self, grant: Grant) -> None:
        if grant.is_tree:
            path = uris.split(grant.target)
            for cred in _CREDENTIALS:
                if path[: len(cred)] == cred or cred[: len(path)] == path:
                    raise AppAccessError(f"{grant.target} holds DM accounts (credentials): never granted to apps")
            return
        moid, _ = grant.moid_miid()
        if moid in _ACCOUNT_MOIDS:
            raise AppAccessError(f"{moid} holds credentials: never granted to apps")

    def check_unlocked(self, app: LocalApp, operation: str, target: str) -> None:
        """A locked device (LAWMO State 10, or 20 for an app the profile does not keep) runs no app."""
        behaviours = getattr(self.device, "behaviours", None)
        if behaviours is None:
            return
        reason = app_refusal(behaviours, self.tree, app.name)
        if reason is not None:
            raise self.refuse(app, operation, target, reason)

    def refuse(self, app: LocalApp, operation: str, target: str, reason: str) -> AppAccessError:
        """Log and publish a refusal; returns the error for the caller to raise."""
        refusal = AppRefusal(app.name, operation, target, reason, time.time())
        self.refusals.append(refusal)
        if len(self.refusals) > KEEP:
            del self.refusals[:-KEEP]
        log.info("%s: app %s refused %s %s: %s", self.device.id, app.name, operation, target, reason)
        self.device.bus.publish(AlertRaised(self.device.id, ALERT_APP_REFUSED,
                                            f"app {app.name}: {operation} {target} refused: {reason}",
                                            {"app": app.name, "operation": operation, "target": target}))
        return AppAccessError(f"app {app.name}: {operation} {target} refused: {reason}")

    # ------------------------------------------------------------------ notifications

    def acting(self, app: LocalApp) -> _Acting:
        return _Acting(self, app)

    def _listen(self, tree: Tree) -> None:
        if self._listening is tree:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = tree.subscribe(self._on_change)
        self._listening = tree

    def retarget(self) -> None:
        """The device's tree was replaced (a workspace restore): listen to the new one."""
        if self._listening is not None:
            self._listen(self.device.tree)

    def _on_change(self, event: TreeEvent) -> None:
        if not self.apps:
            return
        who = event.by or (self._acting.id if self._acting is not None else "device")
        try:
            path = uris.split(event.path)
        except EmulatorError:
            return
        for app in list(self.apps.values()):
            app._deliver(event, who, path)

    # ------------------------------------------------------------------ DEFAULT

    async def fetch_default(self, app: LocalApp, moid: str) -> list[str]:
        """Create an instance of ``moid`` from its DEFAULT ServerURI (see the module doc)."""
        dev = self.device
        url = defaults(dev.tree).get(moid)
        if url is None:
            raise EmulatorError(f"the device has no instance of {moid} and no server gave a DEFAULT for it",
                                status=404)
        account = _account_for(dev.accounts("dm2"), url)
        if account is None:
            raise EmulatorError(f"DEFAULT for {moid} points to {url}, which belongs to no DM 2.0 account", status=403)
        if dev.fetch is None:
            raise EmulatorError(f"DEFAULT fetch of {moid}: the device has no transport (it is in no fleet)", status=500)
        result = await dev.fetch(default_fetch(dev.id, account, url), account,
                                 f"app:{app.name}", f"DEFAULT fetch of {moid} for app {app.name}")
        if result.status != 200:
            raise EmulatorError(f"DEFAULT fetch of {moid} from {url} failed: "
                                f"{result.error or f'HTTP {result.status}'}", status=500)
        ctype = header(result.headers, "content-type") or ""
        if ctype and not media.is_mo_json(ctype):
            raise EmulatorError(f"DEFAULT fetch of {moid}: {url} sent {ctype}, not MO serialization", status=415)
        items = decode_mos(result.body)
        wanted = [i for i in items if _moid_of(i.client_uri) == moid]
        if not wanted:
            raise EmulatorError(f"DEFAULT fetch of {moid}: {url} sent no object of that MO", status=415)
        written = store(dev.tree, Actor(account.server_id, frozenset(account.perms), find_builtin), wanted, None)
        dev.bus.publish(AlertRaised(dev.id, ALERT_APP_DEFAULT,
                                    f"app {app.name} asked for {moid}: created {', '.join(written)} from {url}",
                                    {"app": app.name, "moid": moid, "url": url, "created": written}))
        return [w for w in written if app._granted(_path_of(dev.tree, w), write=False)]


class _Acting:
    """While an app writes, tree events without a server are the app's."""

    __slots__ = ("app", "registry")

    def __init__(self, registry: AppRegistry, app: LocalApp) -> None:
        self.registry = registry
        self.app = app

    def __enter__(self) -> None:
        self.registry._acting = self.app

    def __exit__(self, *exc: object) -> None:
        self.registry._acting = None


def _targets(tree: Tree, uri: str) -> list[Path]:
    """Tree paths a tree URI or a ClientURI names, as the device sees them (404 if none)."""
    if uri.startswith("./") or uri == ".":
        path = uris.split(uri)
        if not tree.exists(path):
            raise EmulatorError(f"no node {uri}", status=404)
        return [path]
    parsed = parse_client_uri(uri)
    views = instance_views(tree, parsed.moid, None)
    return [views[miid].root + rel for miid, rel in resolve(parsed, views)]


def _is_pattern(uri: str) -> bool:
    if uri.startswith("./") or uri == ".":
        return False
    parsed = parse_client_uri(uri)
    return any(s == WILDCARD or is_xname(s) for s in (parsed.instance, *parsed.path))


def _path_of(tree: Tree, client_uri: str) -> Path:
    return _targets(tree, client_uri)[0]


def _moid_of(client_uri: str) -> str | None:
    try:
        return parse_client_uri(client_uri).moid
    except DecodeError:
        return None


def _content(tree: Tree, path: Path) -> Any:
    info = tree.info(path)
    if info.children is None:
        return info.value
    return {name: _content(tree, path + (name,)) for name in info.children}


def _account_for(accounts: list[Account], url: str) -> Account | None:
    origin = _origin(url)
    return next((a for a in accounts if origin is not None and _origin(a.server_uri) == origin), None)


def _origin(url: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return (parts.scheme.lower(), parts.netloc.lower()) if parts.scheme and parts.netloc else None
