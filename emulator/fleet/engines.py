"""Which engine runs a session of which protocol, built from a device and one of its accounts.

The only module that knows both engines; the fleet, the window and the benchmark ask it for an
engine and hand back the finished one, so what a session learnt (nonces, pending alerts) is kept.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from emulator.device.environments import Environment
from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError
from emulator.events import AlertRaised
from emulator.mo.accounts import Account, store_nonces
from emulator.mo.behaviours import Job
from emulator.protocol.actions import SessionDone
from emulator.protocol.values import DmProtocol
from emulator.tree.ddf import find_builtin

StartSession = Callable[..., object]
"""``start_session(dev_id, protocol, *, server_id=..., alerts=..., reason=...)``: how a driver runs a
session that follows this one (the fleet's task, a Locust user's next session)."""

if TYPE_CHECKING:
    from emulator.protocol.dm2.client import DM2Client
    from emulator.protocol.syncml.client import SyncMLClient
    from emulator.tree import Tree

EngineOptions = dict[str, Any]
"""Keyword arguments for the protocol's engine (SyncMLClient or DM2Client), gathered by the fleet,
scenarios and behaviours on their way to :func:`make_engine`: a bag of both protocols' options, so
its values are Any here and the engine's constructor checks them."""



def make_engine(dev: VirtualDevice | Environment, account: Account, session_id: str, *,
                server_uri: str | None = None, **options: Any) -> SyncMLClient | DM2Client:
    """A fresh engine for one session; ``server_uri`` overrides the account's (``run --server URL/path``).

    ``dev`` may be an operating environment with its own identity (its DevId goes on the wire). The
    engine works on the device's tree as that account's session sees it: priority and delegation
    rules on top of the ACLs (:mod:`emulator.mo.authorities`).
    """
    if server_uri:
        account = replace(account, server_uri=server_uri)
    device = dev.device if isinstance(dev, Environment) else dev
    # ManagedTree stands in for the Tree (it forwards what it does not check): the engines take it as one
    tree = cast("Tree", device.managed_tree(account, session_id))
    if account.protocol == "dm12":
        from emulator.mo import dm13
        from emulator.protocol.syncml.client import DEVINFO_URIS, SyncMLClient

        profile = dev.profile
        if (profile.dm_version == "1.3" and "session-bearer" in profile.dm13_features
                and isinstance(device, VirtualDevice)):
            # DM 1.3: the bearer and roaming status of this session, from the active bearer (ERELD 4.3)
            active = device.bearers.get(device.bearer)
            dm13.write_session(device.tree, active.spec.type if active else "", bool(active and active.spec.roaming))
            options.setdefault("devinfo_uris", (*DEVINFO_URIS, *dm13.SESSION_URIS))
        options.setdefault("resume_object", getattr(device, "partial_objects", {}).get(account.server_id))
        return SyncMLClient(
            tree, account, dev_id=dev.id, session_id=_syncml_session_id(),
            max_msg_size=profile.max_msg_size, max_obj_size=profile.max_obj_size,
            wbxml=profile.encoding == "wbxml", ui=profile.ui.has_screen, dm_version=profile.dm_version, **options,
        )
    from emulator.protocol.dm2.client import DM2Client
    from emulator.protocol.dm2.subscriptions import subscriptions_for

    options.setdefault("subscriptions", subscriptions_for(device.tree))  # kept per tree, not per session
    return DM2Client(tree, account, dev_id=dev.id, has_browser=dev.profile.ui.browser,
                     describe_mo=find_builtin, **options)


def _syncml_session_id() -> str:
    """SyncML SessionIDs are 1-4 hex digits. The fleet's counter restarts with every process, and a
    server still holding an unfinished session of the same device and ID would take a new Package 1
    for a repeated message: a random ID per session avoids that (1 in 65,535 chance of a repeat)."""
    return format(secrets.randbelow(0xFFFF) + 1, "X")


def finish_engine(dev: VirtualDevice, account: Account, engine: object, done: SessionDone,
                  start_session: StartSession) -> None:
    """Keep what the session learnt: DM 1.2 nonces; DM 2.0 alerts that need a session of their own
    (asked of ``start_session``, so this module needs no fleet)."""
    if account.protocol == "dm12":
        _keep_partial(dev, account, engine, done)
        client_nonce = getattr(engine, "client_nonce", None)
        server_nonce = getattr(engine, "server_nonce", None)
        if client_nonce is not None or server_nonce is not None:
            store_nonces(dev.tree, account, client_nonce=client_nonce, server_nonce=server_nonce)
        return
    pending = list(getattr(engine, "pending_alerts", ()) or ())
    if pending and done.outcome == "completed":
        from emulator.mo.accounts import account_for_url

        by_url: dict[str, list[object]] = {}
        for alert in pending:
            by_url.setdefault(alert.server_uri, []).append(alert)
        for url, alerts in by_url.items():  # each result to its ServerURI, as the account that owns it
            owner = account_for_url(dev.accounts("dm2"), url) or account
            start_session(dev.id, "dm2", server_id=owner.server_id, alerts=alerts, reason="async result")


def _keep_partial(dev: VirtualDevice, account: Account, engine: object, done: SessionDone) -> None:
    """DM-HLF-021: a large object the session left half received is kept for the next session with
    that server when the session was cut (a completed one leaves nothing to continue)."""
    executor = getattr(engine, "executor", None)
    if executor is None:
        return
    if executor.resumed is not None:
        r = executor.resumed
        dev.bus.publish(AlertRaised(dev.id, "large object resumed", f"{r.target}: went on from {r.received} of "
                                    f"{r.declared} bytes", {"server": account.server_id}))
    partial = executor.partial() if done.outcome != "completed" else None
    if partial is None:
        dev.partial_objects.pop(account.server_id, None)
        return
    dev.partial_objects[account.server_id] = partial
    dev.bus.publish(AlertRaised(dev.id, "large object suspended", f"{partial.target}: {partial.received} of "
                                f"{partial.declared} bytes kept for the next session", {"server": account.server_id}))


def alert_options(protocol: DmProtocol, alert_type: str, data: str | dict, *, format: str = "chr",
                  source: str | None = None, mark: str | None = None,
                  correlator: str | None = None, target: str | None = None) -> EngineOptions:
    """Engine options for a session that carries one device-raised generic alert: DM 1.2 Alert 1226
    (with the Exec's Correlator when it answers one), DM 2.0 a generic Alert (string data as
    ``{"Value": ...}``, tables as they are)."""
    if protocol == "dm12":
        from emulator.protocol.syncml.client import GenericAlert

        text = data if isinstance(data, str) else json.dumps(data)
        return {"generic_alerts": [GenericAlert(alert_type, format, text, source, mark, correlator, target)]}
    from emulator.protocol.dm2.messages import Alert

    body = data if isinstance(data, dict) else ({"Value": data} if data else None)
    return {"alerts": [Alert(alert_type, source_uri=source, target_uri=target, mark=mark, data=body)]}


def job_sessions(dev: VirtualDevice, job: Job, *, final: bool = True) -> list[EngineOptions]:
    """The sessions a finished behaviour run asks for, as ``run_session`` keyword arguments: its
    alerts, to the server that executed it (DM 2.0: also the ExecResult to the EXEC's ServerURI,
    once the run is ``final``; an operation's mid-run report carries only its alerts)."""
    run = job.run
    account = next((a for a in dev.accounts() if a.server_id == job.server_id), None)
    if account is None:
        return []
    protocol = account.protocol
    options: EngineOptions = {}
    for out in run.alerts:
        source, target = out.source, getattr(out, "target", None)
        if protocol == "dm2":  # DM 2.0 names nodes by ClientURI
            source = _client_uri(dev, source) if source.startswith("./") else source
            target = _client_uri(dev, target) if target and target.startswith("./") else target
        one = alert_options(protocol, out.type, out.data, format=out.format, source=source, mark=out.mark,
                            correlator=out.correlator, target=target)
        for key, items in one.items():
            options.setdefault(key, []).extend(items)
    reply_to = run.request.reply_to
    if protocol == "dm2" and reply_to and final:
        from emulator.protocol.dm2.client import ALERT_EXEC_RESULT, PendingAlert
        from emulator.protocol.dm2.messages import Alert

        sc = run.result
        if sc >= 1000:  # a SCOMO/LAWMO result code (1200, 14xx...): the ExecResult carries a DM status
            sc = 200 if 1200 <= sc < 1300 else 500
        mark = "informational" if 200 <= sc < 300 else "critical"
        result = Alert(ALERT_EXEC_RESULT, source_uri=_client_uri(dev, run.request.path), mark=mark,
                       data={"sc": sc})
        options.setdefault("alerts", []).append(PendingAlert(reply_to, result))
    if not options:
        return []
    if protocol == "dm2" and reply_to:
        from emulator.mo.accounts import account_for_url

        account = account_for_url(dev.accounts("dm2"), reply_to) or account
    return [{"protocol": protocol, "server_id": account.server_id, "reason": "behaviour result", **options}]


def _client_uri(dev: VirtualDevice, path: str) -> str:
    """The ClientURI of a node for a DM 2.0 alert's SourceURI (the tree path outside any instance)."""
    from emulator.mo.instances import instance_of
    from emulator.tree import uri as uris
    from emulator.tree.clienturi import format_client_uri

    segs = uris.split(path)
    inst = instance_of(dev.tree, segs)
    if inst is None:
        return path
    return format_client_uri(inst.moid, inst.miid, segs[len(inst.path):])


def route_session(dev: VirtualDevice, protocol: DmProtocol, options: Mapping[str, Any]) -> str | None:
    """The server a session without a named one belongs to (DM-HLF-018), from what it carries: the
    ServerURI of an asynchronous result, else the MO (node or ClientURI) of its first alert with a
    source. None: nothing to go by (the highest-priority account then, as before)."""
    from emulator.mo.accounts import account_for_url, owning_account

    accounts = dev.accounts(protocol)
    for alert in options.get("alerts", ()) or ():
        url = getattr(alert, "server_uri", None)
        if url:
            found = account_for_url(accounts, url)
            if found is not None:
                return found.server_id
    sources = [getattr(a, "source", None) for a in options.get("generic_alerts", ()) or ()]
    for alert in options.get("alerts", ()) or ():
        inner = getattr(alert, "alert", alert)
        sources.append(getattr(inner, "source_uri", None))
    for source in sources:
        if not source:
            continue
        path = source if source.startswith(".") else _instance_path(dev, source)
        if path is None:
            continue
        try:
            owner = owning_account(dev.tree, path, accounts)
        except EmulatorError:
            continue  # a source that is no DM URI routes nothing
        if owner is not None:
            return owner.server_id
    return None


def _instance_path(dev: VirtualDevice, client_uri: str) -> tuple[str, ...] | None:
    """Tree path of the instance a DM 2.0 ClientURI (``MOID/MIID/...``) names, None if there is none."""
    from emulator.mo.instances import find_instances

    moid, _, rest = client_uri.partition("/")
    miid = rest.split("/", 1)[0]
    found = find_instances(dev.tree, moid)
    if miid in found:
        return found[miid]
    return next(iter(found.values()), None) if len(found) == 1 else None
