"""The one control surface of the reference server: what a face outside the protocol may do with it.

The admin API (``/admin/...``, :mod:`emulator.server.admin`) and the desktop window (Session >
Notify) both drive a running server through :class:`ServerControl` and never through the protocol
handlers' state, so each rule is written and hardened once: which channel a notification takes
(:meth:`ServerControl.notify`), what a script or a fault spec may look like, what a report of a
device holds. Every bad request is an :class:`EmulatorError` with the HTTP status the admin API
answers with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from emulator.errors import EmulatorError
from emulator.protocol.syncml.codes import MEDIA_NOTIFICATION as DM12_NOTIFICATION
from emulator.protocol.values import DmProtocol
from emulator.server.accounts import ServerAccount, account_from_json, install
from emulator.server.campaign_steps import step_from_json
from emulator.server.campaigns import (
    DIAG_SCRIPTS,
    Campaign,
    campaign_from_json,
    flow_campaign,
    flow_json,
    job_id,
)
from emulator.server.dm2 import demo_script
from emulator.server.faults import Fault
from emulator.server.notify_out import Sent, check_protocol, check_target, send_package0
from emulator.server.state import ServerState, Step
from emulator.server.ui_flows import FLOWS

Channel = Literal["push", "listener"]


@dataclass(frozen=True, slots=True)
class Notice:
    """What became of one notification: queued on the push channel (``sent`` None), or POSTed to the
    device's listener (``sent``: its answer). ``notification_id``: DM 2.0 only."""

    device: str
    protocol: DmProtocol
    channel: Channel
    notification_id: int | None = None
    sent: Sent | None = None

    @property
    def delivered(self) -> bool:
        """Queued for the device's next poll, or taken by its listener."""
        return self.sent is None or self.sent.delivered


class ServerControl:
    """Notifications, scripts, faults and reports of one running reference server (its ``state``)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    # ------------------------------------------------------------------ notifications

    async def notify(self, dev_id: str, protocol: str = "dm2", *, listener: str | None = None,
                     req_mos: bool = False, server_id: str | None = None) -> Notice:
        """Notify ``dev_id`` over the channel a real server would use: POSTed to its notification
        ``listener`` when it can be reached there, else queued for its push long-poll (a DM 1.x
        Package 0 too: DM 1.3's HTTP push binding). EmulatorError (400/404) before anything is sent."""
        proto = check_protocol(protocol)
        if listener is None:
            if proto == "dm12":
                self.state.push(dev_id, self.package0(dev_id, "dm12", server_id=server_id), DM12_NOTIFICATION)
                return Notice(dev_id, proto, "push")
            notification_id = self.state.notify(dev_id, req_mos=req_mos, server_id=server_id)
            return Notice(dev_id, proto, "push", notification_id)
        check_target(listener)
        options: dict[str, Any] = {"server_id": server_id}
        if proto == "dm2":
            options["req_mos"] = req_mos
        sent = await send_package0(self.state, dev_id, listener, proto, **options)
        return Notice(dev_id, proto, "listener", sent.notification_id, sent)

    async def sessionless(self, dev_id: str, commands: object, *, listener: str, server_id: str | None = None,
                          lifetime: int = 600) -> dict[str, Any]:
        """DM 1.3 sessionless command DM: ``commands`` (JSON, :func:`~emulator.server.sessionless.
        commands_from_json`) signed for ``dev_id`` and POSTed to its ``listener``; what the listener
        answered. EmulatorError (400/404/413) before anything is sent."""
        from emulator.protocol.syncml.sessionless import MEDIA_SESSIONLESS
        from emulator.server.notify_out import post_message
        from emulator.server.sessionless import build_command, commands_from_json

        check_target(listener)
        raw, session_id = build_command(self.state, dev_id, commands_from_json(commands), server_id=server_id,
                                        lifetime=lifetime)
        status, detail = await post_message(listener, raw, MEDIA_SESSIONLESS)
        return {"device": dev_id, "session_id": session_id, "to": listener, "delivered": 200 <= status < 300,
                "listener_status": status, "detail": detail}

    def sessionless_reports(self, dev_id: str | None = None) -> list[dict[str, Any]]:
        """The sessionless reports the reporting URI took, oldest first (one device's with ``dev_id``)."""
        from emulator.server.sessionless import desk

        return [r for r in desk(self.state).reports if dev_id is None or r["device"] == dev_id]

    def package0(self, dev_id: str, protocol: str = "dm2", **options: Any) -> bytes:
        """A Package 0 for ``dev_id``, noted as sent but put on no channel: for a caller that hands it
        to the device itself (a window without a notification listener, a test)."""
        if check_protocol(protocol) == "dm2":
            return self.state.dm2_package0(dev_id, **options)[0]
        if self.state.dm12 is None:
            raise EmulatorError("the DM 1.2 side of this server is not set up", status=404)
        return self.state.dm12.build_package0(dev_id, **options)

    def push_bootstrap(self, dev_id: str, method: str = "USERPIN") -> str:
        """Server-initiated bootstrap (DM 1.3): a new DM 1.x account for ``dev_id`` (as ``GET
        /bootstrap`` makes one), sent as a WBXML bootstrap message MAC'd with the device's factory
        secret (``SEC=USERPIN``) and queued on its push channel; the ServerID back. The accounts the
        device may hold stay valid (it refuses a bootstrap when it has one). EmulatorError (400/404)
        before anything is made."""
        from emulator.protocol.syncml.bootstrap import METHODS, build_bootstrap
        from emulator.server.bootstrap import factory_secret_for, provision

        if method not in METHODS:
            raise EmulatorError(f"unknown bootstrap security {method!r} ({', '.join(METHODS)})", status=400)
        if self.state.dm12 is None:
            raise EmulatorError("the DM 1.2 side of this server is not set up", status=404)
        key = factory_secret_for(dev_id)
        if not key:
            raise EmulatorError(f"no shipped profile gives {dev_id!r} a factory bootstrap secret to MAC with",
                                status=404)
        base = self.state.base_url.rstrip("/")
        server_id, tnds = provision(self.state, dev_id, base, keep=True)
        body, ctype = build_bootstrap(tnds, dev_id=dev_id, server_uri=f"{base}/bootstrap", key=key, method=method)
        self.state.push(dev_id, body, ctype)
        return server_id

    # ------------------------------------------------------------------ scripts

    def set_script(self, dev_id: str, *, steps: object = None, flow: str | None = None) -> list[Step]:
        """The DM 2.0 script of ``dev_id`` (``"*"``: every device without one of its own): ``steps`` (a
        list of packages, each a list of commands, each an array of strings) or the demo script with
        the web UI ``flow``. EmulatorError (400) for anything else."""
        if flow is not None:
            if flow not in FLOWS:
                raise EmulatorError(f"unknown flow {flow!r}; known: {', '.join(FLOWS)}", status=400)
            script = demo_script(flow)
        else:
            if not _is_script(steps):
                raise EmulatorError("steps must be a list of packages, each a list of commands "
                                    "(arrays of strings)", status=400)
            script = cast(list[Step], steps)
        self.state.set_script(dev_id, script)
        return script

    # ------------------------------------------------------------------ one-device jobs (flows, diagnostics)

    def start_flow(self, dev_id: str, name: str, protocol: str = "dm2", **params: Any) -> dict[str, Any]:
        """Start a lock/unlock/wipe (``lawmo``), install/activate/remove (``scomo``) or factory reset
        (``reset``) for ``dev_id``: a one-device campaign of those steps on ``protocol``
        (:func:`emulator.server.campaigns.flow_campaign`), replacing the device's earlier flow there;
        its steps go out as the device reports. ``params``: ``wipe`` (list of items),
        ``package_url``, ``package``, ``pkg_id``, ``version``, ``environment``. EmulatorError (400)
        for anything else, and nothing is started."""
        campaign = flow_campaign(dev_id, name, check_protocol(protocol), params)
        self.state.campaigns.replace(campaign)
        return flow_json(campaign, dev_id)

    def flow(self, dev_id: str, protocol: str = "dm2") -> dict[str, Any]:
        """Where the device's flow on ``protocol`` is; EmulatorError (404) when it has none."""
        found = self.state.campaigns.campaigns.get(job_id("flow", dev_id, protocol))
        if found is None:
            raise EmulatorError(f"no {protocol[:8]} flow for {dev_id[:80]}", status=404)
        return flow_json(found, dev_id)

    def set_diag_script(self, dev_id: str, script: str, protocol: str = "dm2", **params: Any) -> None:
        """A diagnostics step (``read``, ``trap`` with trap/measure/condition/threshold, ``upload``)
        for ``dev_id``'s next session over ``protocol``: a one-device campaign of one ``diag.*``
        step (:mod:`emulator.server.campaign_steps`); EmulatorError (400) for a bad one, and nothing
        is set."""
        proto = check_protocol(protocol)
        if script not in DIAG_SCRIPTS:
            raise EmulatorError(f"unknown diagnostics script {script[:40]!r} (known: {', '.join(DIAG_SCRIPTS)})",
                                status=400)
        step = step_from_json({"kind": f"diag.{script}", **params}, base="", packages=None)
        self.state.campaigns.replace(Campaign(job_id("diag", dev_id, proto), (step,), frozenset({dev_id}), (proto,)))

    def diagnostics(self, dev_id: str) -> dict[str, Any]:
        """What ``dev_id`` told the server about its diagnostics, both protocols: the DiagMon values it
        returned, its DiagMon alerts (type, source, data) and the logs it uploaded (sizes)."""
        from emulator.server.campaign_steps import DIAG_MOID as MOID
        from emulator.server.campaign_steps import DM12_DIAG as DM1_ROOT
        from emulator.server.diag import received_logs

        values: dict[str, Any] = {}
        alerts: list[dict[str, Any]] = []
        for session in self.state.dm12_sessions.get(dev_id, []):
            values.update({k: v for k, v in session.results.items() if k.startswith(DM1_ROOT)})
            for alert in session.generic_alerts:
                for item in alert.items:
                    kind = item.meta.type if item.meta is not None else None
                    if kind and "diagmon" in kind:
                        alerts.append({"protocol": "dm12", "type": kind, "source": item.source,
                                       "data": item.data if isinstance(item.data, str) else "",
                                       "correlator": alert.correlator})
        log = self.state.dm2_devices.get(dev_id)
        if log is not None:
            values.update({k: v for k, v in log.gets.items() if k.startswith(MOID)})
            alerts += [{"protocol": "dm2", "type": a.alert_type, "source": a.source_uri, "data": a.data}
                       for a in log.alerts if "diagmon" in a.alert_type]
        logs = [{"bytes": len(r.body), "ts": r.ts} for r in received_logs(self.state, dev_id)]
        return {"device": dev_id, "values": values, "alerts": alerts, "logs": logs}

    # ------------------------------------------------------------------ what the server saw

    def devices(self) -> list[str]:
        """Every device the server has seen, in either protocol, sorted."""
        return sorted(set(self.state.dm2_devices) | set(self.state.dm12_sessions))

    def sessions(self) -> list[dict[str, str]]:
        """The sessions open right now: protocol, authority (ServerID) and device."""
        open_now = [{"protocol": "dm2", "server_id": sid, "device": dev} for sid, dev in self.state.dm2_sessions]
        if self.state.dm12 is not None:
            open_now += [{"protocol": "dm12", "server_id": sid, "device": dev}
                         for sid, _session, dev in self.state.dm12.active]
        return open_now

    def device_report(self, dev_id: str) -> dict[str, Any]:
        """What the DM 2.0 side saw of ``dev_id``, as plain JSON values; EmulatorError (404) for a device
        it has not seen."""
        log = self.state.dm2_devices.get(dev_id)
        if log is None:
            raise EmulatorError("the server has not seen this device", status=404)
        return {
            "device": log.dev_id, "sessions": log.sessions, "completed": log.completed,
            "alerts": [a.alert_type for a in log.alerts], "notification_ids": log.notification_ids,
            "statuses": [[cmd, s.sc] for cmd, s in log.statuses], "gets": log.gets, "instances": log.instances,
            "uploads": [[u.method, u.path, len(u.body)] for u in log.uploads],
            "ui": [[u.flow, u.outcome, u.answers] for u in log.ui], "problems": log.problems,
        }

    # ------------------------------------------------------------------ firmware campaigns

    def add_campaign(self, spec: object) -> dict[str, Any]:
        """Start a campaign from its JSON (:func:`emulator.server.campaigns.campaign_from_json`): its
        packages generated or found in the repository; the devices it covers get its steps from
        their next session. EmulatorError (400/404/409/507) for a bad one, and nothing changes."""
        campaign = campaign_from_json(spec, base=self.state.base_url.rstrip("/"), packages=self.state.packages,
                                      check=self.state.campaigns.check)
        self.state.campaigns.add(campaign)
        return campaign.summary()

    def campaigns(self) -> list[dict[str, Any]]:
        """Every campaign's progress (:meth:`Campaign.summary`)."""
        return [c.summary() for c in self.state.campaigns.campaigns.values()]

    def campaign(self, campaign_id: str) -> Campaign:
        """One campaign (EmulatorError 404 for an unknown id)."""
        return self.state.campaigns.get(campaign_id)

    def generic_alerts(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest generic alerts the server received, both protocols."""
        return [asdict(a) for a in self.state.campaigns.alerts[-limit:]]

    # ------------------------------------------------------------------ accounts

    def add_accounts(self, accounts: list[ServerAccount]) -> list[dict[str, Any]]:
        """Play these accounts of clients the server did not ship (:mod:`emulator.server.accounts`)."""
        for account in accounts:
            install(self.state, account)
        return self.accounts()

    def add_accounts_json(self, spec: object) -> list[dict[str, Any]]:
        """The admin API's JSON account (or a list of them): all checked before any is added."""
        return self.add_accounts([account_from_json(a) for a in (spec if isinstance(spec, list) else [spec])])

    def accounts(self) -> list[dict[str, Any]]:
        """The accounts added (secrets left out)."""
        return [a.shown() for a in self.state.accounts]

    # ------------------------------------------------------------------ faults

    def faults(self) -> dict[str, Any]:
        """The faults installed and the last 100 times one was committed."""
        book = self.state.faults
        return {"faults": [f.to_json() for f in book], "hits": [asdict(h) for h in book.hits[-100:]]}

    def add_faults(self, spec: object) -> dict[str, Any]:
        """Install a JSON fault (or a list of them): all or none; EmulatorError (400) for a bad one."""
        try:
            faults = [Fault.from_json(f) for f in (spec if isinstance(spec, list) else [spec])]
        except TypeError as exc:
            raise EmulatorError(str(exc), status=400) from None
        for fault in faults:
            self.state.faults.add(fault)
        return self.faults()

    def clear_faults(self) -> int:
        """Remove every fault; how many there were."""
        return self.state.faults.clear()


def _is_script(steps: object) -> bool:
    return isinstance(steps, list) and all(
        isinstance(step, list) and all(isinstance(c, list) and c and all(isinstance(p, str) for p in c) for c in step)
        for step in steps)
