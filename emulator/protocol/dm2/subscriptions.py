"""DM 2.0 SUB/UNSUB: which subtrees servers watch, and the PUTs their changes cause (PROTOCOL 1.9).

Subscriptions belong to the device, not to a session: a server subscribes in one session and the
change may come hours later when no session runs. So there is one :class:`Subscriptions` per tree
(:func:`subscriptions_for`), which listens to the tree and marks a subscription dirty when a node
it watches (or one above or below it) changes. Whoever drives the device asks
:meth:`Subscriptions.pending_pushes` for the HTTP PUTs to send (the DM 2.0 engine does it inside a
session, a runner between sessions; ``on_change`` tells it there is something to send) and hands
the answers to :meth:`Subscriptions.push_result`, which retries once with another MO media type on
415 + ``OMADM-Accept`` (1.3).

Decisions: the watched nodes are those the ClientURI resolved to at SUB time (a wildcard does not
pick up instances created later); a change made by the subscribing server itself is not pushed
back to it (it knows); a watched node that disappears is pushed as an empty serialization array
``[]``; a subscription whose node the server may no longer read is skipped, not dropped. Kept in
memory only: a restarted emulator has no subscriptions (servers subscribe again).
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from emulator.errors import EmulatorError
from emulator.protocol.actions import HttpRequest, HttpResult, header
from emulator.protocol.dm2 import media
from emulator.protocol.dm2.executor import Actor, parse, read
from emulator.protocol.dm2.moser import encode_mos
from emulator.tree import Tree, TreeEvent
from emulator.tree import uri as uris
from emulator.tree.clienturi import ResolveError, unparse_client_uri

Path = tuple[str, ...]


@dataclass(slots=True)
class Subscription:
    server_id: str
    perms: frozenset[str]
    client_uri: str
    server_uri: str
    watched: tuple[Path, ...]
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = media.MO_JSON
    dirty: bool = False
    pushes: int = 0


@dataclass(slots=True)
class _InFlight:
    sub: Subscription
    request: HttpRequest
    retried: bool = False


def _related(changed: Path, watched: Path) -> bool:
    n = min(len(changed), len(watched))
    return changed[:n] == watched[:n]


class Subscriptions:
    """The SUB registry of one tree (see module doc)."""

    def __init__(self, tree: Tree) -> None:
        self._tree = weakref.ref(tree)
        self._subs: dict[tuple[str, str], Subscription] = {}
        self._inflight: dict[str, _InFlight] = {}
        self._ids = itertools.count(1)
        self.on_change: Callable[[], None] | None = None
        # Listen for the tree's life and never unsubscribe: keeping the unsubscribe closure would
        # hold the tree strongly and keep it alive in the weak registry below.
        tree.subscribe(self._on_event)

    def __len__(self) -> int:
        return len(self._subs)

    @property
    def items(self) -> list[Subscription]:
        return list(self._subs.values())

    def find(self, server_id: str, client_uri: str) -> Subscription | None:
        return self._subs.get((server_id, client_uri))

    def add(self, sub: Subscription) -> None:
        """Subscribe (a second SUB of the same ClientURI by the same server replaces the first)."""
        self._subs[(sub.server_id, sub.client_uri)] = sub

    def remove(self, server_id: str, client_uri: str) -> bool:
        """UNSUB; False when this server has no subscription with exactly that ClientURI (404)."""
        return self._subs.pop((server_id, client_uri), None) is not None

    def clear(self) -> None:
        self._subs.clear()
        self._inflight.clear()

    def _on_event(self, event: TreeEvent) -> None:
        try:
            changed = uris.split(event.path)
        except EmulatorError:
            return
        if not self._subs:
            return
        touched = False
        for sub in self._subs.values():
            if event.by is not None and event.by == sub.server_id:
                continue
            if not sub.dirty and any(_related(changed, w) for w in sub.watched):
                sub.dirty = True
                touched = True
        if touched and self.on_change is not None:
            self.on_change()

    @property
    def dirty(self) -> bool:
        return any(s.dirty for s in self._subs.values())

    def pending_pushes(self, server_id: str | None = None) -> list[HttpRequest]:
        """The PUTs for every changed subscription (of one server if given); clears their flag."""
        tree = self._tree()
        if tree is None:
            return []
        out: list[HttpRequest] = []
        for sub in self._subs.values():
            if not sub.dirty or (server_id is not None and sub.server_id != server_id):
                continue
            sub.dirty = False
            try:
                uri = replace(parse(sub.client_uri), cv=None)
                _, items, _ = read(tree, unparse_client_uri(uri), Actor(sub.server_id, sub.perms))
                body = encode_mos(items)
            except ResolveError:
                body = b"[]"
            except EmulatorError:
                continue
            request = self._request(sub, body, sub.content_type)
            out.append(request)
        return out

    def _request(self, sub: Subscription, body: bytes, content_type: str) -> HttpRequest:
        request = HttpRequest(
            request_id=f"push-{next(self._ids)}",
            method="PUT",
            url=sub.server_uri,
            body=body,
            headers={**sub.headers, "Content-Type": content_type},
        )
        self._inflight[request.request_id] = _InFlight(sub, request)
        return request

    def is_push(self, request_id: str) -> bool:
        return request_id in self._inflight

    def push_result(self, request_id: str, result: HttpResult) -> HttpRequest | None:
        """Take a push's answer; returns a retry when the server wants another MO media type."""
        flight = self._inflight.pop(request_id, None)
        if flight is None:
            return None
        sub = flight.sub
        if 200 <= result.status < 300:
            sub.pushes += 1
            return None
        if result.status == 415 and not flight.retried:
            accept = header(result.headers, media.HEADER_ACCEPT)
            choice = media.negotiate(accept, media.MO_JSON_ACCEPTED) if accept else None
            if choice and choice != sub.content_type:
                sub.content_type = choice
                retry = self._request(sub, flight.request.body, choice)
                self._inflight[retry.request_id].retried = True
                return retry
        sub.dirty = True  # not delivered: send again with the next push
        return None


_registry: weakref.WeakKeyDictionary[Tree, Subscriptions] = weakref.WeakKeyDictionary()


def subscriptions_for(tree: Tree) -> Subscriptions:
    """The device's subscription registry (one per tree, created on first use)."""
    subs = _registry.get(tree)
    if subs is None:
        subs = _registry[tree] = Subscriptions(tree)
    return subs
