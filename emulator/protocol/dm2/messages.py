"""DM 2.0 Packages #1, #2 and #3 as JSON, and typed commands (PROTOCOL 1.5-1.9, 1.19).

Two levels of error, so one bad command does not sink a whole package:
- the package is unusable (not JSON, not an object, ``CMD``/``Status`` missing or of the wrong type,
  a command that is not a non-empty array of strings) -> DecodeError (400) / TooLargeError (413);
- one known command has the wrong parameters -> ``parse_command`` returns ``Malformed`` and the
  engine answers 400 for that command and goes on; an unknown name gives ``Unknown`` (501).

Parameter reading (1.19 item 1): a parameter starting with ``http://``/``https://`` is a ServerURI,
anything else a ClientURI (or MOID for DEFAULT). Parameters are assigned by that kind, so a server
that swaps the order of a ClientURI and a ServerURI is still understood; among parameters of the
same kind the order is kept. ClientURIs are passed on as text: the engine parses them with
``parse_client_uri`` so that a bad one is a 400 for that command only. Command names are matched
case-insensitively. ``END`` with parameters is still an END (the parameters are ignored): answering
a 400 would need a Package#3 the server no longer expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.errors import DecodeError
from emulator.protocol.dm2 import jsonsafe
from emulator.protocol.dm2.moser import MOSerialization, mos_from_json, mos_to_json, validate_mo_data

ALERT_SERVER_INITIATED = "urn:oma:at:dm:2.0:ServerInitiatedMgmt"
ALERT_CLIENT_INITIATED = "urn:oma:at:dm:2.0:ClientInitiatedMgmt"
ALERT_BOOTSTRAP_COMPLETE = "urn:oma:at:dm:2.0:BootstrapComplete"
SESSION_ALERTS = frozenset({ALERT_SERVER_INITIATED, ALERT_CLIENT_INITIATED, ALERT_BOOTSTRAP_COMPLETE})
MARKS = frozenset({"fatal", "critical", "minor", "warning", "informational", "harmless", "indeterminate"})

# --- data shapes ----------------------------------------------------------------------------------


@dataclass(slots=True)
class MOInfo:
    """One entry of Package#1 ``MOS``: a supported MO and the instances this server may see."""

    ddf: str | None
    moid: str
    miid: list[str]


@dataclass(slots=True)
class Alert:
    """Generic alert (1.8). ``data`` is the JSON object of ``Data``."""

    alert_type: str
    source_uri: str | None = None
    target_uri: str | None = None
    mark: str | None = None
    data_type: str | None = None
    data: dict[str, Any] | None = None


@dataclass(slots=True)
class Initiation:
    """Package#1. An empty ``mos`` is left out of the JSON (only sent after REQ-MOS)."""

    mos: list[MOInfo] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


@dataclass(slots=True)
class Command:
    """One raw Package#2 command: its name as sent and its positional parameters."""

    name: str
    params: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Request:
    """Package#2."""

    commands: list[Command] = field(default_factory=list)


@dataclass(slots=True)
class StatusEntry:
    """One Package#3 status. ``mos`` carries GET data (1.19 item 2); ``mo_data`` is the bare
    ``MOData`` form some clients put in the entry directly (accepted on decode, sent if set)."""

    sc: int
    uri: list[str] | None = None
    mos: list[MOSerialization] | None = None
    mo_data: dict[str, Any] | None = None


@dataclass(slots=True)
class Response:
    """Package#3: one status per command of the previous Package#2, same order."""

    statuses: list[StatusEntry] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def server_initiated_alert(notification_id: int | None) -> Alert:
    """The session alert after a Package#0, carrying its id as ``Data.NotificationID`` (1.19 item 4)."""
    data = None if notification_id is None else {"NotificationID": notification_id}
    return Alert(ALERT_SERVER_INITIATED, data=data)


def notification_id_of(alert: Alert) -> int | None:
    """The NotificationID of a ServerInitiatedMgmt alert, None when absent or not an integer."""
    if alert.data is None:
        return None
    value = alert.data.get("NotificationID")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- typed commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HGet:
    server_uri: str
    client_uri: str | None = None


@dataclass(frozen=True, slots=True)
class HPut:
    server_uri: str
    client_uris: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HPost:
    server_uri: str
    client_uris: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Get:
    client_uri: str


@dataclass(frozen=True, slots=True)
class Delete:
    client_uri: str


@dataclass(frozen=True, slots=True)
class Exec:
    client_uri: str
    server_uri: str | None = None


@dataclass(frozen=True, slots=True)
class Show:
    server_uri: str


@dataclass(frozen=True, slots=True)
class Cont:
    server_uri: str


@dataclass(frozen=True, slots=True)
class End:
    pass


@dataclass(frozen=True, slots=True)
class Default:
    moid: str
    server_uri: str


@dataclass(frozen=True, slots=True)
class Sub:
    client_uri: str
    server_uri: str


@dataclass(frozen=True, slots=True)
class Unsub:
    client_uri: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """A command name DM 2.0 does not define: answer 501 and continue."""

    name: str
    params: tuple[str, ...]
    status = 501


@dataclass(frozen=True, slots=True)
class Malformed:
    """A known command with wrong parameters: answer 400 and continue."""

    name: str
    reason: str
    status = 400


TypedCommand = (
    HGet
    | HPut
    | HPost
    | Get
    | Delete
    | Exec
    | Show
    | Cont
    | End
    | Default
    | Sub
    | Unsub
    | Unknown
    | Malformed
)


def is_server_uri(param: str) -> bool:
    return param[:8].lower().startswith(("http://", "https://"))


def _split(params: list[str]) -> tuple[list[str], list[str]]:
    servers = [p for p in params if is_server_uri(p)]
    clients = [p for p in params if not is_server_uri(p)]
    return servers, clients


# (server URIs min, max), (client URIs min, max); None = unbounded
_SHAPES: dict[str, tuple[tuple[int, int | None], tuple[int, int | None]]] = {
    "HGET": ((1, 1), (0, 1)),
    "HPUT": ((1, 1), (1, None)),
    "HPOST": ((1, 1), (1, None)),
    "GET": ((0, 0), (1, 1)),
    "DELETE": ((0, 0), (1, 1)),
    "UNSUB": ((0, 0), (1, 1)),
    "EXEC": ((0, 1), (1, 1)),
    "SHOW": ((1, 1), (0, 0)),
    "CONT": ((1, 1), (0, 0)),
    "SUB": ((1, 1), (1, 1)),
    "DEFAULT": ((1, 1), (1, 1)),
}


def _count_ok(n: int, bounds: tuple[int, int | None]) -> bool:
    low, high = bounds
    return n >= low and (high is None or n <= high)


def parse_command(cmd: Command) -> TypedCommand:
    """Typed form of one command; never raises (bad parameters -> Malformed, bad name -> Unknown)."""
    name = cmd.name.upper()
    if name == "END":
        return End()
    shape = _SHAPES.get(name)
    if shape is None:
        return Unknown(cmd.name, tuple(cmd.params))
    servers, clients = _split(cmd.params)
    if not _count_ok(len(servers), shape[0]) or not _count_ok(len(clients), shape[1]):
        return Malformed(
            cmd.name,
            f"{name} got {len(servers)} ServerURI and {len(clients)} ClientURI/MOID parameters",
        )
    if any(not c for c in clients):
        return Malformed(cmd.name, f"{name} has an empty parameter")
    server = servers[0] if servers else None
    client = clients[0] if clients else None
    if name == "HGET":
        return HGet(servers[0], client)
    if name == "HPUT":
        return HPut(servers[0], tuple(clients))
    if name == "HPOST":
        return HPost(servers[0], tuple(clients))
    if name == "GET":
        return Get(clients[0])
    if name == "DELETE":
        return Delete(clients[0])
    if name == "UNSUB":
        return Unsub(clients[0])
    if name == "EXEC":
        return Exec(clients[0], server)
    if name == "SHOW":
        return Show(servers[0])
    if name == "CONT":
        return Cont(servers[0])
    if name == "SUB":
        return Sub(clients[0], servers[0])
    return Default(clients[0], servers[0])


def format_command(typed: TypedCommand) -> Command:
    """Raw command for a typed one in the positional order of 1.19 item 1 (reference server side)."""
    match typed:
        case HGet(server_uri=s, client_uri=c):
            return Command("HGET", [s] if c is None else [s, c])
        case HPut(server_uri=s, client_uris=cs):
            return Command("HPUT", [s, *cs])
        case HPost(server_uri=s, client_uris=cs):
            return Command("HPOST", [s, *cs])
        case Get(client_uri=c):
            return Command("GET", [c])
        case Delete(client_uri=c):
            return Command("DELETE", [c])
        case Exec(client_uri=c, server_uri=s):
            return Command("EXEC", [c] if s is None else [c, s])
        case Show(server_uri=s):
            return Command("SHOW", [s])
        case Cont(server_uri=s):
            return Command("CONT", [s])
        case End():
            return Command("END", [])
        case Default(moid=m, server_uri=s):
            return Command("DEFAULT", [m, s])
        case Sub(client_uri=c, server_uri=s):
            return Command("SUB", [c, s])
        case Unsub(client_uri=c):
            return Command("UNSUB", [c])
        case Unknown(name=n, params=ps):
            return Command(n, list(ps))
    raise TypeError(f"cannot format {typed!r} as a command")


# --- JSON helpers ---------------------------------------------------------------------------------


def _object(data: bytes, what: str, max_size: int) -> dict[str, Any]:
    obj = jsonsafe.loads(data, max_size=max_size, what=what)
    if not isinstance(obj, dict):
        raise DecodeError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _list_member(obj: dict[str, Any], key: str, what: str, *, required: bool) -> list[Any]:
    if key not in obj:
        if required:
            raise DecodeError(f"{what}: member {key!r} is required")
        return []
    value = obj[key]
    if not isinstance(value, list):
        raise DecodeError(f"{what}: {key} must be an array")
    return value



def _str_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DecodeError(f"{where}: expected an array of strings")
    return value


def alert_to_json(alert: Alert) -> dict[str, Any]:
    obj: dict[str, Any] = {"AlertType": alert.alert_type}
    for key, value in (
        ("SourceURI", alert.source_uri),
        ("TargetURI", alert.target_uri),
        ("Mark", alert.mark),
        ("DataType", alert.data_type),
        ("Data", alert.data),
    ):
        if value is not None:
            obj[key] = value
    return obj


def alerts_from_json(items: list[Any], what: str) -> list[Alert]:
    alerts = []
    for index, entry in enumerate(items):
        where = f"{what}.Alert[{index}]"
        if not isinstance(entry, dict):
            raise DecodeError(f"{where}: expected an object")
        alert_type = entry.get("AlertType")
        if not isinstance(alert_type, str) or not alert_type:
            raise DecodeError(f"{where}: AlertType (string) is required")
        mark = jsonsafe.optional_str(entry, "Mark", where)
        if mark is not None and mark not in MARKS:
            raise DecodeError(f"{where}: Mark {mark!r} is not one of {sorted(MARKS)}")
        data = entry.get("Data")
        if data is not None and not isinstance(data, dict):
            raise DecodeError(f"{where}: Data must be an object")
        alerts.append(
            Alert(
                alert_type=alert_type,
                source_uri=jsonsafe.optional_str(entry, "SourceURI", where),
                target_uri=jsonsafe.optional_str(entry, "TargetURI", where),
                mark=mark,
                data_type=jsonsafe.optional_str(entry, "DataType", where),
                data=data,
            )
        )
    return alerts


# --- Package#1 ------------------------------------------------------------------------------------


def encode_initiation(init: Initiation) -> bytes:
    obj: dict[str, Any] = {}
    if init.mos:
        obj["MOS"] = [
            {**({"DDF": m.ddf} if m.ddf is not None else {}), "MOID": m.moid, "MIID": list(m.miid)}
            for m in init.mos
        ]
    obj["Alert"] = [alert_to_json(a) for a in init.alerts]
    return jsonsafe.dumps(obj)


def decode_initiation(body: bytes, *, max_size: int = jsonsafe.DEFAULT_MAX_SIZE) -> Initiation:
    """Package#1 (reference server side). Whether a session alert is present is the server's check."""
    what = "Package#1"
    obj = _object(body, what, max_size)
    mos = []
    for index, entry in enumerate(_list_member(obj, "MOS", what, required=False)):
        where = f"{what}.MOS[{index}]"
        if not isinstance(entry, dict):
            raise DecodeError(f"{where}: expected an object")
        moid = entry.get("MOID")
        if not isinstance(moid, str) or not moid:
            raise DecodeError(f"{where}: MOID (string) is required")
        if "MIID" not in entry:
            raise DecodeError(f"{where}: MIID is required")
        mos.append(MOInfo(jsonsafe.optional_str(entry, "DDF", where), moid, _str_list(entry["MIID"], f"{where}.MIID")))
    alerts = alerts_from_json(_list_member(obj, "Alert", what, required=False), what)
    return Initiation(mos, alerts)


# --- Package#2 ------------------------------------------------------------------------------------


def encode_request(request: Request | list[Command]) -> bytes:
    commands = request.commands if isinstance(request, Request) else request
    return jsonsafe.dumps({"CMD": [[c.name, *c.params] for c in commands]})


def decode_request(body: bytes, *, max_size: int = jsonsafe.DEFAULT_MAX_SIZE) -> Request:
    """Package#2 (client side). An empty ``CMD`` is valid (1.19 item 5: long-poll timeout)."""
    what = "Package#2"
    obj = _object(body, what, max_size)
    commands = []
    for index, entry in enumerate(_list_member(obj, "CMD", what, required=True)):
        where = f"{what}.CMD[{index}]"
        if not isinstance(entry, list) or not entry:
            raise DecodeError(f"{where}: a command is a non-empty array of strings")
        if not all(isinstance(p, str) for p in entry):
            raise DecodeError(f"{where}: every command element must be a string")
        if not entry[0]:
            raise DecodeError(f"{where}: empty command name")
        commands.append(Command(entry[0], entry[1:]))
    return Request(commands)


# --- Package#3 ------------------------------------------------------------------------------------


def status_to_json(status: StatusEntry) -> dict[str, Any]:
    obj: dict[str, Any] = {"sc": status.sc}
    if status.uri is not None:
        obj["URI"] = list(status.uri)
    if status.mos is not None:
        obj["MOS"] = mos_to_json(status.mos)
    if status.mo_data is not None:
        obj["MOData"] = status.mo_data
    return obj


def encode_response(response: Response) -> bytes:
    obj: dict[str, Any] = {"Status": [status_to_json(s) for s in response.statuses]}
    if response.alerts:
        obj["Alert"] = [alert_to_json(a) for a in response.alerts]
    return jsonsafe.dumps(obj)


def decode_response(body: bytes, *, max_size: int = jsonsafe.DEFAULT_MAX_SIZE) -> Response:
    """Package#3 (reference server side). ``sc`` must be an integer 100..999."""
    what = "Package#3"
    obj = _object(body, what, max_size)
    statuses = []
    for index, entry in enumerate(_list_member(obj, "Status", what, required=True)):
        where = f"{what}.Status[{index}]"
        if not isinstance(entry, dict):
            raise DecodeError(f"{where}: expected an object")
        sc = entry.get("sc")
        if not isinstance(sc, int) or isinstance(sc, bool) or not 100 <= sc <= 999:
            raise DecodeError(f"{where}: sc must be an integer status code")
        uri = _str_list(entry["URI"], f"{where}.URI") if "URI" in entry else None
        mos = mos_from_json(entry["MOS"], what=f"{where}.MOS") if "MOS" in entry else None
        mo_data = validate_mo_data(entry["MOData"], f"{where}.MOData") if "MOData" in entry else None
        statuses.append(StatusEntry(sc, uri, mos, mo_data))
    alerts = alerts_from_json(_list_member(obj, "Alert", what, required=False), what)
    return Response(statuses, alerts)
