"""Scenario files: a timeline of what a fleet does, written by a QA engineer in TOML.

A scenario says which devices exist (``[[devices]]``: profile, count, identity range), when they
start sessions (``[[sessions]]``: at a time, periodically, on a server notification), what happens
to them on the way (``[[events]]``: bearer switches, NAT, the server unreachable for a while, a
crash and restart with the stored state, a local change of a node value, a generic alert, one
authority delegating part of the tree to another or revoking it, a local app registering, reading
or writing, each with whether the device should allow or refuse it), how a simulated user answers (``[ui]``), how the fleet is paced (``[pacing]``), and what must hold at the
end (``[[expect]]``, among them whether a server can Get a URI). ``assets/scenarios/`` has commented
examples.

Everything is checked before anything runs: unknown keys, wrong types, groups, bearers, servers or
apps that do not exist, identity ranges that overlap, a DM URI that cannot be one. Each mistake is a
:class:`FileFormatError` with the file, the line and the reason, because a scenario that fails
half-way through a 10,000-device run has cost its author the run.

Times are seconds (``30``, ``2.5``) or strings with a unit (``"500ms"``, ``"30s"``, ``"2m"``,
``"1h"``) and count from the start of the run.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.device.build import template_tree
from emulator.device.profile import PROTOCOLS, Profile, find_profile
from emulator.errors import EmulatorError, FileFormatError
from emulator.mo.accounts import SERVER_AUTH_POLICIES
from emulator.protocol.values import SESSION_OUTCOMES, DmProtocol, SessionOutcome
from emulator.tree import uri as uri_mod
from emulator.tree.clienturi import parse_client_uri
from emulator.util.tomlcheck import KeyPath, TomlChecker, read_toml, type_name

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "assets" / "scenarios"

EVENT_ACTIONS = (
    "switch_bearer", "bearer_down", "bearer_up", "nat", "server_down", "crash", "set_node", "alert", "notify",
    "delegate", "revoke", "app", "app_read", "app_write",
)  # fmt: skip
# done on the device itself, no session: each may say whether the device should allow or refuse it
LOCAL_ACTIONS = ("delegate", "revoke", "app", "app_read", "app_write")
LOCAL_OUTCOMES = ("ok", "refused")
DELEGATION_KINDS = ("shared", "full")
OUTCOMES = SESSION_OUTCOMES
CONFIRM_ANSWERS = ("yes", "no", "cancel", "timeout")
WEB_ANSWERS = ("submit", "cancel", "ignore")
ALERT_MARKS = ("fatal", "critical", "minor", "warning", "informational", "harmless", "indeterminate")
MAX_IN_FLIGHT = 256
MAX_RETRY = 10
"""``[pacing] retry`` (and ``run --retry``): at most this many more attempts of a failed session."""
DEFAULT_RETRY_BACKOFF = 1.0
"""Seconds before the first retry; each further one waits twice as long as the one before."""
PICKS = ("first", "random")
STATES = ("in_session", "idle")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_DURATION_S = 30 * 24 * 3600.0
"""Longest time any scenario field takes (30 days); ``inf`` or 1e300 s would be a sleep for ever."""
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*")


@dataclass(frozen=True, slots=True)
class DeviceGroup:
    """``count`` devices of one profile with identity indexes ``first_index`` .. ``first_index + count - 1``."""

    name: str
    profile: Profile
    count: int
    first_index: int
    protocol: DmProtocol
    line: int | None = None
    server_auth: str | None = None  # DM 1.x server authentication policy over the accounts' own
    strict: bool = False  # server deviations fail the session instead of warning
    server: str | None = None  # the account (ServerID) the group's sessions go to; None: routed
    bearer_kbps: float | None = None  # every bearer of the group's devices at this bandwidth (kbit/s)

    def session_options(self, protocol: DmProtocol) -> dict[str, object]:
        """Engine options the group's settings give a session of ``protocol``."""
        out: dict[str, object] = {}
        if self.server is not None:
            out["server_id"] = self.server
        if protocol == "dm12" and self.server_auth is not None:
            out["server_auth"] = self.server_auth
        if protocol == "dm12" and self.strict:
            out["strict"] = True
        return out


@dataclass(frozen=True, slots=True)
class Selector:
    """Which devices something applies to: named groups (empty = every group); of each group, only
    those in ``state`` (an event's moment: ``in_session`` or ``idle``), then at most ``limit`` of
    them or ``percent`` % (rounded up), the first ones or a ``random`` pick (seeded by the
    scenario's seed and the line, so a run picks the same devices again)."""

    groups: tuple[str, ...] = ()
    limit: int | None = None
    percent: float | None = None
    pick: str = "first"
    state: str | None = None
    line: int | None = field(default=None, compare=False)  # seeds a random pick

    def describe(self) -> str:
        who = ", ".join(self.groups) or "all devices"
        if self.state is not None:
            who = f"{who} {self.state.replace('_', ' ')}"
        how = "the first" if self.pick == "first" else "a random"
        if self.limit is not None:
            return f"{how} {self.limit} of {who}"
        if self.percent is not None:
            return f"{how} {self.percent:g} % of {who}"
        return who

    @property
    def everyone(self) -> bool:
        """Every device of the groups, whatever their state: no limit, percentage or state."""
        return self.limit is None and self.percent is None and self.state is None


@dataclass(frozen=True, slots=True)
class SessionRule:
    """When sessions start. ``every`` None and ``on_notification`` False: one session at ``at``.

    ``count`` None on a periodic rule: until the scenario's ``duration``.
    """

    devices: Selector
    at: float = 0.0
    every: float | None = None
    count: int | None = None
    on_notification: bool = False
    protocol: DmProtocol | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class GenericAlertSpec:
    """A device-raised generic alert (DM 1.2 Alert 1226, DM 2.0 generic Alert); sent in a session of its own."""

    type: str
    data: str | dict[str, Any] = ""
    source: str | None = None
    mark: str | None = None


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """Something that happens at ``at`` to the selected devices; which fields matter depends on ``action``.

    switch_bearer/bearer_up/bearer_down: ``bearer``; nat: ``bearer`` and ``nat``; server_down: ``duration``
    (the server is unreachable for every device); crash: ``duration`` until the restart from the stored
    state; set_node: ``path`` and ``value`` (a local change, as the user or an app would make);
    alert: ``alert``; notify: ask the reference server (its ``/admin/notify`` API) to notify the devices.

    Local actions (README "Management authorities and delegation: the rules"), each with ``expect``
    ``ok`` or ``refused``: delegate: ``delegator`` gives ``delegate`` the ``scope`` (``kind``,
    ``depth``, ``prohibited``); revoke: ``by`` (None: the user) undoes the delegation to ``delegate``
    on ``scope`` (made by ``delegator``, if given); app: register ``app`` with read-only ``grants`` and
    read-write ``write_grants``; app_read / app_write: ``app`` reads ``uri`` / writes ``value`` there.
    """

    at: float
    action: str
    devices: Selector = Selector()
    bearer: str = ""
    nat: bool = False
    duration: float = 0.0
    path: str = ""
    value: str | int | float | bool | None = None
    alert: GenericAlertSpec | None = None
    delegator: str = ""
    delegate: str = ""
    scope: str = ""
    kind: str = "shared"
    depth: int = 0
    prohibited: frozenset[str] = frozenset()
    by: str | None = None
    app: str = ""
    grants: tuple[str, ...] = ()
    write_grants: tuple[str, ...] = ()
    uri: str = ""
    expect: str = "ok"
    line: int | None = None


@dataclass(frozen=True, slots=True)
class UiAnswers:
    """How the simulated user answers: DM 1.2 alerts 1101-1104 and web pages (SHOW, launchBrowserToURI)."""

    confirm: str = "yes"
    text: str = ""
    choices: tuple[int, ...] = (1,)
    web: str = "submit"
    form: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Pacing:
    """``ramp_up``: first sessions spread over this long; ``think_time``: pause between a device's sessions;
    ``jitter``: each wait varies by up to this fraction; ``max_in_flight``: sessions open at once;
    ``retry``: a failed session is run again up to this many times, ``retry_backoff`` seconds after
    the failure, twice as long after each further one (jittered)."""

    ramp_up: float = 0.0
    think_time: float = 0.0
    jitter: float = 0.0
    max_in_flight: int = MAX_IN_FLIGHT
    retry: int = 0
    retry_backoff: float = DEFAULT_RETRY_BACKOFF

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt ``attempt`` (2 = the first retry), before jitter."""
        return self.retry_backoff * 2 ** max(0, attempt - 2)


@dataclass(frozen=True, slots=True)
class Expectation:
    """One check at the end. Exactly one of: ``node`` (+ ``equals``), ``status``, ``eventually``, a session
    count, ``within``, ``can_get`` / ``cannot_get`` (+ ``server``: whether that authority may Get the URI
    on each device).

    ``status``: every session ended so (after its retries). ``eventually``: every device's last session
    ended so (earlier ones may have failed: the device recovered). ``within`` without devices is also
    the run's time limit: the run is stopped when it is reached. A session that was run again (after a
    bearer switch cut it off, or by ``[pacing] retry``) counts once, by its last attempt; a session the
    device opened by itself to finish an earlier one (a DM 2.0 asynchronous EXEC result) is not counted.
    """

    devices: Selector = Selector()
    node: str | None = None
    equals: str | None = None
    status: SessionOutcome | None = None
    eventually: str | None = None
    sessions: int | None = None
    min_sessions: int | None = None
    max_sessions: int | None = None
    within: float | None = None
    server: str | None = None
    can_get: str | None = None
    cannot_get: str | None = None
    line: int | None = None

    def describe(self) -> str:
        who = self.devices.describe()
        if self.can_get is not None:
            what = f"{self.server} can Get {self.can_get}"
        elif self.cannot_get is not None:
            what = f"{self.server} cannot Get {self.cannot_get}"
        elif self.node is not None:
            what = f"{self.node} == {self.equals!r}"
        elif self.status is not None:
            what = f"every session {self.status}"
        elif self.eventually is not None:
            what = f"every device's last session {self.eventually}"
        elif self.within is not None:
            what = f"done within {self.within:g} s"
        else:
            bounds = {"==": self.sessions, ">=": self.min_sessions, "<=": self.max_sessions}
            what = "sessions " + " and ".join(f"{op} {n}" for op, n in bounds.items() if n is not None)
        return f"{who}: {what}"


@dataclass(frozen=True)
class CampaignSpec:
    """``[campaign]``: the firmware campaign the run asks the reference server for at its start
    (``POST /admin/campaigns``, with the admin token): a generated package of ``size`` bytes that
    makes devices report ``version``, fetched directly or through its download descriptor."""

    package: str
    size: int
    version: str
    descriptor: bool = True
    operation: str = "DownloadAndUpdate"
    line: int | None = None

    def admin_json(self, scenario: str) -> dict[str, object]:
        return {"id": scenario, "package": self.package, "size": self.size, "version": self.version,
                "devices": "*", "descriptor": self.descriptor, "operation": self.operation}


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    source: str = ""
    seed: int = 0
    duration: float | None = None
    groups: tuple[DeviceGroup, ...] = ()
    sessions: tuple[SessionRule, ...] = ()
    events: tuple[TimelineEvent, ...] = ()
    ui: UiAnswers = UiAnswers()
    pacing: Pacing = Pacing()
    expectations: tuple[Expectation, ...] = ()
    mo: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()  # [mo.<kind>]: knobs over the profiles'
    campaign: CampaignSpec | None = None

    @property
    def device_count(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def time_limit(self) -> float | None:
        """The earliest fleet-wide ``within``: the run stops there."""
        limits = [e.within for e in self.expectations if e.within is not None and not e.devices.groups]
        return min(limits) if limits else None

    @property
    def needs_store(self) -> bool:
        """A crash restarts a device from what it stored, so the run needs a workspace."""
        return any(e.action == "crash" for e in self.events)


def parse_duration(value: object) -> float | None:
    """Seconds from ``30``, ``2.5``, ``"500ms"``, ``"2m"``; None when it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        return None
    return seconds if math.isfinite(seconds) and 0 <= seconds <= MAX_DURATION_S else None


def default_scenario(profile: str | Profile, count: int, protocol: str | None = None, *,
                     name: str = "devices") -> Scenario:  # fmt: skip
    """What ``run`` does without ``--scenario``: ``count`` devices, one session each, all at once."""
    prof = find_profile(profile) if isinstance(profile, str) else profile
    proto = protocol or prof.protocols[0]
    if proto not in prof.protocols:
        raise EmulatorError(f"profile {prof.name} does not speak {proto} (it speaks {', '.join(prof.protocols)})",
                            status=400)
    return Scenario(name=f"{count} x {prof.name}",
                    groups=(DeviceGroup(name, prof, count, 0, proto),),
                    sessions=(SessionRule(Selector()),))


def load_scenario(path: str | os.PathLike[str], *, profile: str | None = None, count: int | None = None,
                  protocol: str | None = None) -> Scenario:  # fmt: skip
    """Read and check a scenario; FileFormatError (file, line, reason) for any mistake.

    A scenario without ``[[devices]]`` takes its fleet from ``profile``/``count``/``protocol`` (the
    command line) as one group called ``devices``.
    """
    text, data = read_toml(path, "scenario")
    return _ScenarioReader(os.fspath(path), text, Path(path).stem).scenario(data, profile, count, protocol)


def find_scenario(name: str) -> Path:
    """A scenario path: an existing file, or the stem of one in ``assets/scenarios/``."""
    p = Path(name)
    if p.is_file():
        return p
    shipped = SCENARIO_DIR / (name if name.endswith(".toml") else f"{name}.toml")
    if shipped.is_file():
        return shipped
    known = ", ".join(sorted(f.stem for f in SCENARIO_DIR.glob("*.toml"))) or "none"
    raise FileFormatError(name, None, f"no such scenario file (shipped scenarios: {known})")


class _ScenarioReader(TomlChecker):
    def __init__(self, label: str, text: str, stem: str) -> None:
        super().__init__(label, text)
        self.stem = stem
        self.groups: dict[str, DeviceGroup] = {}

    # -- primitives --------------------------------------------------------------------------

    def duration(self, data: dict[str, Any], path: KeyPath, key: str, default: float | None = None) -> float | None:
        if key not in data:
            return default
        v = parse_duration(data[key])
        if v is None:
            raise self.fail((*path, key), f"{data[key]!r} is not a duration (write 30, 2.5, \"500ms\", \"30s\", "
                                          "\"2m\" or \"1h\")")
        return v

    def count(self, data: dict[str, Any], path: KeyPath, key: str, lo: int = 1) -> int | None:
        v = self.value(data, path, key, int)
        if v is not None:
            self.number_range((*path, key), v, lo)
        return v

    def line(self, path: KeyPath) -> int | None:
        return self.where.line_of(path)

    def dm_uri(self, at: KeyPath, uri: str) -> None:
        if not uri.startswith("./"):
            raise self.fail(at, f"{uri!r} must be an absolute DM URI starting with ./")
        try:
            uri_mod.split(uri)
        except EmulatorError as exc:
            raise self.fail(at, str(exc)) from None

    def selector(self, data: dict[str, Any], path: KeyPath) -> Selector:
        raw = data.get("devices", [])
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise self.fail((*path, "devices"), f"expected a group name or a list of them, got {type_name(raw)} {raw!r}")
        names = [] if names in (["all"], ["*"]) else names
        for n in names:
            if n not in self.groups:
                known = ", ".join(self.groups) or "none"
                raise self.fail((*path, "devices"), f"no device group {n!r} (groups: {known}; or \"all\")")
        if "limit" in data and "percent" in data:
            raise self.fail((*path, "percent"), "give limit (how many) or percent (what share), not both")
        percent = self.value(data, path, "percent", float, None)
        if percent is not None and not 0 < percent <= 100:
            raise self.fail((*path, "percent"), f"{percent:g} must be more than 0 and at most 100")
        return Selector(tuple(names), self.count(data, path, "limit"), percent,
                        self.value(data, path, "pick", str, "first", choices=PICKS),
                        self.value(data, path, "state", str, None, choices=STATES), self.line(path))

    def selected(self, sel: Selector) -> list[DeviceGroup]:
        return [self.groups[n] for n in sel.groups] if sel.groups else list(self.groups.values())

    # -- sections ----------------------------------------------------------------------------

    def scenario(self, data: dict[str, Any], profile: str | None, count: int | None,
                 protocol: str | None) -> Scenario:  # fmt: skip
        top = self.keys(data, (), ("name", "description", "seed", "duration", "devices", "sessions", "events",
                                   "ui", "pacing", "expect", "mo", "campaign"))
        if "devices" in top:
            if not isinstance(top["devices"], list) or not top["devices"]:
                raise self.fail(("devices",), "expected one or more [[devices]] tables")
            self.list_of(top, "devices", self.group)
            self.check_ranges()
        elif profile is None:
            raise self.fail((), "no [[devices]] in the scenario: add one, or give --profile (and --count)")
        else:
            try:
                g = default_scenario(profile, count or 1, protocol).groups[0]
            except EmulatorError as exc:
                raise FileFormatError(self.label, None, f"devices from the command line: {exc}") from None
            self.groups[g.name] = g
        duration = self.duration(top, (), "duration")
        sessions = self.list_of(top, "sessions", self.session_rule) or (SessionRule(Selector()),)
        for i, rule in enumerate(sessions):
            if "sessions" in top and duration is None and (rule.on_notification or (rule.every and not rule.count)):
                raise self.fail(("sessions", i), "this rule has no end: give it a count, or the scenario a duration")
        events = self.list_of(top, "events", self.event)
        self.check_apps(events)
        if duration is not None:
            for key, items in (("sessions", sessions if "sessions" in top else ()), ("events", events)):
                for i, item in enumerate(items):
                    if item.at > duration:
                        raise self.fail((key, i, "at"), f"at {item.at:g} s is after the scenario's duration "
                                                        f"({duration:g} s)")
        expectations = self.list_of(top, "expect", self.expectation)
        seed = self.value(top, (), "seed", int, 0)
        return Scenario(
            name=self.value(top, (), "name", str, self.stem),
            description=self.value(top, (), "description", str, ""),
            source=self.label,
            seed=seed,
            duration=duration,
            groups=tuple(self.groups.values()),
            sessions=sessions,
            events=tuple(sorted(events, key=lambda e: e.at)),
            ui=self.ui(top.get("ui", {})),
            pacing=self.pacing(top.get("pacing", {})),
            expectations=expectations,
            mo=self.mo_settings(top.get("mo", {})),
            campaign=self.campaign(top["campaign"]) if "campaign" in top else None,
        )

    def mo_settings(self, data: Any) -> tuple[tuple[str, tuple[tuple[str, object], ...]], ...]:
        """``[mo.<kind>]``: knobs of a managed object for every device that declares it (checked as
        a profile's ``[behaviours.settings]``; only the ones given are changed)."""
        from emulator.mo.behaviours import mo_kinds
        from emulator.mo.operations import check_settings

        if not isinstance(data, dict):
            raise self.fail(("mo",), f"expected a table of [mo.<kind>] tables, got {type_name(data)}")
        kinds = mo_kinds()
        out = []
        for kind, given in data.items():
            if kind not in kinds:
                raise self.fail(("mo", kind), f"unknown managed object {kind!r} (known: {', '.join(sorted(kinds))})")
            if not isinstance(given, dict):
                raise self.fail(("mo", kind), f"expected a table of settings, got {type_name(given)}")
            try:
                check_settings(kinds[kind], given)
            except ValueError as exc:
                raise self.fail(("mo", kind), str(exc)) from None
            out.append((kind, tuple(given.items())))
        return tuple(out)

    def campaign(self, data: Any) -> CampaignSpec:
        path = ("campaign",)
        d = self.keys(data, path, ("package", "size", "version", "descriptor", "operation"),
                      required=("package", "size", "version"))
        size = self.value(d, path, "size", int)
        self.number_range((*path, "size"), size, 0, 256 << 20)
        package = self.value(d, path, "package", str)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", package):
            raise self.fail((*path, "package"), f"{package!r}: letters, digits and ._- (at most 64)")
        return CampaignSpec(package, size, self.value(d, path, "version", str),
                            self.value(d, path, "descriptor", bool, True),
                            self.value(d, path, "operation", str, "DownloadAndUpdate",
                                       choices=("DownloadAndUpdate", "Download")), self.line(path))

    def group(self, data: Any, path: KeyPath) -> DeviceGroup:
        d = self.keys(data, path, ("name", "profile", "count", "first_index", "protocol", "server_auth", "strict",
                                   "server", "bearer_kbps"), required=("profile",))
        name = self.value(d, path, "name", str, None)
        if name is None:
            name = d["profile"] if isinstance(d["profile"], str) else ""
        if not name or name in ("all", "*") or not re.fullmatch(r"[\w.-]+", name):
            raise self.fail((*path, "name"), f"{name!r} cannot name a group (letters, digits, _ . -; not 'all')")
        if name in self.groups:
            raise self.fail((*path, "name") if "name" in d else path,
                            f"group {name!r} used twice (give each [[devices]] its own name)")
        prof_name = self.value(d, path, "profile", str)
        try:
            prof = find_profile(prof_name)
        except EmulatorError as exc:  # unknown profile, or a broken one
            raise self.fail((*path, "profile"), str(exc)) from None
        protocol = self.value(d, path, "protocol", str, prof.protocols[0], choices=PROTOCOLS)
        if protocol not in prof.protocols:
            raise self.fail((*path, "protocol"),
                            f"profile {prof.name} does not speak {protocol} (it speaks {', '.join(prof.protocols)})")
        count = self.count(d, path, "count") or 1
        first = self.count(d, path, "first_index", lo=0)
        if first is None:  # on from the last group of the same profile
            first = max((g.first_index + g.count for g in self.groups.values() if g.profile.name == prof.name),
                        default=0)
        server = self.value(d, path, "server", str, None)
        if server is not None and not any(a.server_id == server and a.protocol == protocol for a in prof.accounts):
            known = ", ".join(a.server_id for a in prof.accounts if a.protocol == protocol) or "none"
            raise self.fail((*path, "server"), f"profile {prof.name} has no {protocol} account {server!r} "
                                               f"(it has: {known})")
        server_auth = self.value(d, path, "server_auth", str, None, choices=SERVER_AUTH_POLICIES)
        strict = self.value(d, path, "strict", bool, False)
        if (server_auth is not None or strict) and protocol != "dm12":
            raise self.fail((*path, "server_auth" if server_auth is not None else "strict"),
                            "server_auth and strict apply to dm12 groups (DM 1.x sessions)")
        kbps = self.value(d, path, "bearer_kbps", float, None)
        if kbps is not None:
            self.number_range((*path, "bearer_kbps"), kbps, 1, 100_000_000)
        g = DeviceGroup(name, prof, count, first, protocol, self.line(path), server_auth, strict, server, kbps)
        self.groups[name] = g
        return g

    def check_ranges(self) -> None:
        """Two groups of one profile must not share identities: they would be the same devices."""
        seen: list[tuple[int, DeviceGroup]] = []
        for i, g in enumerate(self.groups.values()):
            for _, other in seen:
                if other.profile.name == g.profile.name and g.first_index < other.first_index + other.count \
                        and other.first_index < g.first_index + g.count:
                    raise self.fail(("devices", i, "first_index"),
                                    f"identities {g.first_index}..{g.first_index + g.count - 1} of group "
                                    f"{g.name!r} overlap those of group {other.name!r} "
                                    f"({other.first_index}..{other.first_index + other.count - 1}, same profile)")
            seen.append((i, g))

    def session_rule(self, data: Any, path: KeyPath) -> SessionRule:
        d = self.keys(data, path, ("devices", "at", "every", "count", "on", "protocol"))
        on = self.value(d, path, "on", str, None, choices=("notification",))
        if on and ("every" in d or "count" in d or "at" in d):
            raise self.fail(path, "a rule with on = \"notification\" has no at, every or count: the server decides")
        every = self.duration(d, path, "every")
        if every is not None and every <= 0:
            raise self.fail((*path, "every"), "must be more than 0")
        n = self.count(d, path, "count")
        if n is not None and every is None:
            raise self.fail((*path, "count"), "count needs every (how often)")
        sel = self.selector(d, path)
        protocol = self.value(d, path, "protocol", str, None, choices=PROTOCOLS)
        for g in self.selected(sel):
            if protocol and protocol not in g.profile.protocols:
                raise self.fail((*path, "protocol"), f"group {g.name!r} ({g.profile.name}) does not speak {protocol}")
            if on and (protocol or g.protocol) != "dm2":
                raise self.fail((*path, "on"), f"group {g.name!r} runs dm12: notifications come over the DM 2.0 "
                                               "push channel only (GET <server>/push/<DevID>)")
        return SessionRule(sel, self.duration(d, path, "at", 0.0) or 0.0, every, n, bool(on), protocol,
                           self.line(path))

    def event(self, data: Any, path: KeyPath) -> TimelineEvent:
        d = self.keys(data, path, ("at", "do", "devices", "limit", "percent", "pick", "state", "bearer", "nat",
                                   "duration", "path", "value",
                                   "type", "data", "source", "mark", "delegator", "delegate", "scope", "kind",
                                   "depth", "prohibited", "by", "app", "grants", "write_grants", "uri", "expect"),
                      required=("at", "do"))
        action = self.value(d, path, "do", str, choices=EVENT_ACTIONS)
        needs = {
            "switch_bearer": ("bearer",), "bearer_down": ("bearer",), "bearer_up": ("bearer",),
            "nat": ("bearer", "nat"), "server_down": ("duration",), "crash": (), "set_node": ("path", "value"),
            "alert": ("type",), "notify": (), "delegate": ("delegator", "delegate", "scope"),
            "revoke": ("delegate", "scope"), "app": ("app",), "app_read": ("app", "uri"),
            "app_write": ("app", "uri", "value"),
        }[action]  # fmt: skip
        optional = {
            "crash": ("duration",), "alert": ("data", "source", "mark"),
            "delegate": ("kind", "depth", "prohibited"), "revoke": ("by", "delegator"),
            "app": ("grants", "write_grants"),
        }.get(action, ())  # fmt: skip
        takes = {*needs, *optional, "at", "do", "devices", "limit", "percent", "pick", "state",
                 *({"expect"} if action in LOCAL_ACTIONS else ())}
        for key in d:
            if key not in takes:
                raise self.fail((*path, key), f"{action} takes no {key!r} (it takes: {', '.join(sorted(takes))})")
        for key in needs:
            if key not in d:
                raise self.fail(path, f"{action} needs {key!r}")
        if action == "server_down" and any(k in d for k in ("devices", "limit", "percent", "pick", "state")):
            raise self.fail(path, "server_down applies to the whole fleet: no devices, limit, percent, pick or state")
        sel = self.selector(d, path)
        bearer = self.value(d, path, "bearer", str, "")
        if bearer:
            for g in self.selected(sel):
                names = [b.name for b in g.profile.bearers]
                if bearer not in names:
                    raise self.fail((*path, "bearer"), f"group {g.name!r} ({g.profile.name}) has no bearer {bearer!r} "
                                                       f"(it has {', '.join(names) or 'none'})")
        path_v = self.value(d, path, "path", str, "")
        if path_v:
            self.dm_uri((*path, "path"), path_v)
            for g in self.selected(sel):
                if not template_tree(g.profile).exists(path_v):
                    raise self.fail((*path, "path"), f"group {g.name!r} ({g.profile.name}) has no node {path_v}")
        value = d.get("value")
        if "value" in d and not isinstance(value, str | int | float | bool):
            raise self.fail((*path, "value"), f"expected a string, number or boolean, got {type_name(value)}")
        self.finite((*path, "value"), value)
        alert = None
        if action == "alert":
            data_v = d.get("data", "")
            if not isinstance(data_v, str | dict):
                raise self.fail((*path, "data"), f"expected a string or a table, got {type_name(data_v)}")
            source = self.value(d, path, "source", str, None)
            if source:
                self.dm_uri((*path, "source"), source)
            alert = GenericAlertSpec(self.value(d, path, "type", str), data_v, source,
                                     self.value(d, path, "mark", str, None, choices=ALERT_MARKS))
        servers = {key: self.server(d, path, key, sel) for key in ("delegator", "delegate", "by")}
        prohibited = self.strings(d, path, "prohibited")
        for i, sid in enumerate(prohibited):
            self.server({"prohibited": sid}, path, "prohibited", sel, at=(*path, "prohibited", i))
        scope = self.value(d, path, "scope", str, "")
        if scope:
            self.scope_uri((*path, "scope"), scope, sel)
        uri = self.value(d, path, "uri", str, "")
        if uri:
            self.scope_uri((*path, "uri"), uri, None)
        depth = self.count(d, path, "depth", lo=0) or 0
        grants = self.strings(d, path, "grants")
        write_grants = self.strings(d, path, "write_grants")
        for key, items in (("grants", grants), ("write_grants", write_grants)):
            for i, target in enumerate(items):
                self.scope_uri((*path, key, i), target, None)
        app = self.value(d, path, "app", str, "")
        if "app" in d and (not app or any(c in app for c in "/?&=+* \t")):
            raise self.fail((*path, "app"), f"{app!r} cannot name an application (no spaces or / ? & = + *)")
        duration = self.duration(d, path, "duration", 0.0) or 0.0
        return TimelineEvent(
            at=self.duration(d, path, "at") or 0.0, action=action, devices=sel, bearer=bearer,
            nat=self.value(d, path, "nat", bool, False), duration=duration, path=path_v, value=value,
            alert=alert, delegator=servers["delegator"] or "", delegate=servers["delegate"] or "", scope=scope,
            kind=self.value(d, path, "kind", str, "shared", choices=DELEGATION_KINDS), depth=depth,
            prohibited=frozenset(prohibited), by=servers["by"], app=app, grants=grants, write_grants=write_grants,
            uri=uri, expect=self.value(d, path, "expect", str, "ok", choices=LOCAL_OUTCOMES), line=self.line(path),
        )

    def server(self, data: dict[str, Any], path: KeyPath, key: str, sel: Selector,
               at: KeyPath | None = None) -> str | None:  # fmt: skip
        """A ServerID every selected group's profile has an account for (a management authority)."""
        sid = self.value(data, path, key, str, None) if at is None else data[key]
        if sid is None:
            return None
        for g in self.selected(sel):
            known = [a.server_id for a in g.profile.accounts]
            if sid not in known:
                raise self.fail(at or (*path, key), f"group {g.name!r} ({g.profile.name}) has no server {sid!r} "
                                                    f"(its authorities: {', '.join(known) or 'none'})")
        return sid

    def scope_uri(self, at: KeyPath, uri: str, sel: Selector | None) -> None:
        """A DM 1.x URI (``./...``) or a DM 2.0 ClientURI (``urn:oma:mo:...``); with ``sel``, a DM 1.x
        URI must name a node the selected groups' devices have from the factory."""
        if uri.startswith("."):
            self.dm_uri(at, uri)
            for g in self.selected(sel) if sel is not None else ():
                if not template_tree(g.profile).exists(uri):
                    raise self.fail(at, f"group {g.name!r} ({g.profile.name}) has no node {uri}")
            return
        try:
            parse_client_uri(uri)
        except EmulatorError as exc:
            raise self.fail(at, f"{uri!r} is neither a DM URI (./...) nor a ClientURI: {exc}") from None

    def check_apps(self, events: tuple[TimelineEvent, ...]) -> None:
        """An app is used only after an ``app`` event registered it (earlier, or above it at the same time)."""
        for i, e in enumerate(events):
            if e.action not in ("app_read", "app_write"):
                continue
            if not any(r.action == "app" and r.app == e.app and (r.at, j) < (e.at, i)
                       for j, r in enumerate(events)):
                raise self.fail(("events", i, "app"), f"no app {e.app!r} registered before this event "
                                                      "(add an event with do = \"app\")")

    def ui(self, data: Any) -> UiAnswers:
        path = ("ui",)
        d = self.keys(data, path, ("confirm", "text", "choices", "web", "form", "delay"))
        choices = d.get("choices", [1])
        if not isinstance(choices, list) or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1
                                                    for c in choices):
            raise self.fail((*path, "choices"), f"expected a list of choice numbers from 1, got {choices!r}")
        form = d.get("form", {})
        if not isinstance(form, dict) or not all(isinstance(v, str | int | float | bool) for v in form.values()):
            raise self.fail((*path, "form"), "expected a table of field = value")
        for field_name, field_value in form.items():
            self.finite((*path, "form", field_name), field_value)
        return UiAnswers(
            confirm=self.value(d, path, "confirm", str, "yes", choices=CONFIRM_ANSWERS),
            text=self.value(d, path, "text", str, ""),
            choices=tuple(choices),
            web=self.value(d, path, "web", str, "submit", choices=WEB_ANSWERS),
            form={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in form.items()},
            delay=self.duration(d, path, "delay", 0.0) or 0.0,
        )

    def pacing(self, data: Any) -> Pacing:
        path = ("pacing",)
        d = self.keys(data, path, ("ramp_up", "think_time", "jitter", "max_in_flight", "retry", "retry_backoff"))
        jitter = self.value(d, path, "jitter", float, 0.0)
        self.number_range((*path, "jitter"), jitter, 0.0, 1.0)
        retry = self.count(d, path, "retry", lo=0) or 0
        self.number_range((*path, "retry"), retry, 0, MAX_RETRY)
        backoff = self.duration(d, path, "retry_backoff", DEFAULT_RETRY_BACKOFF)
        if "retry_backoff" in d and "retry" not in d:
            raise self.fail((*path, "retry_backoff"), "retry_backoff goes with retry (how many times)")
        return Pacing(
            ramp_up=self.duration(d, path, "ramp_up", 0.0) or 0.0,
            think_time=self.duration(d, path, "think_time", 0.0) or 0.0,
            jitter=jitter,
            max_in_flight=self.count(d, path, "max_in_flight") or MAX_IN_FLIGHT,
            retry=retry,
            retry_backoff=DEFAULT_RETRY_BACKOFF if backoff is None else backoff,
        )

    def expectation(self, data: Any, path: KeyPath) -> Expectation:
        d = self.keys(data, path, ("devices", "limit", "percent", "pick", "node", "equals", "status", "eventually",
                                   "sessions", "min_sessions", "max_sessions", "within", "server", "can_get",
                                   "cannot_get"))
        kinds: list[str] = [k for k in ("node", "status", "eventually", "within", "can_get", "cannot_get") if k in d]
        if any(k in d for k in ("sessions", "min_sessions", "max_sessions")):
            kinds.append("sessions")
        if len(kinds) != 1:
            raise self.fail(path, "an [[expect]] checks exactly one thing: node (with equals), status, eventually, "
                                  "sessions (or min_sessions/max_sessions), within, or can_get/cannot_get "
                                  "(with server)"
                                  + (f"; this one has {', '.join(kinds)}" if kinds else ""))
        node = self.value(d, path, "node", str, None)
        if node is not None:
            self.dm_uri((*path, "node"), node)
            if "equals" not in d:
                raise self.fail((*path, "node"), "a node expectation needs equals = <value after the run>")
        elif "equals" in d:
            raise self.fail((*path, "equals"), "equals goes with node")
        equals = d.get("equals")
        if equals is not None and not isinstance(equals, str | int | float | bool):
            raise self.fail((*path, "equals"), f"expected a string, number or boolean, got {type_name(equals)}")
        self.finite((*path, "equals"), equals)
        sel = self.selector(d, path)
        access = {k: self.value(d, path, k, str, None) for k in ("can_get", "cannot_get")}
        for k, uri in access.items():
            if uri is not None:
                self.scope_uri((*path, k), uri, None)
                if "server" not in d:
                    raise self.fail((*path, k), f"{k} needs server = <the ServerID that may or may not Get it>")
        if "server" in d and not any(access.values()):
            raise self.fail((*path, "server"), "server goes with can_get or cannot_get")
        server = self.server(d, path, "server", sel)
        exact = self.count(d, path, "sessions", lo=0)
        lo = self.count(d, path, "min_sessions", lo=0)
        hi = self.count(d, path, "max_sessions", lo=0)
        if lo is not None and hi is not None and lo > hi:
            raise self.fail((*path, "max_sessions"), f"max_sessions {hi} is below min_sessions {lo}")
        return Expectation(
            devices=sel, server=server, can_get=access["can_get"], cannot_get=access["cannot_get"], node=node, equals=None if equals is None else node_text(equals),
            status=self.value(d, path, "status", str, None, choices=OUTCOMES),
            eventually=self.value(d, path, "eventually", str, None, choices=("completed",)), sessions=exact,
            min_sessions=lo, max_sessions=hi, within=self.duration(d, path, "within"), line=self.line(path),
        )


def node_text(value: object) -> str:
    """How a TOML value compares with a node value: booleans as DM writes them (``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
