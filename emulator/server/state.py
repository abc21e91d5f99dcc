"""What the reference server keeps in memory, shared by its protocol handlers.

One object per running server app. Each protocol module keeps its own part (set up by its
`setup_*` function) so the modules never reach into each other: DM 1.2 fills `dm12` and
`dm12_sessions`; other protocols add their own attributes the same way.

The DM 2.0 part keeps, per device (:class:`DeviceLog`), everything the device told the server
(initiations, alerts, statuses, GET results, instances it reported, uploads to the data repository)
so tests and the admin page can check what happened; and what the server will do next: the script
of each device (a list of steps, one Package#2 each, see :mod:`emulator.server.dm2`), the open web
UI sessions and the notifications waiting on the push channel. Nothing here does network I/O.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from emulator.protocol.dm2 import media
from emulator.protocol.dm2.messages import Alert, Initiation, StatusEntry
from emulator.protocol.dm2.moser import MOSerialization, encode_mos
from emulator.protocol.dm2.notification import build_notification, parse_notification
from emulator.server.authorities import Authority, SecretPair, UnknownAuthorityError
from emulator.server.campaigns import Campaigns
from emulator.server.dm2_auth import Dm2Guard, Verdict
from emulator.server.faults import Fault, Faults
from emulator.server.packages import PackageRepo
from emulator.util.admin_token import new_admin_token

REPO_QUOTA_UPLOADS = 1000
"""Uploads (HPUT/HPOST/SUB pushes) the server keeps per device; the next one is refused (507)."""

REPO_QUOTA_BYTES = 16 << 20
"""Bytes of uploads the server keeps per device (16 MiB); an upload past it is refused (507)."""

Step = list[list[str]]
"""One DM 2.0 Package#2 of a script: its commands as string arrays, with ``${...}`` placeholders."""


PageFlowOutcome = Literal["", "submitted", "not shown"]
"""The server's side of a web UI flow: "" while open, "submitted" once its last page was posted, "not
shown" when the session ended before the device opened it (the device's own word for the end of a
flow is a UserOutcome)."""


class Pushed(bytes):
    """A message waiting on a device's push channel with the media type it goes out with: a DM 1.x
    Package 0 or a bootstrap message (plain ``bytes`` in the queue are a DM 2.0 Package#0)."""

    media: str

    def __new__(cls, raw: bytes, media_type: str) -> Pushed:
        item = super().__new__(cls, raw)
        item.media = media_type
        return item


def pushed_media(item: bytes) -> str:
    """The Content-Type a push channel answers with for one queued item."""
    return item.media if isinstance(item, Pushed) else media.NOTIFICATION


@dataclass(slots=True)
class Upload:
    """Something a device PUT or POSTed to the data repository (HPUT/HPOST/SUB push)."""

    dev_id: str
    method: str
    path: str
    content_type: str
    body: bytes
    items: list[MOSerialization] | None
    ts: float


@dataclass(slots=True)
class UiSession:
    """One web UI interaction opened by a SHOW (or from the index page, with no device)."""

    token: str
    flow: str
    dev_id: str
    base: str
    answers: dict[str, str] = field(default_factory=dict)
    outcome: PageFlowOutcome = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class DeviceLog:
    """Everything one device did with the DM 2.0 side of the server."""

    dev_id: str
    sessions: int = 0
    initiations: list[Initiation] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)  # echoed in ServerInitiatedMgmt
    statuses: list[tuple[list[str], StatusEntry]] = field(default_factory=list)
    gets: dict[str, dict[str, Any]] = field(default_factory=dict)  # ClientURI -> MOData
    instances: dict[str, list[str]] = field(default_factory=dict)  # MOID -> instance ClientURIs
    uploads: list[Upload] = field(default_factory=list)
    notifications_sent: list[int] = field(default_factory=list)
    ui: list[UiSession] = field(default_factory=list)
    resume_ui: list[UiSession] = field(default_factory=list)  # ui_resume "client": awaiting the device's return
    problems: list[str] = field(default_factory=list)
    completed: int = 0

    def alerts_of(self, alert_type: str) -> list[Alert]:
        return [a for a in self.alerts if a.alert_type == alert_type]

    def status_of(self, name: str) -> list[StatusEntry]:
        """Statuses of every command called ``name`` (GET, HGET, ...), in order."""
        return [s for cmd, s in self.statuses if cmd and cmd[0].upper() == name.upper()]


@dataclass
class ServerState:
    """`base_url` is where clients reach the server (e.g. http://127.0.0.1:8700), '' until known.

    DM 2.0: ``show_hold_s`` is how long a Package#3 answer is held while a web UI session is open
    (PROTOCOL 1.19 item 5), or with ``ui_resume`` "client" the session ENDs after the SHOW and the
    flow's result commands wait for the session the device opens when the page ends (seeds/004 B.3); ``push_wait_s`` how long ``/push/<DevID>`` waits for a notification;
    ``default_flow`` the web UI flow of the demo script; ``server_id``/``noti_secret``/``noti_data``
    sign notifications (the demo profiles' DMAcc Auth/Noti). ``dm2_authorities`` (ServerID ->
    Authority; None: learnt from the shipped profiles when the app is set up) are the authorities
    played at ``/dm2/<ServerID>`` (``server_id`` at ``/dm2``): every request must authenticate as the
    device it names, with one of its account's secrets (:mod:`emulator.server.dm2_auth`).
    """

    base_url: str = ""
    dm12: Any = None  # emulator.server.dm12.Dm12Server once setup_dm12 ran
    sessionless: Any = None  # emulator.server.sessionless.SessionlessDesk once a sessionless message went out
    bootstraps: list[str] = field(default_factory=list)  # DevIDs the bootstrap route provisioned, in order
    dm12_sessions: dict[str, list[Any]] = field(default_factory=dict)  # DevId -> its Dm12Sessions, oldest first
    dm12_scripts: dict[str, Any] = field(default_factory=dict)  # DevId -> a Dm12Config.script for its next session
    dm2_once: dict[str, list[Step]] = field(default_factory=dict)  # DevID -> the steps of its next session only
    extra: dict[str, Any] = field(default_factory=dict)
    # --- DM 2.0 (emulator.server.dm2, emulator.server.ui_flows)
    show_hold_s: float = 25.0
    ui_resume: str = "held"  # "client": after a SHOW, END; the device opens the session that goes on
    push_wait_s: float = 25.0
    default_flow: str = "wifi"
    server_id: str = "demo-dm2"
    noti_secret: bytes = b"demo-dm2"
    noti_data: bytes = b"demo-dm2"
    dm2_authorities: dict[str, Authority] | None = None
    dm2_secrets: dict[tuple[str, str], SecretPair] = field(default_factory=dict)  # (ServerID, DevID) -> matched
    dm2_guard: Dm2Guard = field(default_factory=Dm2Guard)
    dm2_devices: dict[str, DeviceLog] = field(default_factory=dict)
    dm2_scripts: dict[str, list[Step]] = field(default_factory=dict)
    repo: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    ui_sessions: dict[str, UiSession] = field(default_factory=dict)
    dm2_sessions: dict[tuple[str, str], Any] = field(default_factory=dict)  # (ServerID, DevID) -> dm2.ServerSession
    faults: Faults = field(default_factory=Faults)  # misbehaviour on request (emulator.server.faults)
    packages: PackageRepo = field(default_factory=PackageRepo)  # firmware/software (emulator.server.packages)
    campaigns: Campaigns = field(default_factory=Campaigns)  # firmware campaigns, generic alerts (.campaigns)
    accounts: list[Any] = field(default_factory=list)  # emulator.server.accounts.ServerAccount, added ones
    # --- access (emulator.server.access)
    admin_token: str = field(default_factory=lambda: new_admin_token())
    device_addresses: set[str] = field(default_factory=set)  # where authenticated devices came from
    repo_quota_uploads: int = REPO_QUOTA_UPLOADS
    repo_quota_bytes: int = REPO_QUOTA_BYTES
    _push: dict[str, asyncio.Queue[bytes]] = field(default_factory=dict, init=False, repr=False)
    _notification_ids: itertools.count = field(default_factory=lambda: itertools.count(1), init=False, repr=False)

    def __post_init__(self) -> None:
        self._seed_repository()

    # ------------------------------------------------------------------ DM 2.0 devices and scripts

    def add_fault(self, kind: str, device: str = "*", **options: Any) -> Fault:
        """Make the server misbehave (see :mod:`emulator.server.faults`); EmulatorError for a bad spec."""
        return self.faults.add(Fault(kind, device, **options))

    def device(self, dev_id: str) -> DeviceLog:
        """The DM 2.0 log of one device (created on first use)."""
        log = self.dm2_devices.get(dev_id)
        if log is None:
            log = self.dm2_devices[dev_id] = DeviceLog(dev_id)
        return log

    def set_script(self, dev_id: str, steps: list[Step]) -> None:
        """The DM 2.0 steps every session of ``dev_id`` runs (``"*"``: every device without one)."""
        self.dm2_scripts[dev_id] = [[list(cmd) for cmd in step] for step in steps]

    def script_of(self, dev_id: str) -> list[Step] | None:
        """A copy of the steps set for ``dev_id`` (else for ``"*"``); None: the protocol's default
        (``emulator.server.dm2.script_for`` chooses it)."""
        steps = self.dm2_scripts.get(dev_id, self.dm2_scripts.get("*"))
        return None if steps is None else [[list(cmd) for cmd in step] for step in steps]

    # ------------------------------------------------------------------ data repository

    def put_repo(self, path: str, data: list[MOSerialization] | bytes, content_type: str = "") -> None:
        """Make ``/repo/<path>`` answer with MO serialization (or raw bytes) for HGET."""
        if isinstance(data, bytes):
            self.repo[path.lstrip("/")] = (content_type or "application/octet-stream", data)
        else:
            self.repo[path.lstrip("/")] = (content_type or media.MO_JSON, encode_mos(data))

    def _seed_repository(self) -> None:
        self.put_repo("demo/bookmark", [MOSerialization(
            client_uri="urn:oma:mo:ext-dmemulator-bookmark:1.0//",
            mo_data={"Bookmark": {"Name": "Operator self-care", "URL": "https://care.example.net/",
                                  "Folder": "Operator"}},
        )])
        self.put_repo("demo/sessioninfo", [MOSerialization(
            client_uri="urn:oma:mo:oma-sessioninfomo:1.0//",
            mo_data={"SessionInfo": {"CBT": "3", "ROAMING": "2"}},
        )])

    # ------------------------------------------------------------------ notifications

    def push_queue(self, dev_id: str) -> asyncio.Queue[bytes]:
        queue = self._push.get(dev_id)
        if queue is None:
            queue = self._push[dev_id] = asyncio.Queue()
        return queue

    def push(self, dev_id: str, raw: bytes, media_type: str) -> None:
        """Queue a DM 1.x message (a Package 0, a bootstrap) for ``dev_id``'s push channel."""
        self.push_queue(dev_id).put_nowait(Pushed(raw, media_type))

    def notify(self, dev_id: str, *, req_mos: bool = False, now: float | None = None,
               server_id: str | None = None) -> int:
        """Queue a Package#0 for ``dev_id`` on its push channel; returns its NOTIFICATION-ID.

        ``server_id``: from another authority than ``self.server_id``, signed as the profiles provision
        DMAcc Auth/Noti (secret: the account's server secret or else the ServerID; data: the ServerID).
        A device that can be reached gets it on its listener instead (:mod:`emulator.server.notify_out`;
        which channel a notification takes is chosen by :meth:`emulator.server.control.ServerControl.notify`).
        """
        raw, notification_id = self.dm2_package0(dev_id, req_mos=req_mos, now=now, server_id=server_id)
        self.push_queue(dev_id).put_nowait(raw)
        return notification_id

    def dm2_package0(self, dev_id: str, *, req_mos: bool = False, now: float | None = None,
                     server_id: str | None = None) -> tuple[bytes, int]:
        """A signed DM 2.0 Package#0 for ``dev_id`` and its NOTIFICATION-ID, noted as sent (see :meth:`notify`)."""
        notification_id = next(self._notification_ids) & 0xFFFF
        sid, secret, data = self.server_id, self.noti_secret, self.noti_data
        if server_id is not None and server_id != self.server_id:
            authority = self.dm2_authority(server_id)
            if authority is None:
                raise UnknownAuthorityError(f"this server plays no DM 2.0 authority {server_id!r}")
            pair = self.dm2_secrets.get((server_id, dev_id)) or next(iter(authority.secrets), SecretPair("", ""))
            sid, secret, data = server_id, (pair.server or server_id).encode(), server_id.encode()
        raw = build_notification(
            sid, secret=secret, auth_data=data,
            notification_id=notification_id, timestamp=int(time.time() if now is None else now),
            req_mos=req_mos,
        )
        sent = self.faults.package0(dev_id, "dm2", raw)
        if sent is not raw:  # a replay carries its own NOTIFICATION-ID
            raw, notification_id = sent, parse_notification(sent).notification_id or notification_id
        self.device(dev_id).notifications_sent.append(notification_id)
        return raw, notification_id

    # ------------------------------------------------------------------ authentication

    def dm2_authority(self, server_id: str | None = None) -> Authority | None:
        """The DM 2.0 authority a route plays (None: ``server_id``'s); None for one not played here.

        With no learnt table (``dm2_authorities`` None or empty) only the default is played, and
        nobody can authenticate to it (it has no secrets).
        """
        sid = server_id or self.server_id
        known = (self.dm2_authorities or {}).get(sid)
        if known is None and sid == self.server_id:
            return Authority(sid, "dm2", ("basic",), ())
        return known

    def authenticate(self, header: str | None, *, server_id: str | None = None, dev_id: str, method: str = "POST",
                     uri: str = "/dm2", peer_cn: str | None = None) -> Verdict:
        """Whether a DM 2.0 request may act for ``dev_id`` (see :mod:`emulator.server.dm2_auth`);
        remembers the pair the device matched (it signs that device's notifications)."""
        authority = self.dm2_authority(server_id)
        if authority is None:
            return Verdict(None, None, f"this server plays no DM 2.0 authority {server_id!r}")
        verdict = self.dm2_guard.check(authority, dev_id, header, method=method, uri=uri, peer_cn=peer_cn)
        if verdict.pair is not None:
            self.dm2_secrets[(authority.server_id, dev_id)] = verdict.pair
        return verdict


STATE_KEY = web.AppKey("state", ServerState)
"""Where ``create_app`` keeps the state on the aiohttp application."""


def base_url(request: web.Request) -> str:
    """Where clients reach this server: ``state.base_url`` when known, else the request's origin."""
    return request.app[STATE_KEY].base_url.rstrip("/") or _remembered(
        (request.scheme, request.host, ""), lambda: str(request.url.origin()))


def request_base_url(request: web.Request) -> str:
    """The request's URL without its query, as ``str(request.url)`` spells it."""
    return _remembered((request.scheme, request.host, request.raw_path.split("?", 1)[0]),
                       lambda: str(request.url).split("?", 1)[0])


_URLS: dict[tuple[str, str, str], str] = {}
URLS_KEPT = 1024
"""Distinct (scheme, Host, path) the URL helpers above remember; a fleet uses one or two."""


def _remembered(key: tuple[str, str, str], build: Callable[[], str]) -> str:
    """A URL built once per scheme, Host and path, then looked up: yarl's URL building is a
    noticeable share of a message's cost."""
    url = _URLS.get(key)
    if url is None:
        url = build()
        if len(_URLS) >= URLS_KEPT:
            _URLS.clear()
        _URLS[key] = url
    return url


def repo_path(dev_id: str, name: str) -> str:
    """The key of a per-device item in the data repository (``/repo/<key>`` on the wire)."""
    return f"{dev_id}/{name}"

