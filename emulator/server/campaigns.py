"""Campaigns: the reference server's one step machine for what it wants done on devices.

A campaign is a list of steps (:mod:`emulator.server.campaign_steps`: FUMO DownloadAndUpdate,
SCOMO install/activate/remove, LAWMO lock/unlock/wipe/reset, DiagMon read/trap/upload) for a set
of devices (a list, or ``"*"``: every device that opens a session while it runs, at most
:data:`MAX_DEVICES`), over DM 1.2, DM 2.0 or both. Each device has a run (:class:`DeviceRun`)
that goes through the steps in order, in whichever protocol's session first takes it:

- ``pending``: its next step waits for the device's next session;
- ``sent``: the step's commands went out; ``accepted``: its Exec was answered 202 and the MO's
  generic alert is awaited (a step without an Exec ends with the statuses instead);
- the report (or the statuses) ends the step: a success goes on to the next step in the same
  session; the run ends ``reported`` after its last step or at the first failing result;
  ``refused`` when a command was refused (its status is the result); ``declined`` when the user
  said no to a ``consent`` step (401).

A device a campaign is engaged with when its session starts runs that campaign's steps only
(and nothing more once they wait for a report); later sessions run the usual script again. The
first campaign (in the order they were added) that covers a device goes first.

The per-device routes of the admin API (``/admin/flow/<DevID>``, ``/admin/diag/<DevID>``) make
one-device campaigns (:meth:`Campaigns.replace`). Every generic alert the server receives is also
kept in :attr:`Campaigns.alerts` (at most :data:`MAX_ALERTS`). What ``/admin/campaigns`` shows is
:meth:`Campaign.summary`: devices per state, the histogram of result codes, time per state.
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
from emulator.server.campaign_steps import Step, step_from_json

MAX_CAMPAIGNS = 1000
"""Campaigns kept (the per-device jobs count too); at the limit the oldest whose runs all ended makes room."""
MAX_STEPS = 32
MAX_DEVICES = 100_000
"""Devices one campaign follows (a ``"*"`` campaign takes no more once it has these)."""
MAX_ALERTS = 100_000
"""Generic alerts the server keeps (the oldest dropped beyond)."""
MAX_DEV_ID = 256
PROTOCOLS = ("dm12", "dm2")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CODE = re.compile(r"(?:<ResultCode>\s*)?(\d{3,4})")
RUN_STATES = ("pending", "sent", "accepted", "refused", "declined", "reported")
ENDED = ("refused", "declined", "reported")
FUMO_KEYS = {"package", "size", "version", "operation", "descriptor", "dm12_node", "dm2_instance", "consent"}
CAMPAIGN_KEYS = {"id", "devices", "protocols", "steps"}


@dataclass
class DeviceRun:
    """One device's way through a campaign."""

    dev_id: str
    protocol: str = ""
    step: int = 0  # the step under way (or next)
    state: str = "pending"
    exec_status: int | None = None
    result: int | None = None  # the latest step's result
    results: list[tuple[int, int]] = field(default_factory=list)  # (step, code) as they came
    sent_at: float | None = None
    reported_at: float | None = None
    entered: float | None = None  # when the current state began
    spent: dict[str, float] = field(default_factory=dict)  # seconds in each state so far

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    def move(self, state: str, now: float) -> None:
        if self.entered is not None:
            self.spent[self.state] = self.spent.get(self.state, 0.0) + now - self.entered
        self.state, self.entered = state, now


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
    steps: tuple[Step, ...]
    devices: frozenset[str] | None = None  # None: every device ("*")
    protocols: tuple[str, ...] = PROTOCOLS
    created: float = field(default_factory=time.time)
    runs: dict[str, DeviceRun] = field(default_factory=dict)

    def covers(self, dev_id: str, protocol: str) -> bool:
        if protocol not in self.protocols:
            return False
        if self.devices is not None:
            return dev_id in self.devices
        return dev_id in self.runs or len(self.runs) < MAX_DEVICES

    def correlator(self, step: int) -> str:
        """The DM 1.2 Correlator of a step's Exec (the device's alert echoes it)."""
        return f"{self.id}-{step + 1}"

    def repo_key(self, dev_id: str, step: int) -> str:
        """Where a step's DM 2.0 values wait in the repository for the device's HGET."""
        return f"campaigns/{self.id}/{dev_id}/{step + 1}"

    @property
    def ended(self) -> bool:
        return self.devices is not None and len(self.runs) == len(self.devices) and all(
            r.ended for r in self.runs.values())

    # --- what came back

    def summary(self) -> dict[str, Any]:
        runs = list(self.runs.values())
        states = Counter(r.state for r in runs)
        if self.devices is not None:
            states["pending"] += len(self.devices - set(self.runs))
        results = Counter(code for r in runs for _, code in r.results)
        meanings: dict[str, str] = {}
        for r in runs:
            for index, code in r.results:
                meanings.setdefault(str(code), self.steps[index].meaning(code))
        times = sorted(r.reported_at - r.sent_at for r in runs if r.reported_at is not None and r.sent_at is not None)
        spent = {s: sorted(r.spent[s] for r in runs if s in r.spent) for s in ("pending", "sent", "accepted")}
        fumo = next((s for s in self.steps if s.mo == "fumo"), None)
        return {
            "id": self.id, "steps": [s.to_json() for s in self.steps], "protocols": list(self.protocols),
            "devices": "*" if self.devices is None else len(self.devices),
            **({"package": fumo.package, "version": fumo.version, "url": fumo.url, "operation": fumo.operation}
               if fumo else {}),
            "states": {s: states.get(s, 0) for s in RUN_STATES},
            "results": {str(code): n for code, n in sorted(results.items())},
            "meanings": meanings,
            "step_results": [{str(code): n for code, n in sorted(Counter(
                c for r in runs for i, c in r.results if i == index).items())} for index in range(len(self.steps))],
            "exec_to_report_s": _quantiles(times),
            "time_in_state_s": {s: _quantiles(v) for s, v in spent.items() if v},
        }

    def details(self) -> dict[str, Any]:
        return {**self.summary(), "runs": [
            {"device": r.dev_id, "protocol": r.protocol, "state": r.state, "step": r.step,
             "kind": self.steps[min(r.step, len(self.steps) - 1)].kind, "exec_status": r.exec_status,
             "result": r.result, "results": [[self.steps[i].kind, c] for i, c in r.results],
             "outcome": self.outcome(r),
             "seconds": (round(r.reported_at - r.sent_at, 3)
                         if r.reported_at is not None and r.sent_at is not None else None),
             "time_in_state_s": {k: round(v, 3) for k, v in r.spent.items()}}
            for r in self.runs.values()]}

    def outcome(self, run: DeviceRun) -> str:
        """running, completed, declined, or failed at <kind>: <code>."""
        if not run.ended:
            return "running"
        if run.state == "declined":
            return "declined"
        last = self.steps[min(run.step, len(self.steps) - 1)]
        if run.state == "reported" and run.result is not None and last.success(run.result) \
                and run.step == len(self.steps) - 1:
            return "completed"
        return f"failed at {last.kind}: {run.result}"


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    pick = lambda q: round(values[min(len(values) - 1, int(q * len(values)))], 3)  # noqa: E731
    return {"min": round(values[0], 3), "p50": pick(0.5), "p90": pick(0.9), "max": round(values[-1], 3)}


def result_code(data: str) -> int:
    """The result code in an alert's data (FUMO: the code itself; SCOMO: ``<ResultCode>``); 0 if none."""
    m = _CODE.search(data)
    return int(m.group(1)) if m else 0


class Campaigns:
    """The server's campaigns, their device runs, and the generic alerts it received."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.campaigns: dict[str, Campaign] = {}
        self.alerts: list[ReceivedAlert] = []
        self.clock = clock

    # --- the list

    def check(self, campaign: Campaign, *, replacing: bool = False) -> None:
        """EmulatorError when ``campaign`` cannot be added (nothing is changed)."""
        if not _ID.match(campaign.id):
            raise EmulatorError(f"campaign id {campaign.id[:80]!r}: letters, digits and ._- (at most 64)", status=400)
        if campaign.id in self.campaigns and not replacing:
            raise EmulatorError(f"there is a campaign {campaign.id!r} already", status=409)
        if campaign.devices is not None and len(campaign.devices) > MAX_DEVICES:
            raise EmulatorError(f"a campaign is for at most {MAX_DEVICES} devices", status=400)
        if (campaign.id not in self.campaigns and len(self.campaigns) >= MAX_CAMPAIGNS
                and not any(c.ended for c in self.campaigns.values())):
            raise EmulatorError(f"the server runs {MAX_CAMPAIGNS} campaigns already", status=507)

    def add(self, campaign: Campaign, *, replacing: bool = False) -> Campaign:
        self.check(campaign, replacing=replacing)
        self.campaigns.pop(campaign.id, None)
        if len(self.campaigns) >= MAX_CAMPAIGNS:
            oldest = next(c.id for c in self.campaigns.values() if c.ended)
            del self.campaigns[oldest]
        self.campaigns[campaign.id] = campaign
        return campaign

    def replace(self, campaign: Campaign) -> Campaign:
        """A per-device job: it takes the place of the one of the same id (that device's earlier job)."""
        return self.add(campaign, replacing=True)

    def get(self, campaign_id: str) -> Campaign:
        found = self.campaigns.get(campaign_id)
        if found is None:
            raise EmulatorError(f"no campaign {campaign_id[:80]!r}", status=404)
        return found

    # --- the machine

    def engaged(self, dev_id: str, protocol: str) -> tuple[Campaign, DeviceRun] | None:
        """The campaign whose steps a session of ``dev_id`` over ``protocol`` runs, and the device's
        run (created on first use); None: no campaign wants anything of it."""
        for c in self.campaigns.values():
            if not c.covers(dev_id, protocol):
                continue
            run = c.runs.get(dev_id)
            if run is None:
                run = c.runs[dev_id] = DeviceRun(dev_id, entered=self.clock())
            if run.ended or run.protocol not in ("", protocol):
                continue
            return c, run
        return None

    def sending(self, run: DeviceRun, protocol: str) -> None:
        """The run's current step goes out now."""
        now = self.clock()
        run.protocol = protocol
        if run.sent_at is None:
            run.sent_at = now
        run.move("sent", now)

    def answered(self, campaign: Campaign, run: DeviceRun, answers: list[tuple[str, int]]) -> None:
        """The device's statuses for the step's commands ((command, status) in order): an Exec's
        decides a reported step (202 or another success: its alert is awaited; else refused); a
        step without an Exec is done with them (200, or the first failing status)."""
        if run.state != "sent":
            return
        step = campaign.steps[run.step]
        if step.reported:
            execs = [code for name, code in answers if name.upper() == "EXEC"]
            if not execs:
                return
            run.exec_status = execs[-1]
            if 200 <= execs[-1] < 300:
                run.move("accepted", self.clock())
            else:
                self._end(run, "refused", execs[-1])
            return
        if not answers:
            return
        failed = next((code for _, code in answers if not 200 <= code < 300), None)
        if failed is None:
            self._report(campaign, run, 200)
        else:
            self._end(run, "refused", failed)

    def decline(self, run: DeviceRun) -> None:
        """The user said no to a ``consent`` step: the run ends with 401 ("User Cancelled")."""
        self._end(run, "declined", 401)

    def _report(self, campaign: Campaign, run: DeviceRun, code: int) -> None:
        step = campaign.steps[run.step]
        if step.success(code) and run.step + 1 < len(campaign.steps):
            run.results.append((run.step, code))
            run.result = code
            run.step += 1
            run.exec_status = None
            run.move("pending", self.clock())
            return
        self._end(run, "reported", code)

    def _end(self, run: DeviceRun, state: str, code: int) -> None:
        now = self.clock()
        run.results.append((run.step, code))
        run.result, run.reported_at = code, now
        run.move(state, now)

    def alert(self, protocol: str, dev_id: str, alert_type: str, data: str, *, source: str = "",
              correlator: str = "") -> None:
        """Keep a generic alert; the report a device's current step awaits ends that step."""
        if len(self.alerts) >= MAX_ALERTS:
            del self.alerts[0]
        self.alerts.append(ReceivedAlert(dev_id, protocol, alert_type, data, source, correlator, self.clock()))
        for c in self.campaigns.values():
            run = c.runs.get(dev_id)
            if run is None or run.state not in ("sent", "accepted") or run.protocol != protocol:
                continue
            step = c.steps[run.step]
            if not step.reported or not step.matches(protocol, alert_type, source):
                continue
            if protocol == "dm12" and correlator and correlator != c.correlator(run.step):
                continue
            self._report(c, run, result_code(data.strip()))
            return

    def consent_given(self, state: Any, dev_id: str, accepted: bool, base: str) -> list[list[str]]:
        """The DM 2.0 consent page was answered: the FUMO step's HGETs and EXEC in one package (the
        alerts ServerURI filled, as nothing fills it later), or END and the run declined (401)."""
        from emulator.server.campaign_steps import fumo_dm2_update

        for c in self.campaigns.values():
            run = c.runs.get(dev_id)
            if run is None or run.state != "sent" or run.protocol != "dm2":
                continue
            step = c.steps[run.step]
            if step.mo != "fumo" or not step.consent:
                continue
            if not accepted:
                self.decline(run)
                return [["END"]]
            alerts = f"{base}/dm20/alerts"
            return [[alerts if part == "${alerts}" else part for part in cmd]
                    for cmd in fumo_dm2_update(step, c.repo_key(dev_id, run.step), state, base)]
        return []


# ------------------------------------------------------------------ the admin API's JSON


def campaign_from_json(spec: object, *, base: str, packages: Any,
                       check: Callable[[Campaign], None] | None = None) -> Campaign:
    """A campaign from the admin API's JSON: ``{"id", "devices": [...] | "*", "protocols": [...],
    "steps": [{"kind": ..., ...}, ...]}``, or the firmware form ``{"id", "package", "size",
    "version", "devices", "operation", "descriptor", "consent", "dm12_node", "dm2_instance"}`` (one
    ``fumo`` step). Every part is checked before any package is generated; EmulatorError
    (400/404/409); ``check`` sees the campaign before any package is generated."""
    if not isinstance(spec, dict):
        raise EmulatorError("a campaign is a JSON object", status=400)
    fumo_form = "steps" not in spec
    known = CAMPAIGN_KEYS - {"steps"} | FUMO_KEYS if fumo_form else CAMPAIGN_KEYS
    unknown = set(spec) - known
    if unknown:
        raise EmulatorError(f"unknown campaign keys: {', '.join(sorted(unknown))[:300]} "
                            f"(known: {', '.join(sorted(known))})", status=400)
    if fumo_form:
        if "package" not in spec:
            raise EmulatorError('a campaign needs "steps" (or, for firmware, the name of its "package")', status=400)
        steps_spec: object = [{"kind": "fumo", **{k: v for k, v in spec.items() if k in FUMO_KEYS}}]
    else:
        steps_spec = spec["steps"]
    if not isinstance(steps_spec, list) or not 0 < len(steps_spec) <= MAX_STEPS:
        raise EmulatorError(f"steps: a list of 1 to {MAX_STEPS} steps", status=400)
    cid = spec.get("id", f"c{int(time.time() * 1000) % 10**9}")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise EmulatorError(f"campaign id {str(cid)[:80]!r}: letters, digits and ._- (at most 64)", status=400)
    devices = spec.get("devices", "*")
    if devices == "*":
        chosen: frozenset[str] | None = None
    elif (isinstance(devices, list) and 0 < len(devices) <= MAX_DEVICES
          and all(isinstance(d, str) and 0 < len(d) <= MAX_DEV_ID for d in devices)):
        chosen = frozenset(devices)
    else:
        raise EmulatorError(f'devices: "*" or a list of 1 to {MAX_DEVICES} DevIDs (each 1-{MAX_DEV_ID} characters)',
                            status=400)
    protocols = spec.get("protocols", list(PROTOCOLS))
    if (not isinstance(protocols, list) or not protocols
            or not all(isinstance(p, str) and p in PROTOCOLS for p in protocols)):
        raise EmulatorError('protocols: a list of "dm12" and/or "dm2"', status=400)
    chosen_protocols = tuple(p for p in PROTOCOLS if p in protocols)
    for dry in (True, False):  # first every step checked with nothing generated, then for real
        repo = _DryRun(packages) if dry else packages
        steps = tuple(step_from_json(s, base=base, packages=repo, where=f"step {n}")
                      for n, s in enumerate(steps_spec, 1))
        if dry and check is not None:
            check(Campaign(cid, steps, chosen, chosen_protocols))
    return Campaign(cid, steps, chosen, chosen_protocols)


class _DryRun:
    """The package repository as a step sees it, but a package to generate is only checked."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def add(self, name: str, size: int, version: str = "") -> Any:
        self.real.check(name, size)
        return _Planned(name, version)

    def get(self, name: str) -> Any:
        return self.real.get(name)

    def url(self, base: str, name: str, *, descriptor: bool = False) -> str:
        return str(self.real.url(base, name, descriptor=descriptor))


@dataclass(frozen=True)
class _Planned:
    name: str
    version: str


def campaign_html(campaigns: list[Campaign]) -> str:
    """The admin page of the campaigns: one row each, its steps, states, result codes and times."""
    rows = []
    for c in campaigns:
        s = c.summary()
        steps = ", ".join(step.kind + (f" {step.package} {step.version}".rstrip() if step.package else "")
                          for step in c.steps)
        states = " ".join(f"{k}: {v}" for k, v in s["states"].items())
        results = ", ".join(f"{k} ({html.escape(s['meanings'].get(k, ''))}): {v}" for k, v in s["results"].items())
        times = "; ".join(f"{state} p50 {q['p50']} s" for state, q in s["time_in_state_s"].items())
        rows.append(f"<tr><td>{html.escape(c.id)}</td><td>{html.escape(steps)}</td>"
                    f"<td>{html.escape(states)}</td><td>{results or '-'}</td><td>{html.escape(times) or '-'}</td></tr>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Campaigns</title>"
            "<link rel=\"stylesheet\" href=\"/ui/static/style.css\"></head><body><main class=\"card\">"
            "<h1>Campaigns</h1><table><tr><th>Campaign</th><th>Steps</th><th>Devices</th>"
            "<th>Result codes</th><th>Time per state</th></tr>" + "".join(rows) + "</table></main></body></html>")


# ------------------------------------------------------------------ one-device jobs of the admin API

FLOW_NAMES = ("lawmo", "scomo", "reset")
"""lawmo: lock, unlock, wipe; scomo: install inactive, activate, remove; reset: a LAWMO factory reset."""
FLOW_PARAMS = {"wipe", "package_url", "package", "pkg_id", "version", "environment"}
DIAG_SCRIPTS = ("read", "trap", "upload")


def job_id(kind: str, dev_id: str, protocol: str) -> str:
    """The id of a device's one-device job (``flow`` or ``diag``) on ``protocol``: one each, a new one
    takes the place of the last."""
    import hashlib

    safe = re.sub(r"[^A-Za-z0-9._-]", "_", dev_id)[:40]
    return f"{kind}-{protocol}-{safe}-{hashlib.sha256(dev_id.encode()).hexdigest()[:8]}"


def flow_campaign(dev_id: str, name: str, protocol: str, params: dict[str, Any]) -> Campaign:
    """The one-device campaign ``POST /admin/flow/<DevID>`` asks for; EmulatorError (400)."""
    if name not in FLOW_NAMES:
        raise EmulatorError(f"unknown flow {name[:40]!r}; known: {', '.join(FLOW_NAMES)}", status=400)
    if not dev_id or len(dev_id) > MAX_DEV_ID:
        raise EmulatorError(f"a flow needs a device (a DevID of 1-{MAX_DEV_ID} characters)", status=400)
    unknown = sorted(set(params) - FLOW_PARAMS)
    if unknown:
        raise EmulatorError(f"unknown flow parameter(s) {', '.join(unknown)[:200]}; known: {', '.join(sorted(FLOW_PARAMS))}",
                            status=400)
    for key in FLOW_PARAMS - {"wipe"}:
        if key in params and not isinstance(params[key], str):
            raise EmulatorError(f"{key} must be a string", status=400)
    if name == "lawmo":
        wipe = step_from_json({"kind": "lawmo.wipe", **({"wipe": params["wipe"]} if "wipe" in params else {})},
                              base="", packages=None)
        steps: tuple[Step, ...] = (Step("lawmo.lock"), Step("lawmo.unlock"), wipe)
    elif name == "reset":
        steps = (Step("lawmo.reset"),)
    else:
        url = params.get("package_url", "")
        if not url or len(url) > 4096:
            raise EmulatorError("the scomo flow needs a package_url (at most 4096 characters)", status=400)
        component = params.get("package", "app1")
        step_from_json({"kind": "scomo.activate", "name": component}, base="", packages=None, where="scomo flow")
        install = Step("scomo.install", url=url, version=params.get("version", "1.0")[:255], name=component,
                       pkg_id=params.get("pkg_id", "")[:255], environment=params.get("environment", "")[:255],
                       params={"name": component, "package_url": url})
        steps = (install, Step("scomo.activate", name=component, params={"name": component}),
                 Step("scomo.remove", name=component, params={"name": component}))
    return Campaign(job_id("flow", dev_id, protocol), steps, frozenset({dev_id}), (protocol,))


def flow_json(campaign: Campaign, dev_id: str) -> dict[str, Any]:
    """A one-device flow as ``GET /admin/flow/<DevID>`` shows it: its stage, what it waits for, the
    result of each Exec."""
    protocol = campaign.protocols[0]
    run = campaign.runs.get(dev_id) or DeviceRun(dev_id, protocol)
    first = campaign.steps[0]
    name = "reset" if first.kind == "lawmo.reset" else first.mo
    step = campaign.steps[min(run.step, len(campaign.steps) - 1)]
    return {"device": dev_id, "flow": name, "protocol": protocol, "campaign": campaign.id,
            "stage": len(run.results) + (run.state in ("sent", "accepted")), "stages": len(campaign.steps),
            "waiting": step.exec_path(protocol) if run.state in ("sent", "accepted") else "",
            "outcome": campaign.outcome(run),
            "results": [[campaign.steps[i].exec_path(protocol), code] for i, code in run.results]}
