"""Session > Server connection…: point devices at any DM server; Session > Notify selected device.

The dialog only collects what the user changed; the devices' DMAcc nodes are written by
:func:`emulator.mo.accounts.configure_account` (as the device itself), so the tree panel shows the
change and a headless run could do the same. Only fields the user changed are written: a dialog
opened on many devices shows a value only when they all share it, and leaving a field as it was
keeps each device's own (client user names, for instance, differ per device; ``{dev_id}``,
``{serial}``, ``{imei}``, ``{mac}``, ``{uuid}``, ``{index}`` in the URL or the user name are filled in
per device, as in profiles).

Notifications come from the demo server the window runs, through its control surface (the same one
the admin API uses, :mod:`emulator.server.control`), and travel over the channels a real server
uses: a DM 2.0 device behind NAT gets it on the server's push channel (the fleet's
:class:`PushPoller` long-polls it), any other device is sent it by the server over HTTP to the
fleet's :class:`NotificationListener`. Either way the device checks it as a real one would
(:meth:`Fleet.deliver_notification`). Only a window without a listener hands it over directly.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from PySide6.QtCore import QObject, Qt, QUrl
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QRadioButton,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from emulator.device.profile import fill
from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError
from emulator.events import AlertRaised, Event, SessionStarted
from emulator.fleet.fleet import Fleet
from emulator.mo.accounts import (
    AUTH_SCHEMES_DM2,
    AUTH_TYPES,
    SERVER_AUTH_POLICIES,
    UI_RESUME_STYLES,
    Account,
    configure_account,
)
from emulator.protocol.actions import HttpResult
from emulator.server.control import ServerControl
from emulator.transport.http import HttpTransport, TlsConfig
from ui.fleet_panel import FleetPanel
from ui.progress import ChunkedJob
from ui.settings import recent_servers, remember_servers
from ui.traffic_failures import http_reason

KEEP = "(keep each device's)"
PROTOCOL_TITLES = {"dm12": "DM 1.2 / 1.3 (SyncML)", "dm2": "DM 2.0"}
PREFILL_SAMPLE = 500  # devices read to find shared values (the rest keep theirs unless changed anyway)
PLACEHOLDER_HELP = "{dev_id}, {serial}, {imei}, {mac}, {uuid} and {index} are filled in per device"


# ---------------------------------------------------------------------------------------------
# what the dialog collects, and applying it (no widgets here)


@dataclass(slots=True)
class AccountChanges:
    """Settings changed for one protocol's account of each device; None keeps the device's own."""

    server_uri: str | None = None
    server_id: str | None = None
    auth: str | None = None
    client_user: str | None = None
    client_secret: str | None = None
    server_secret: str | None = None
    server_auth: str | None = None  # DM 1.x only: how the server proves itself
    ui_resume: str | None = None  # DM 2.0 only: who goes on after a SHOW's page


@dataclass(slots=True)
class TlsChanges:
    ca_file: str | None = None
    verify: bool | None = None
    client_cert: str | None = None
    client_key: str | None = None
    client_cert_password: str | None = None


_T = TypeVar("_T")


def _changed(now: _T, before: _T) -> _T | None:
    """``now`` when the user changed it, None (leave it alone) when not."""
    return now if now != before else None


@dataclass(slots=True)
class ServerChanges:
    """``dm12``/``dm2`` None: that protocol's accounts are left alone (TLS too)."""

    device_ids: list[str]
    dm12: AccountChanges | None = None
    dm2: AccountChanges | None = None
    tls: TlsChanges = field(default_factory=TlsChanges)

    def urls(self) -> list[str]:
        return [c.server_uri for c in (self.dm12, self.dm2) if c is not None and c.server_uri]

    def chosen(self) -> dict[str, str]:
        """protocol -> the server URL the user typed or picked for it (only where it changed)."""
        return {p: c.server_uri for p, c in (("dm12", self.dm12), ("dm2", self.dm2)) if c is not None and c.server_uri}


def _device_values(dev: VirtualDevice) -> dict[str, object]:
    ident = dev.identity
    return {"dev_id": dev.id, "serial": ident.serial, "imei": ident.imei or "", "mac": ident.mac,
            "uuid": ident.uuid, "index": dev.index}


def _fill(text: str | None, values: dict[str, object]) -> str | None:
    if text is None or "{" not in text:
        return text
    try:
        return fill(text, values)
    except (ValueError, IndexError, AttributeError):
        return text  # braces that are not a placeholder: taken as written


def apply_to_device(dev: VirtualDevice, changes: ServerChanges) -> list[str]:
    """Write the changes into one device's primary account of each chosen protocol; problems back."""
    problems = []
    values = _device_values(dev)
    for protocol in ("dm12", "dm2"):
        acc_changes: AccountChanges | None = getattr(changes, protocol)
        if acc_changes is None:
            continue
        accounts = dev.accounts(protocol)
        if not accounts:
            if protocol in dev.profile.protocols:
                problems.append(f"{dev.id}: no {PROTOCOL_TITLES[protocol]} account to change")
            continue
        kw: dict[str, Any] = {f.name: getattr(acc_changes, f.name) for f in fields(AccountChanges)}
        kw.update({f.name: getattr(changes.tls, f.name) for f in fields(TlsChanges)})
        kw["server_uri"] = _fill(kw["server_uri"], values)
        kw["client_user"] = _fill(kw["client_user"], values)
        if protocol == "dm2":
            kw.pop("server_secret")
            kw.pop("server_auth")
        else:
            kw.pop("ui_resume")
        try:
            configure_account(dev.tree, accounts[0], **kw)
        except EmulatorError as exc:
            problems.append(f"{dev.id} ({protocol}): {exc}")
    return problems


# ---------------------------------------------------------------------------------------------
# notifications from the demo server


def notify_device(fleet: Fleet, server: ServerControl, dev_id: str, protocol: str) -> tuple[asyncio.Task | None, str]:
    """Deliver a demo-server notification directly (no channel); (the session's task, "") or (None, why
    it was ignored). Only for a window without a notification listener."""
    delivery = fleet.receive_notification(dev_id, server.package0(dev_id, protocol), protocol)
    return delivery.session, "" if delivery.session is not None else delivery.why or "ignored"


NOTIFY_WAIT_S = 10.0
"""How long to wait for the device's answer (a session, or a rejection) once the notification is out."""


@dataclass(slots=True)
class Notified:
    """What became of one notification: ``session`` is the task of the session it started (None:
    rejected, or not delivered, ``why`` says which); ``channel`` is push, listener or direct ("" when
    nothing could be sent)."""

    device_id: str
    protocol: str
    channel: str
    session: asyncio.Task | None = None
    why: str = ""
    rejected: bool = False  # the device (or its listener) said no; False: it never got an answer


class _DeviceAnswer:
    """Waits for what a device does with a notification: the session it starts (its task is the one
    running when the session announces itself on the bus) or the AlertRaised of a rejection."""

    def __init__(self, fleet: Fleet, dev_id: str) -> None:
        self.dev_id = dev_id
        self.answer: asyncio.Future[asyncio.Task | str] = asyncio.get_running_loop().create_future()
        self._stop = fleet.bus.subscribe(self._note, SessionStarted, AlertRaised)

    def _note(self, event: Event) -> None:
        if event.device_id != self.dev_id or self.answer.done():
            return
        if isinstance(event, SessionStarted) and event.reason.startswith("notification"):
            task = asyncio.current_task()
            if task is not None:
                self.answer.set_result(task)
        elif isinstance(event, AlertRaised) and event.alert_type == "notification rejected":
            self.answer.set_result(event.detail)

    async def wait(self, timeout: float) -> asyncio.Task | str | None:
        try:
            return await asyncio.wait_for(asyncio.shield(self.answer), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        self._stop()  # unsubscribing twice is harmless


async def notify_over_channel(fleet: Fleet, server: ServerControl, dev_id: str, protocol: str, *,
                              wait_s: float = NOTIFY_WAIT_S) -> Notified:
    """Have the demo server notify ``dev_id`` over the channel a real one would use (the server's
    choice, :meth:`ServerControl.notify`: the fleet's listener when the device can be reached, else
    the push channel), and wait until the device started its session or rejected the notification.
    EmulatorError when nothing could be sent."""
    dev = fleet.device(dev_id)
    listener = fleet.listener
    if listener is None:  # no channel in this window: hand it over
        task, why = notify_device(fleet, server, dev_id, protocol)
        return Notified(dev_id, protocol, "direct", task, why, rejected=task is None)
    watch = _DeviceAnswer(fleet, dev_id)
    try:
        reachable = not (dev.behind_nat and protocol == "dm2")  # DM 1.2 has no push channel: always tried
        notice = await server.notify(dev_id, protocol, listener=listener.notify_url(dev_id) if reachable else None)
        sent = notice.sent
        if sent is None:
            polling = fleet.push is not None and dev_id in fleet.push.polling
            idle = "queued on the push channel; the device has not picked it up" + (
                "" if polling else " (it is not polling)")
        elif not sent.delivered:
            why = sent.detail.removeprefix("notification ignored: ") if sent.status else sent.detail
            return Notified(dev_id, protocol, notice.channel, None, why or f"HTTP {sent.status}",
                            rejected=bool(sent.status))
        else:
            idle = "the listener took it but no session started"
        answer = await watch.wait(wait_s)
    finally:
        watch.close()
    if isinstance(answer, asyncio.Task):
        return Notified(dev_id, protocol, notice.channel, answer)
    return Notified(dev_id, protocol, notice.channel, None, answer or idle, rejected=answer is not None)


# ---------------------------------------------------------------------------------------------
# the dialog


def same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme.lower(), pa.netloc.lower()) == (pb.scheme.lower(), pb.netloc.lower())


def _shared(values: list[str]) -> str:
    return values[0] if values and all(v == values[0] for v in values) else ""


def keep_or_shared(choices: list[str], values: list[str], tooltip: str) -> QComboBox:
    """A choice for many devices at once: showing the value they all share, or :data:`KEEP` first
    (and chosen) when they differ, so that saving without a change changes nothing."""
    box = QComboBox()
    box.addItems(choices)
    box.setToolTip(tooltip)
    now = _shared(values)
    if not now:
        box.insertItem(0, KEEP)
    box.setCurrentText(now or KEEP)
    return box


class FileField(QWidget):
    """A path with a Browse… button."""

    def __init__(self, title: str, filters: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setClearButtonEnabled(True)
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: self._browse(title, filters))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)

    def _browse(self, title: str, filters: str) -> None:
        name, _ = QFileDialog.getOpenFileName(self, title, self.edit.text(), filters)
        if name:
            self.edit.setText(name)


class AccountForm(QGroupBox):
    """One protocol's settings, pre-filled with what the devices share; ``changes()`` what differs."""

    def __init__(self, protocol: str, accounts: list[Account], recent: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(PROTOCOL_TITLES[protocol], parent)
        self.protocol = protocol
        self.setCheckable(True)
        self.setChecked(bool(accounts))
        self.setToolTip("Unchecked: this protocol's accounts stay as they are")
        self.url = QComboBox()
        self.url.setEditable(True)
        self.url.addItems(recent)
        self.url.setMinimumContentsLength(34)
        self.url.setToolTip(f"The server's DM URL (servers chosen before for {PROTOCOL_TITLES[protocol]} in the "
                            f"list); {PLACEHOLDER_HELP}")
        self.test_button = QPushButton("Test connection")
        self.test_button.setToolTip("Ask this URL once (HTTP GET, with the TLS settings below) and say what "
                                    "answered: reachable, refused, a TLS error or an HTTP error status")
        self.test_result = QLabel("")
        self.test_result.setWordWrap(True)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.test_result.hide()
        url_row = QWidget()
        url_line = QHBoxLayout(url_row)
        url_line.setContentsMargins(0, 0, 0, 0)
        url_line.addWidget(self.url, 1)
        url_line.addWidget(self.test_button)
        self.server_id = QLineEdit()
        self.server_id.setToolTip("The server's ServerID; its ACL grants on the device move to the new id")
        schemes = list(AUTH_TYPES) if protocol == "dm12" else list(AUTH_SCHEMES_DM2)
        self.auth = keep_or_shared(schemes, [a.auth for a in accounts],
                                   "md5 and hmac are DM 1.x schemes; DM 2.0 sends HTTP Basic, HTTP Digest or nothing")
        self.user = QLineEdit()
        self.user.setToolTip(f"Client user name; {PLACEHOLDER_HELP}")
        self.secret = QLineEdit(echoMode=QLineEdit.EchoMode.Password, placeholderText="(unchanged)")
        form = QFormLayout(self)
        form.addRow("Server URL", url_row)
        form.addRow(self.test_result)
        form.addRow("Server ID", self.server_id)
        form.addRow("Authentication", self.auth)
        form.addRow("Client user", self.user)
        form.addRow("Client secret", self.secret)
        self.server_secret: QLineEdit | None = None
        self.server_auth: QComboBox | None = None
        self.ui_resume: QComboBox | None = None
        if protocol == "dm2":
            self.ui_resume = keep_or_shared(
                list(UI_RESUME_STYLES), [a.ui_resume for a in accounts],
                "After a SHOW's web page: held = the server holds its answer until the form is sent; client = "
                "the server ends, the device opens a new session when the page ends")
            form.addRow("After a web page", self.ui_resume)
        if protocol == "dm12":
            self.server_secret = QLineEdit(echoMode=QLineEdit.EchoMode.Password, placeholderText="(unchanged)")
            self.server_secret.setToolTip("What the server proves itself with (SRVCRED)")
            form.addRow("Server secret", self.server_secret)
            self.server_auth = keep_or_shared(
                list(SERVER_AUTH_POLICIES), [a.server_auth for a in accounts],
                "How the server must prove itself: dm = DM-layer credentials (the server secret); transport = a "
                "verified TLS certificate is enough; none = accepted unauthenticated (shown as a warning)")
            form.addRow("Server authentication", self.server_auth)
        # pre-fill with the values every sampled device shares
        self.url.setCurrentText(_shared([a.server_uri for a in accounts]))
        self.server_id.setText(_shared([a.server_id for a in accounts]))
        self.user.setText(_shared([a.client_user for a in accounts]))
        for edit in (self.url.lineEdit(), self.server_id, self.user):
            if edit is not None and accounts and not edit.text():
                edit.setPlaceholderText("(each device's own)")
        self._initial = self._values()

    def _values(self) -> dict[str, str]:
        values = {"server_uri": self.url.currentText().strip(), "server_id": self.server_id.text().strip(),
                  "auth": self.auth.currentText(), "client_user": self.user.text()}
        if self.server_auth is not None:
            values["server_auth"] = self.server_auth.currentText()
        if self.ui_resume is not None:
            values["ui_resume"] = self.ui_resume.currentText()
        return values

    def changes(self) -> AccountChanges | None:
        if not self.isChecked():
            return None
        now = self._values()
        out = AccountChanges(**{k: v for k, v in now.items() if v != self._initial[k] and v != KEEP})
        out.client_secret = self.secret.text() or None
        if self.server_secret is not None:
            out.server_secret = self.server_secret.text() or None
        return out

    def problem(self) -> str:
        """What stops the dialog from closing ('' when fine)."""
        if not self.isChecked():
            return ""
        url = self.url.currentText().strip()
        if not url and self._initial["server_uri"]:
            return f"{PROTOCOL_TITLES[self.protocol]}: the server URL cannot be empty"
        if url and url != self._initial["server_uri"]:
            q = QUrl(url)
            if not (q.isValid() and q.scheme() in ("http", "https") and q.host()):
                return f"{PROTOCOL_TITLES[self.protocol]}: {url!r} is not an http:// or https:// URL"
        if not self.server_id.text().strip() and self._initial["server_id"]:
            return f"{PROTOCOL_TITLES[self.protocol]}: the server ID cannot be empty"
        return ""


class ServerDialog(QDialog):
    """Collects a :class:`ServerChanges` for the selected devices (or all)."""

    def __init__(self, fleet: Fleet, selected: list[str], parent: QWidget | None = None, *,
                 recent: dict[str, list[str]] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Server connection")
        self.fleet = fleet
        self.selected = [d for d in selected if d in fleet.devices]
        if recent is None:
            recent = {p: recent_servers(p) for p in ("dm12", "dm2")}
        sample_ids = (self.selected or list(fleet.devices))[:PREFILL_SAMPLE]
        sample = [fleet.devices[d] for d in sample_ids]

        self.only_selected = QRadioButton(f"Selected devices ({len(self.selected)})")
        self.every_device = QRadioButton(f"All devices ({len(fleet.devices)})")
        (self.only_selected if self.selected else self.every_device).setChecked(True)
        self.only_selected.setEnabled(bool(self.selected))
        scope = QHBoxLayout()
        scope.addWidget(QLabel("Apply to:"))
        scope.addWidget(self.only_selected)
        scope.addWidget(self.every_device)
        scope.addStretch(1)

        self.forms = {p: AccountForm(p, [a for d in sample for a in d.accounts(p)[:1]], recent.get(p, []))
                      for p in ("dm12", "dm2")}
        self._tests: set[asyncio.Task] = set()  # connection tests running (kept: the loop holds weak refs)
        for form in self.forms.values():
            form.test_button.clicked.connect(functools.partial(self.start_test, form))

        tls = QGroupBox("TLS (https:// servers; for the protocols checked above)")
        accounts = [a for d in sample for a in d.accounts()]
        verify_all = [a.verify for a in accounts]
        self.verify = QCheckBox("Verify the server's certificate")
        if verify_all and not all(v == verify_all[0] for v in verify_all):
            self.verify.setTristate(True)
            self.verify.setCheckState(Qt.CheckState.PartiallyChecked)  # mixed: keep each device's
        else:
            self.verify.setChecked(verify_all[0] if verify_all else True)
        self.verify.stateChanged.connect(lambda _: self._show_warning())
        self.warning = QLabel(TlsConfig(verify=False).warning or "")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #b00020; font-weight: bold")
        self.ca_file = FileField("CA certificates", "Certificates (*.pem *.crt *.cer);;All files (*)")
        self.ca_file.edit.setToolTip("Trust only this CA file (PEM) instead of the system trust store")
        self.client_cert = FileField("Client certificate",
                                     "Certificates (*.pem *.crt *.p12 *.pfx);;All files (*)")
        self.client_cert.edit.setToolTip("The device's certificate for mutual TLS: PEM (with its key) or PKCS#12")
        self.client_key = FileField("Client key", "Keys (*.pem *.key);;All files (*)")
        self.client_key.edit.setPlaceholderText("(in the certificate file)")
        self.cert_password = QLineEdit(echoMode=QLineEdit.EchoMode.Password, placeholderText="(unchanged)")
        self.ca_file.edit.setText(_shared([a.ca_file for a in accounts]))
        self.client_cert.edit.setText(_shared([a.client_cert for a in accounts]))
        self.client_key.edit.setText(_shared([a.client_key for a in accounts]))
        tls_form = QFormLayout(tls)
        tls_form.addRow(self.verify)
        tls_form.addRow(self.warning)
        tls_form.addRow("CA file", self.ca_file)
        tls_form.addRow("Client certificate", self.client_cert)
        tls_form.addRow("Client key", self.client_key)
        tls_form.addRow("Certificate password", self.cert_password)
        self._tls_initial = self._tls_values()

        self.problem_label = QLabel("")
        self.problem_label.setStyleSheet("color: #b00020")
        self.problem_label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Apply | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.try_accept)
        buttons.rejected.connect(self.reject)
        self.apply_button = buttons.button(QDialogButtonBox.StandardButton.Apply)

        layout = QVBoxLayout(self)
        layout.addLayout(scope)
        row = QHBoxLayout()
        row.addWidget(self.forms["dm12"])
        row.addWidget(self.forms["dm2"])
        layout.addLayout(row)
        layout.addWidget(tls)
        layout.addWidget(self.problem_label)
        layout.addWidget(buttons)
        self._show_warning()

    def _tls_values(self) -> TlsChanges:
        state = self.verify.checkState()
        verify = None if state == Qt.CheckState.PartiallyChecked else state == Qt.CheckState.Checked
        return TlsChanges(ca_file=self.ca_file.edit.text().strip(), verify=verify,
                          client_cert=self.client_cert.edit.text().strip(),
                          client_key=self.client_key.edit.text().strip())

    def _show_warning(self) -> None:
        self.warning.setVisible(self.verify.checkState() == Qt.CheckState.Unchecked)

    def device_ids(self) -> list[str]:
        return list(self.selected) if self.only_selected.isChecked() else list(self.fleet.devices)

    def changes(self) -> ServerChanges:
        now, before = self._tls_values(), self._tls_initial
        tls = TlsChanges(ca_file=_changed(now.ca_file, before.ca_file), verify=_changed(now.verify, before.verify),
                         client_cert=_changed(now.client_cert, before.client_cert),
                         client_key=_changed(now.client_key, before.client_key))
        tls.client_cert_password = self.cert_password.text() or None
        return ServerChanges(self.device_ids(), self.forms["dm12"].changes(), self.forms["dm2"].changes(), tls)

    def problem(self) -> str:
        for form in self.forms.values():
            if form.problem():
                return form.problem()
        if not any(f.isChecked() for f in self.forms.values()):
            return "choose DM 1.2 and/or DM 2.0"
        if not self.device_ids():
            return "there are no devices"
        return ""

    def try_accept(self) -> None:
        why = self.problem()
        self.problem_label.setText(why)
        if not why:
            self.accept()

    # -- Test connection

    def tls_config(self) -> TlsConfig:
        """The TLS settings as the dialog shows them (mixed verification: verified)."""
        now = self._tls_values()
        verify: bool | str = False if now.verify is False else (now.ca_file or True)
        return TlsConfig(verify, now.client_cert or None, now.client_key or None, self.cert_password.text() or None)

    def start_test(self, form: AccountForm) -> asyncio.Task | None:
        """Test ``form``'s URL (placeholders filled for the first device); the result shows under it."""
        url = form.url.currentText().strip()
        ids = self.device_ids()
        if url and ids and ids[0] in self.fleet.devices:
            url = _fill(url, _device_values(self.fleet.devices[ids[0]])) or url
        q = QUrl(url)
        if not (q.isValid() and q.scheme() in ("http", "https") and q.host()):
            show_test_result(form, False, f"{url!r} is not an http:// or https:// URL" if url else "enter a URL first")
            return None
        try:
            tls = self.tls_config()
            tls.ssl_context() if q.scheme() == "https" else None  # a bad CA or certificate file: said now
        except (EmulatorError, ValueError, OSError) as exc:
            show_test_result(form, False, f"the TLS settings cannot be used: {exc}")
            return None
        form.test_button.setEnabled(False)
        form.test_result.setStyleSheet("")
        form.test_result.setText(f"asking {url} …")
        form.test_result.show()
        task = asyncio.ensure_future(probe_server(url, tls))
        self._tests.add(task)
        task.add_done_callback(functools.partial(self._test_done, form))
        return task

    def _test_done(self, form: AccountForm, task: asyncio.Task) -> None:
        self._tests.discard(task)
        if task.cancelled():
            return
        form.test_button.setEnabled(True)
        exc = task.exception()
        if exc is not None:
            show_test_result(form, False, f"the test could not run: {exc}")
        else:
            ok, text = task.result()
            show_test_result(form, ok, text)

    def done(self, result: int) -> None:
        for task in list(self._tests):
            task.cancel()
        super().done(result)


TEST_TIMEOUT_S = 8.0
"""How long Test connection waits for a server (to connect, and for its answer)."""


async def probe_server(url: str, tls: TlsConfig, *, timeout: float = TEST_TIMEOUT_S) -> tuple[bool, str]:
    """Ask ``url`` once (GET) and say what answered: (reachable, the words for the user).

    A DM server wants POSTs, so any HTTP answer (a 405 too) shows the address, TLS included, works;
    404 says the path looks wrong; 5xx that the server has trouble; no answer says why (refused,
    timeout, TLS set-up or refusal), as the transport words it."""
    transport = HttpTransport(timeout=timeout, connect_timeout=timeout, deadline=timeout, max_connections=1)
    try:
        result = await transport.request("GET", url, tls=tls, max_body=PROBE_MAX_BODY)
    finally:
        await transport.aclose()
    return describe_probe(url, result)


PROBE_MAX_BODY = 64 * 1024


def describe_probe(url: str, result: HttpResult) -> tuple[bool, str]:
    if not result.status:
        reason = (result.error or "no answer").removeprefix(f"GET {url}: ")
        if "TLS" in reason or "certificate" in reason.lower():
            return False, f"TLS error: {reason}"
        if "refused" in reason:
            return False, f"connection refused: nothing listens there ({reason})"
        return False, f"not reachable: {reason}"
    status = http_reason(result.status)
    if result.status == 404:
        return False, f"the server answered {status}: reachable, but is the path right?"
    if result.status >= 500:
        return False, f"the server answered {status}: reachable, but it has a problem"
    if result.status in (400, 405, 415):
        return True, f"reachable: the server answered {status} to a plain GET (a DM server wants a session's POST)"
    if result.status in (401, 403):
        return True, f"reachable: the server answered {status} (credentials are sent in a session)"
    return True, f"reachable: the server answered {status}"


def show_test_result(form: AccountForm, ok: bool, text: str) -> None:
    form.test_result.setText(("✔ " if ok else "✖ ") + text)
    form.test_result.setStyleSheet("color: #1b5e20" if ok else "color: #b00020")
    form.test_result.setToolTip(text)
    form.test_result.show()


# ---------------------------------------------------------------------------------------------
# the window's menu entries


class Window(Protocol):
    """What the menu entries use of the main window."""

    fleet: Fleet
    fleet_panel: FleetPanel

    def show_error(self, text: str) -> None: ...

    def set_server_status(self, ok: bool, text: str) -> None: ...

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 (Qt's name)

    def window(self) -> QWidget: ...  # the main window as the parent of dialogs and progress


class ServerActions(QObject):
    """Session > Server connection… and Session > Notify selected device, for one main window.

    ``server`` is the demo server's control surface (set by the app when it runs one): notifications
    need it.
    """

    def __init__(self, window: Window, menu: QMenu) -> None:
        super().__init__(menu)
        self.window = window
        self.server: ServerControl | None = None
        self.demo_url = ""  # the demo server's URL (never remembered as a recent server)
        self.dialog: ServerDialog | None = None
        self.job: ChunkedJob | None = None
        self.problems: list[str] = []  # of the last apply
        self._reports: set[asyncio.Task] = set()
        self.connect_action = QAction("Server connection…", menu)
        self.connect_action.setToolTip("Point the selected devices (or all) at a DM server")
        self.connect_action.triggered.connect(self.open_dialog)
        self.notify_action = QAction("Notify selected device", menu)
        self.notify_action.setToolTip("The demo server sends the selected devices a notification (Package 0)")
        self.notify_action.setShortcut("Ctrl+N")
        self.notify_action.triggered.connect(self.notify_selected)
        menu.addSeparator()
        menu.addAction(self.connect_action)
        menu.addAction(self.notify_action)

    # -- server connection

    def open_dialog(self) -> ServerDialog:
        """Opens the dialog window-modal without a nested event loop; applying happens on Apply."""
        w = self.window
        self.dialog = dialog = ServerDialog(w.fleet, w.fleet_panel.selected_ids(), w.window())
        dialog.accepted.connect(lambda: self.apply(dialog.changes()))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def apply(self, changes: ServerChanges) -> ChunkedJob:
        """Write ``changes`` into the devices in slices (progress shown when it takes a while)."""
        w, fleet = self.window, self.window.fleet
        ids = changes.device_ids
        problems: list[str] = []

        def step(start: int, count: int) -> int:
            for dev_id in ids[start:start + count]:
                dev = fleet.devices.get(dev_id)
                if dev is not None:
                    problems.extend(apply_to_device(dev, changes))
                    fleet.save(dev)
            return count

        def finished(done: int, cancelled: bool) -> None:
            self.job = None
            if done:
                self.chose(changes.chosen(), everyone=set(ids) >= set(fleet.devices))
            what = f"server settings written to {done} of {len(ids)} device(s)" if cancelled else \
                f"server settings written to {done} device(s)"
            if changes.urls():
                what += f" ({', '.join(changes.urls())})"
            if problems:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                w.show_error(f"{problems[0]}{more}")
            else:
                w.statusBar().showMessage(what, 8000)
            w.fleet_panel.model.refresh(set(ids[:done]))

        self.job = job = ChunkedJob(w.window(), "Writing server settings into the devices…", len(ids), step,
                                    chunk=20)
        job.finished.connect(finished)
        job.error.connect(lambda text: w.show_error(f"writing server settings stopped: {text}"))
        self.problems = problems
        return job.start()

    def chose(self, chosen: dict[str, str], *, everyone: bool = False) -> None:
        """The user pointed devices at these servers: the recent lists keep them (not the demo server).
        When it was ``everyone`` (all devices), or the window had no server (``--no-demo``), they are
        the window's servers now: the status bar names them and devices added from here on go there."""
        if not chosen:
            return
        w, fleet = self.window, self.window.fleet
        for protocol, url in chosen.items():
            if not (self.demo_url and same_origin(url, self.demo_url)):  # the demo's port dies with it
                remember_servers(protocol, [url])
        if fleet.server and not everyone:
            return  # the others still talk to the window's server: the status bar goes on naming it
        first = next(iter(chosen.values()))
        parts = urlsplit(first)
        if parts.scheme in ("http", "https") and parts.netloc:  # placeholders may stand in the path only
            fleet.server = f"{parts.scheme}://{parts.netloc}"
        names = " · ".join(f"{PROTOCOL_TITLES[p].split(' ')[0]} {u}" for p, u in chosen.items())
        w.set_server_status(True, names)
        w.window().setWindowTitle(f"dm-emulator — {names}")

    # -- notifications

    def notify_selected(self) -> list[asyncio.Task]:
        """One task per notified device, each ending with its :class:`Notified` once the device started
        its session or rejected the notification; the status bar says what happened."""
        w = self.window
        ids = w.fleet_panel.selected_ids()
        if self.server is None:
            w.show_error("notifications come from the demo server, which is not running in this window")
            return []
        if not ids:
            w.show_error("select one or more devices first")
            return []
        chosen = w.fleet_panel.protocol_box.currentText()
        tasks = []
        for dev_id in ids:
            dev = w.fleet.devices.get(dev_id)
            if dev is None:
                continue
            protocol = chosen if chosen in ("dm2", "dm12") else dev.profile.protocols[0]
            if protocol not in dev.profile.protocols:
                w.show_error(f"{dev_id} does not speak {protocol} (has {', '.join(dev.profile.protocols)})")
                continue
            tasks.append(asyncio.ensure_future(self._notify_one(dev_id, protocol)))
        if tasks:
            w.statusBar().showMessage(f"notifying {len(tasks)} device(s)…", 5000)
            report = asyncio.ensure_future(self._report(tasks))
            self._reports.add(report)  # kept until it ends (the loop holds only weak references)
            report.add_done_callback(self._reports.discard)
        return tasks

    async def _notify_one(self, dev_id: str, protocol: str) -> Notified:
        w, server = self.window, self.server
        if server is None:
            return Notified(dev_id, protocol, "", None, "none sent: the demo server is not running")
        try:
            notified = await notify_over_channel(w.fleet, server, dev_id, protocol)
        except EmulatorError as exc:
            return Notified(dev_id, protocol, "", None, f"none sent: {exc}")
        if notified.session is not None:  # a session that fails shows on its row
            notified.session.add_done_callback(functools.partial(w.fleet_panel._session_done, dev_id))
        return notified

    async def _report(self, tasks: list[asyncio.Task]) -> None:
        results = await asyncio.gather(*tasks, return_exceptions=True)
        done = [r for r in results if isinstance(r, Notified)]
        started = [r for r in done if r.session is not None]
        failed = [r for r in done if r.session is None]
        failed_text = [f"{r.device_id}: {r.protocol} notification {'rejected' if r.rejected else 'not delivered'}: "
                       f"{r.why}" for r in failed]
        failed_text += [f"notification failed: {r}" for r in results if isinstance(r, BaseException)
                        and not isinstance(r, asyncio.CancelledError)]
        w = self.window
        if failed_text:
            more = f" (and {len(failed_text) - 1} more)" if len(failed_text) > 1 else ""
            ok = f"; {len(started)} session(s) started" if started else ""
            w.show_error(f"{failed_text[0]}{more}{ok}")
        elif started:
            channels = ", ".join(sorted({r.channel for r in started}))
            w.statusBar().showMessage(f"notified {len(started)} device(s) over {channels}: "
                                      "server-initiated session started", 5000)
