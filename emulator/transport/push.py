"""The push channel of devices behind NAT: long-polls of ``GET <server>/push/<DevID>`` (PROTOCOL 1.19 item 6).

A device behind NAT cannot be reached by a server, so it keeps a request open at the server instead;
the server answers 200 with the Package#0 bytes when it has one (``application/vnd.oma.dm.notification``)
or 204 when its wait ran out, and the device asks again at once. A notification that comes back goes
to the :data:`~emulator.transport.listener.Deliver` callback (the fleet's ``receive_notification``),
which checks it as any other (DM-HLF-002, DM-HLF-008).

Which devices poll follows their bearers: a device whose current bearer is behind NAT and that has a
DM 2.0 account, or is a DM 1.3 device, polls; one that leaves NAT (or the fleet) stops, one that enters NAT starts. Bearers
change without an event of their own, so a watcher looks every ``recheck_s``: a handful of attribute
reads per device, nothing that touches the tree. A device polls each distinct server its DM 2.0
accounts name, once (the reference server has one push queue per device for all its authorities).

DM 1.3's HTTP push binding is the same channel (README "DM 1.3" [P]): a DM 1.3 device also polls the
servers of its DM 1.x accounts (HTTP Digest, or Basic for a Basic account, with the account's
client credentials), and a factory-fresh one with no account polls the origin of its BootConfig's
bootstrap server (Basic ``bootstrap`` and its factory secret), for a server-initiated bootstrap. A
DM 1.x Package 0 (``application/vnd.syncml.notification``) goes to ``deliver`` as "dm12"; a bootstrap
message (``application/vnd.syncml.dm+wbxml; SEC=..; MAC=..``) to the ``bootstrap`` callback.

The long-polls use their own pooled transport, so held requests never take the connections that
sessions need. It allows ``max_connections`` (1000) at once: beyond that many devices behind NAT,
polls wait their turn for a connection (a notification then waits longer) rather than exhausting the
process's file descriptors, which the in-process demo server shares. A server that is down or refuses is
asked again after a back-off (doubling up to ``backoff[1]``, with jitter so a fleet does not retry in
step); nothing here raises for what the network does.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol
from urllib.parse import quote, urlsplit

from emulator.mo import bootstrap as boot
from emulator.mo.accounts import Account
from emulator.protocol.actions import HttpResult, header
from emulator.protocol.dm2.digest import DigestClient
from emulator.protocol.dm2.media import HEADER_DEVID
from emulator.transport.http import HttpTransport, TlsConfig
from emulator.transport.listener import Deliver, Delivery
from emulator.tree import Tree

log = logging.getLogger(__name__)

DM_MESSAGE = "application/vnd.syncml.dm+"
"""What the media type of a DM message pushed to a device starts with: a bootstrap (README "DM 1.3")."""

PUSH_WAIT_S = 25.0
"""How long one long-poll asks the server to hold (the reference server's own limit)."""
MAX_PUSH_BODY = 64 * 1024
"""Largest answer a long-poll reads: a notification (Package#0) is a few hundred bytes (DM 2.0 caps it
at 4 KiB); a push channel sending megabytes is refused as it reads (docs/security.md)."""


def push_base(server_uri: str) -> str:
    """The origin of an account's SrvURI, where ``/push/<DevID>`` lives ('' for a URI without one)."""
    try:
        parts = urlsplit(server_uri)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


class Pollable(Protocol):
    """What the poller reads of a device (a VirtualDevice is one): where it polls and whether it must."""

    @property
    def id(self) -> str: ...

    @property
    def behind_nat(self) -> bool: ...

    def accounts(self, protocol: str | None = None) -> list[Account]: ...

    @property
    def tree(self) -> Tree: ...

    @property
    def dm_version(self) -> str: ...


class PushPoller:
    """``PushPoller(devices, deliver).start()`` keeps the long-polls of the devices behind NAT; ``await stop()``.

    ``devices`` is the live mapping of the fleet's devices (DevID -> device; added and removed devices
    are followed), ``deliver`` where a notification that comes back goes.

    Options (all keyword): ``wait_s`` the hold asked of the server (a number, or a function read
    before each poll); ``server_uri`` polls ``<server_uri>/push/<DevID>`` instead of the accounts'
    origins (an explicit endpoint); ``nat_only=False`` polls every watched device whatever its bearer
    (a server that only queues notifications); ``ready(dev_id)`` is awaited before each poll (a crashed
    device waits for its restart); ``on_problem(dev_id, text)`` hears once why a device cannot poll;
    ``bootstrap(dev_id, body, content_type)`` takes a pushed bootstrap message (None: refused unread).
    """

    def __init__(
        self,
        devices: Mapping[str, Pollable],
        deliver: Deliver,
        transport: HttpTransport | None = None,
        *,
        wait_s: float | Callable[[], float] = PUSH_WAIT_S,
        server_uri: str | None = None,
        nat_only: bool = True,
        backoff: tuple[float, float] = (1.0, 30.0),
        jitter: float = 0.2,
        recheck_s: float = 1.0,
        max_connections: int = 1000,
        ready: Callable[[str], Awaitable[object]] | None = None,
        on_problem: Callable[[str, str], None] | None = None,
        bootstrap: Callable[[str, bytes, str], Delivery] | None = None,
    ) -> None:
        self.devices = devices
        self.deliver = deliver
        self.wait_s = wait_s
        self.server_uri = server_uri.rstrip("/") if server_uri else None
        self.nat_only = nat_only
        self.backoff = backoff
        self.jitter = jitter
        self.recheck_s = recheck_s
        self.ready = ready
        self.on_problem = on_problem
        self.bootstrap = bootstrap
        self._owns_transport = transport is None
        longest = wait_s if isinstance(wait_s, int | float) else PUSH_WAIT_S
        self.transport = transport or HttpTransport(timeout=longest + 10, max_connections=max_connections)
        self.delivered = 0
        self._watched: set[str] | None = None  # None: every device of the fleet, as it is now
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._complained: set[str] = set()
        self._rng = random.Random()
        self._digests: dict[tuple[str, str], DigestClient] = {}  # (DevID, ServerID): its Digest state

    # ------------------------------------------------------------------ control

    @property
    def polling(self) -> set[str]:
        """The devices with a long-poll loop running now."""
        return {d for d, t in self._tasks.items() if not t.done()}

    def start(self, dev_ids: Iterable[str] | None = None) -> None:
        """Watch these devices (None: the whole fleet, devices added later included); needs a running loop."""
        started = self._watcher is not None
        if dev_ids is None or (started and self._watched is None):
            self._watched = None  # the whole fleet stays the whole fleet
        else:
            self._watched = (self._watched or set()) | set(dev_ids)
        self.reconcile()
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._watch())

    async def stop(self) -> None:
        """Stop every long-poll (requests in flight are dropped); the own transport is closed."""
        tasks = [t for t in (self._watcher, *self._tasks.values()) if t is not None]
        self._watcher = None
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_transport:
            await self.transport.aclose()

    def should_poll(self, dev_id: str) -> bool:
        """Watched, in the fleet and (unless ``nat_only`` is off) behind NAT on its current bearer."""
        if self._watched is not None and dev_id not in self._watched:
            return False
        dev = self.devices.get(dev_id)
        return dev is not None and (not self.nat_only or dev.behind_nat)

    def reconcile(self) -> None:
        """Start the loops of devices that should poll and stop the others (bearer changes, removals)."""
        candidates = self.devices.keys() if self._watched is None else self._watched
        for dev_id in list(candidates):
            task = self._tasks.get(dev_id)
            if (task is None or task.done()) and self.should_poll(dev_id):
                self._tasks[dev_id] = asyncio.ensure_future(self._loop(dev_id))
        for dev_id, task in list(self._tasks.items()):
            if task.done() or not self.should_poll(dev_id):
                task.cancel()
                del self._tasks[dev_id]

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_s)
            self.reconcile()

    # ------------------------------------------------------------------ one device

    def urls(self, dev: Pollable, wait: float) -> list[tuple[str, TlsConfig, Account]]:
        """The long-poll requests of one device: one per distinct server of its DM 2.0 accounts (and,
        DM 1.3, of its DM 1.x accounts, or its bootstrap server while it is factory-fresh), each with
        the account whose TLS settings and HTTP credentials it uses (a push channel hands out a
        device's notifications, so the server asks who is polling)."""
        accounts = dev.accounts("dm2")
        if dev.dm_version == "1.3":
            accounts = accounts + dev.accounts("dm12") or self._factory(dev)
        out: dict[str, tuple[TlsConfig, Account]] = {}
        for account in accounts:
            base = self.server_uri or push_base(account.server_uri)
            if base:
                url = f"{base}/push/{quote(dev.id, safe=':@')}?wait={wait:g}"
                out.setdefault(url, (TlsConfig.for_account(account), account))
        return [(url, tls, account) for url, (tls, account) in out.items()]

    @staticmethod
    def _factory(dev: Pollable) -> list[Account]:
        """A factory-fresh DM 1.3 device waits for a pushed bootstrap where its bootstrap server is,
        proving itself with its factory secret (HTTP Basic user ``bootstrap``, as its GET does)."""
        entry = boot.pending(dev.tree)
        if entry is None or not entry.server_uri:
            return []
        return [Account(server_id=boot.BASIC_USER, protocol="dm12", server_uri=entry.server_uri, auth="basic",
                        client_user=boot.BASIC_USER, client_secret=entry.secret)]

    def _credentials(self, dev_id: str, account: Account, url: str) -> dict[str, str]:
        """The headers of one poll: the DevID, and Basic, or Digest once the server has challenged."""
        from emulator.protocol.dm2.client import basic_auth, request_uri

        headers = {HEADER_DEVID: dev_id}
        basic = basic_auth(account)
        if basic:
            headers["Authorization"] = basic
        elif _digest(account):
            digest = self._digests.get((dev_id, account.server_id))
            value = digest.authorization("GET", request_uri(url)) if digest is not None else None
            if value:
                headers["Authorization"] = value
        return headers

    def _challenged(self, dev_id: str, account: Account, result: HttpResult) -> bool:
        """A 401 a Digest account can answer: True when the poll should go again at once."""
        if result.status != 401 or not _digest(account):
            return False
        challenge = header(result.headers, "www-authenticate") or ""
        digest = self._digests.setdefault((dev_id, account.server_id),
                                          DigestClient(account.client_user, account.client_secret))
        return digest.take(challenge) is not None

    def _problem(self, dev_id: str, text: str) -> None:
        if dev_id in self._complained:
            return
        self._complained.add(dev_id)
        log.info("%s: %s", dev_id, text)
        if self.on_problem is not None:
            self.on_problem(dev_id, text)

    async def _loop(self, dev_id: str) -> None:
        failures = 0
        while True:
            if self.ready is not None:
                await self.ready(dev_id)
            dev = self.devices.get(dev_id)
            if dev is None:
                return
            wait = self.wait_s() if callable(self.wait_s) else self.wait_s
            requests = self.urls(dev, wait)
            if not requests:
                self._problem(dev_id, "cannot wait for notifications: it has no DM 2.0 account (nor, DM 1.3, "
                                      "a DM 1.x account or a bootstrap server) with an http(s) server address")
                await asyncio.sleep(self.backoff[1])
                continue
            self._complained.discard(dev_id)
            answers = await asyncio.gather(*(self._poll_once(dev_id, url, tls, account)
                                             for url, tls, account in requests))
            if all(answers):
                failures = 0
                continue
            failures += 1
            low, high = self.backoff
            delay = min(high, low * 2 ** (failures - 1))
            if self.jitter:
                delay *= 1 + self._rng.uniform(-self.jitter, self.jitter)
            await asyncio.sleep(delay)

    async def _poll_once(self, dev_id: str, url: str, tls: TlsConfig, account: Account) -> bool:
        """One long-poll; True when the server answered as a push channel does (200 or 204)."""
        result = await self.transport.request("GET", url, headers=self._credentials(dev_id, account, url), tls=tls,
                                              max_body=MAX_PUSH_BODY)
        if self._challenged(dev_id, account, result):
            result = await self.transport.request("GET", url, headers=self._credentials(dev_id, account, url),
                                                  tls=tls, max_body=MAX_PUSH_BODY)
        if result.status == 204:
            return True
        if result.status != 200:
            log.debug("%s: push %s: %s", dev_id, url, result.error or f"HTTP {result.status}")
            return False
        ctype = header(result.headers, "content-type") or ""
        if DM_MESSAGE in ctype.lower():  # a server-initiated bootstrap (DM 1.3; XML is refused there)
            if self.bootstrap is None:
                log.info("%s: a pushed bootstrap message, and nothing here takes bootstraps", dev_id)
            elif self.bootstrap(dev_id, result.body, ctype).known:
                self.delivered += 1
            return True
        protocol = "dm12" if "syncml" in ctype.lower() else "dm2"
        if self.deliver(dev_id, result.body, protocol).known:  # (not when it left the fleet meanwhile)
            self.delivered += 1
        return True


def _digest(account: Account) -> bool:
    """Whether a poll authenticates with HTTP Digest: a DM 2.0 Digest account, or any DM 1.x account
    that is not Basic (its secret never goes over the wire; the server challenges first)."""
    return account.auth == "digest" or (account.protocol == "dm12" and account.auth != "basic")
