"""Firmware campaigns on the reference server: which devices get which package, what they answered,
what they reported.

A campaign names a package of the repository (:mod:`emulator.server.packages`) and the devices it
is for (a list, or ``"*"``: every device that opens a session while the campaign runs, at most
:data:`MAX_DEVICES`). The first session of a device the campaign covers runs the FUMO script instead
of the demo script (later sessions of that device run no script: the campaign is what the server
wants of it), for either protocol:

- DM 1.2: one package with Replace of ``<node>/<operation>/PkgURL`` and ``<node>/PkgVersion``, then
  Exec of ``<node>/<operation>`` with the Correlator ``fumo-<campaign>``;
- DM 2.0: HGET of the same two values (repository items of the campaign) into the device's FUMO
  instance, then EXEC of ``<instance>/<operation>`` with the alerts ServerURI;

then the device's Exec status (202: accepted) and its generic alert (the FUMO result code) are
noted per device, with the time each came. Every generic alert the server receives is also kept in
:attr:`Campaigns.alerts` (at most :data:`MAX_ALERTS`). What the admin API shows
(``/admin/campaigns``) is :meth:`Campaign.summary`: how many devices are in each state, the
histogram of result codes and the time from the Exec to the report.
"""

from __future__ import annotations

import html
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import EmulatorError
from emulator.mo.fumo import ALERT_PREFIX, FUMO_MOID, RESULT_CODES
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Alert, Command, Exec, Item, Meta, Replace

MAX_CAMPAIGNS = 100
MAX_DEVICES = 100_000
"""Devices one campaign follows (a ``"*"`` campaign takes no more once it has these)."""
MAX_ALERTS = 100_000
"""Generic alerts the server keeps (the oldest dropped beyond)."""
OPERATIONS = ("DownloadAndUpdate", "Download")
CAMPAIGN_STEP = "fumo campaign"
CONSENT_STEP = "fumo consent"
DM12_NODE = "./FwUpdate/fw"
DM2_INSTANCE = f"{FUMO_MOID}/*"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
RUN_STATES = ("pending", "sent", "accepted", "refused", "declined", "reported")
"""A device's way through a campaign: not yet seen, script sent, Exec answered 202 (or refused
with another status), result reported by its generic alert."""


@dataclass
class DeviceRun:
    dev_id: str
    protocol: str = ""
    state: str = "pending"
    exec_status: int | None = None
    result: int | None = None
    sent_at: float | None = None
    reported_at: float | None = None


@dataclass(frozen=True, slots=True)
class ReceivedAlert:
    """One generic alert as the server received it."""

    dev_id: str
    protocol: str
    type: str
    data: str
    source: str
    correlator: str
    ts: float


@dataclass
class Campaign:
    id: str
    package: str
    url: str
    version: str = ""
    devices: frozenset[str] | None = None  # None: every device ("*")
    operation: str = "DownloadAndUpdate"
    dm12_node: str = DM12_NODE
    dm2_instance: str = DM2_INSTANCE
    consent: bool = False  # ask the user first (DM 1.2 Alert 1101, DM 2.0 SHOW); a "no" ends the run with 401
    created: float = field(default_factory=time.time)
    runs: dict[str, DeviceRun] = field(default_factory=dict)

    @property
    def correlator(self) -> str:
        return f"fumo-{self.id}"

    def covers(self, dev_id: str) -> bool:
        if self.devices is not None:
            return dev_id in self.devices
        return dev_id in self.runs or len(self.runs) < MAX_DEVICES

    def run(self, dev_id: str) -> DeviceRun:
        r = self.runs.get(dev_id)
        if r is None:
            r = self.runs[dev_id] = DeviceRun(dev_id)
        return r

    # --- the scripts

    def dm12_commands(self) -> list[Command]:
        meta = Meta(format="chr", type="text/plain")
        items = [Item(target=f"{self.dm12_node}/{self.operation}/PkgURL", data=self.url)]
        if self.version:
            items.append(Item(target=f"{self.dm12_node}/PkgVersion", data=self.version))
        return [Replace(cmd_id="0", meta=meta, items=items),
                Exec(cmd_id="0", correlator=self.correlator, items=[Item(target=f"{self.dm12_node}/{self.operation}")])]

    def dm2_steps(self, base: str) -> list[list[list[str]]]:
        if self.consent:  # the page's answer brings the rest (Campaigns.consent_given)
            return [[["SHOW", "${ui:fumo}"]]]
        return self.dm2_update_steps(base)

    def dm2_update_steps(self, base: str) -> list[list[list[str]]]:
        first = [["HGET", f"{base}/repo/{self.repo_key('url')}", f"{self.dm2_instance}/{self.operation}"]]
        if self.version:
            first.append(["HGET", f"{base}/repo/{self.repo_key('version')}", f"{self.dm2_instance}/PkgVersion"])
        return [first, [["EXEC", f"{self.dm2_instance}/{self.operation}", "${alerts}"]]]

    def repo_key(self, what: str) -> str:
        return f"campaigns/{self.id}/{what}"

    # --- what came back

    def summary(self) -> dict[str, Any]:
        states = Counter(r.state for r in self.runs.values())
        results = Counter(r.result for r in self.runs.values() if r.result is not None)
        times = sorted(r.reported_at - r.sent_at for r in self.runs.values()
                       if r.reported_at is not None and r.sent_at is not None)
        return {
            "id": self.id, "package": self.package, "version": self.version, "url": self.url,
            "operation": self.operation, "devices": "*" if self.devices is None else len(self.devices),
            "states": {s: states.get(s, 0) for s in RUN_STATES},
            "results": {str(code): n for code, n in sorted(results.items())},
            "meanings": {str(code): RESULT_CODES.get(code, "vendor specified" if code else "") for code in results},
            "exec_to_report_s": _quantiles(times),
        }

    def details(self) -> dict[str, Any]:
        return {**self.summary(), "runs": [
            {"device": r.dev_id, "protocol": r.protocol, "state": r.state, "exec_status": r.exec_status,
             "result": r.result, "seconds": (round(r.reported_at - r.sent_at, 3)
                                             if r.reported_at is not None and r.sent_at is not None else None)}
            for r in self.runs.values()]}


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    pick = lambda q: round(values[min(len(values) - 1, int(q * len(values)))], 3)  # noqa: E731
    return {"min": round(values[0], 3), "p50": pick(0.5), "p90": pick(0.9), "max": round(values[-1], 3)}


class Campaigns:
    """The server's campaigns and the generic alerts it received."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.campaigns: dict[str, Campaign] = {}
        self.alerts: list[ReceivedAlert] = []
        self.clock = clock

    def add(self, campaign: Campaign) -> Campaign:
        if not _ID.match(campaign.id):
            raise EmulatorError(f"campaign id {campaign.id[:80]!r}: letters, digits and ._- (at most 64)", status=400)
        if campaign.id in self.campaigns:
            raise EmulatorError(f"there is a campaign {campaign.id!r} already", status=409)
        if len(self.campaigns) >= MAX_CAMPAIGNS:
            raise EmulatorError(f"the server runs {MAX_CAMPAIGNS} campaigns already", status=507)
        if campaign.operation not in OPERATIONS:
            raise EmulatorError(f"operation {campaign.operation!r}: one of {', '.join(OPERATIONS)}", status=400)
        if campaign.devices is not None and len(campaign.devices) > MAX_DEVICES:
            raise EmulatorError(f"a campaign is for at most {MAX_DEVICES} devices", status=400)
        self.campaigns[campaign.id] = campaign
        return campaign

    def get(self, campaign_id: str) -> Campaign:
        found = self.campaigns.get(campaign_id)
        if found is None:
            raise EmulatorError(f"no campaign {campaign_id[:80]!r}", status=404)
        return found

    def _pending(self, dev_id: str) -> tuple[Campaign, DeviceRun] | None:
        for c in self.campaigns.values():
            if c.covers(dev_id):
                run = c.run(dev_id)
                if run.state == "pending":
                    return c, run
        return None

    def covered(self, dev_id: str) -> bool:
        """Whether a campaign follows ``dev_id`` (its sessions then run the campaign's script only)."""
        return any(dev_id in c.runs or (c.devices is not None and dev_id in c.devices)
                   for c in self.campaigns.values())

    def dm12_steps(self, dev_id: str) -> list[tuple[str, Callable[[Any], list[Command]]]] | None:
        """The campaign's steps for a DM 1.2 session of ``dev_id`` (None: no campaign has one for it):
        with ``consent``, a confirm alert first (the user's "no" ends the run, result 401 "User
        Cancelled"); then Replace PkgURL/PkgVersion and Exec (step :data:`CAMPAIGN_STEP`)."""
        found = self._pending(dev_id)
        if found is None:
            return None
        campaign, run = found
        run.protocol, run.state, run.sent_at = "dm12", "sent", self.clock()

        def confirm(session: Any) -> list[Command]:
            text = f"Install firmware {campaign.version or campaign.package} now? The device restarts."
            return [Alert(cmd_id="0", code=codes.ALERT_CONFIRM_OR_REJECT,
                          items=[Item(data="MAXDT=60&DR=1"), Item(data=text)])]

        def fumo(session: Any) -> list[Command]:
            if campaign.consent:
                answers = [r.code for r in session.statuses if r.step == CONSENT_STEP]
                if not answers or answers[-1] != codes.OK:
                    run.state, run.result, run.reported_at = "declined", 401, self.clock()
                    return []
            return campaign.dm12_commands()

        steps = [(CONSENT_STEP, confirm)] if campaign.consent else []
        return [*steps, (CAMPAIGN_STEP, fumo)]

    def dm2_steps(self, dev_id: str, base: str) -> list[list[list[str]]] | None:
        found = self._pending(dev_id)
        if found is None:
            return None
        campaign, run = found
        run.protocol, run.state, run.sent_at = "dm2", "sent", self.clock()
        return campaign.dm2_steps(base)

    def consent_given(self, dev_id: str, accepted: bool, base: str) -> list[list[str]]:
        """The DM 2.0 consent page was answered: the campaign's HGETs and EXEC in one package (the
        alerts ServerURI filled, as nothing fills it later), or END and the run declined (401)."""
        for c in self.campaigns.values():
            run = c.runs.get(dev_id)
            if run is None or run.state != "sent" or run.protocol != "dm2" or not c.consent:
                continue
            if not accepted:
                run.state, run.result, run.reported_at = "declined", 401, self.clock()
                return [["END"]]
            alerts = f"{base}/dm20/alerts"
            return [[alerts if part == "${alerts}" else part for part in cmd]
                    for step in c.dm2_update_steps(base) for cmd in step]
        return []

    def exec_status(self, protocol: str, dev_id: str, target: str, status: int) -> None:
        """A device's status for an Exec: 202 moves its run to accepted, anything else to refused."""
        for c in self.campaigns.values():
            run = c.runs.get(dev_id)
            if run is None or run.state != "sent" or run.protocol != protocol:
                continue
            if target.endswith("/" + c.operation):
                run.exec_status = status
                run.state = "accepted" if status == 202 else "refused"
                if status != 202 and 200 <= status < 300:  # done at once: the report follows anyway
                    run.state = "accepted"
                return

    def alert(self, protocol: str, dev_id: str, alert_type: str, data: str, *, source: str = "",
              correlator: str = "") -> None:
        """Keep a generic alert; a FUMO result of a device a campaign sent to ends its run."""
        if len(self.alerts) >= MAX_ALERTS:
            del self.alerts[0]
        now = self.clock()
        self.alerts.append(ReceivedAlert(dev_id, protocol, alert_type, data, source, correlator, now))
        if not alert_type.split(": ")[-1].startswith(ALERT_PREFIX):
            return
        for c in self.campaigns.values():
            run = c.runs.get(dev_id)
            if run is None or run.state not in ("sent", "accepted") or run.protocol != protocol:
                continue
            if protocol == "dm12" and correlator and correlator != c.correlator:
                continue
            run.state, run.reported_at = "reported", now
            text = data.strip()
            run.result = int(text) if text.isdigit() and len(text) < 6 else 0
            return


def campaign_from_json(spec: object, *, base: str, packages: Any) -> Campaign:
    """A campaign from the admin API's JSON: ``{"id", "package", "devices": [...] | "*",
    "operation", "descriptor": true, "dm12_node", "dm2_instance"}``; the package must be in the
    repository (or ``"size"`` given, then it is generated with ``"version"``). EmulatorError (400)."""
    if not isinstance(spec, dict):
        raise EmulatorError("a campaign is a JSON object", status=400)
    known = {"id", "package", "size", "version", "devices", "operation", "descriptor", "dm12_node", "dm2_instance",
             "consent"}
    unknown = set(spec) - known
    if unknown:
        raise EmulatorError(f"unknown campaign keys: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})",
                            status=400)
    name = spec.get("package")
    if not isinstance(name, str):
        raise EmulatorError("a campaign needs the name of its package", status=400)
    version = spec.get("version", "")
    if not isinstance(version, str) or len(version) > 255:
        raise EmulatorError("version: a string of at most 255 characters", status=400)
    if "size" in spec:
        pkg = packages.add(name, spec["size"], version)
    else:
        pkg = packages.get(name)
    devices = spec.get("devices", "*")
    if devices == "*":
        chosen: frozenset[str] | None = None
    elif isinstance(devices, list) and all(isinstance(d, str) and 0 < len(d) <= 256 for d in devices):
        chosen = frozenset(devices)
    else:
        raise EmulatorError('devices: "*" or a list of DevIDs', status=400)
    descriptor, consent = spec.get("descriptor", True), spec.get("consent", False)
    if not isinstance(descriptor, bool) or not isinstance(consent, bool):
        raise EmulatorError("descriptor and consent: true or false", status=400)
    if not base:
        raise EmulatorError("the server does not know the URL devices reach it at (base_url)", status=409)
    for key in ("operation", "dm12_node", "dm2_instance", "id"):
        if key in spec and (not isinstance(spec[key], str) or not spec[key] or len(spec[key]) > 1024):
            raise EmulatorError(f"{key}: a non-empty string", status=400)
    url = packages.url(base, pkg.name, descriptor=descriptor)
    return Campaign(spec.get("id", f"c{int(time.time() * 1000) % 10**9}"), pkg.name, url,
                    version or pkg.version, chosen, spec.get("operation", "DownloadAndUpdate"),
                    spec.get("dm12_node", DM12_NODE), spec.get("dm2_instance", DM2_INSTANCE), consent)


def campaign_html(campaigns: list[Campaign]) -> str:
    """The admin page of the campaigns: one table each, states and result codes."""
    rows = []
    for c in campaigns:
        s = c.summary()
        states = " ".join(f"{k}: {v}" for k, v in s["states"].items())
        results = ", ".join(f"{k} ({html.escape(s['meanings'].get(k, ''))}): {v}" for k, v in s["results"].items())
        times = ", ".join(f"{k} {v} s" for k, v in s["exec_to_report_s"].items())
        rows.append(f"<tr><td>{html.escape(c.id)}</td><td>{html.escape(c.package)} {html.escape(c.version)}</td>"
                    f"<td>{html.escape(states)}</td><td>{results or '-'}</td><td>{html.escape(times) or '-'}</td></tr>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Campaigns</title>"
            "<link rel=\"stylesheet\" href=\"/ui/static/style.css\"></head><body><main class=\"card\">"
            "<h1>Firmware campaigns</h1><table><tr><th>Campaign</th><th>Package</th><th>Devices</th>"
            "<th>Result codes</th><th>Exec to report</th></tr>" + "".join(rows) + "</table></main></body></html>")
