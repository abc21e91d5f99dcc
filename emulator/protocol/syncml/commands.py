"""The SyncML DM message model: what parse_message returns and build_message takes.

Plain dataclasses, no behaviour, so the session engine, the reference server and the tests can build
and compare messages without touching XML. Field names follow the SyncML element names in
snake_case. Choices worth knowing:

- Identifiers (`msg_id`, `cmd_id`, `msg_ref`, `cmd_ref`) are strings: a Status must echo exactly what
  the peer sent, and SyncML defines them as character data, not numbers.
- Codes that are numbers by definition (alert code, status code, sizes) are ints; a value that does not
  parse turns its command into `Unknown` (see message.py) instead of failing the whole message.
- `Item.data` is `str` (XML text, CDATA or embedded XML serialised back to text) or `bytes` (WBXML
  opaque data); `None` means "no Data element", `""` means an empty `<Data/>`.
- Every command class has a class-level `name` (the element name, used for `Status/Cmd`); `Unknown`
  has the same attribute as a field, so `cmd.name` works on anything in `Message.commands`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias


@dataclass(slots=True, kw_only=True)
class Meta:
    """MetInf values (namespace `syncml:metinf`) that DM uses; others are ignored when parsing."""

    format: str | None = None
    type: str | None = None
    mark: str | None = None
    size: int | None = None
    version: str | None = None
    next_nonce: str | None = None
    max_msg_size: int | None = None
    max_obj_size: int | None = None


@dataclass(slots=True, kw_only=True)
class Cred:
    """SyncHdr credentials; `type` None means the SyncML default, syncml:auth-basic."""

    type: str | None = None
    format: str | None = None
    data: str = ""


@dataclass(slots=True, kw_only=True)
class Chal:
    """Challenge carried by a Status: the scheme to use next and the nonce for it (still base64)."""

    type: str | None = None
    format: str | None = None
    next_nonce: str | None = None


@dataclass(slots=True, kw_only=True)
class SyncHdr:
    session_id: str
    msg_id: str
    target: str = ""
    source: str = ""
    ver_dtd: str = "1.2"
    ver_proto: str = "DM/1.2"
    target_name: str | None = None
    source_name: str | None = None
    resp_uri: str | None = None
    no_resp: bool = False
    cred: Cred | None = None
    max_msg_size: int | None = None
    max_obj_size: int | None = None


@dataclass(slots=True, kw_only=True)
class Item:
    target: str | None = None
    source: str | None = None
    meta: Meta | None = None
    data: str | bytes | None = None
    more_data: bool = False


@dataclass(slots=True, kw_only=True)
class _ItemCommand:
    """Add, Replace, Delete, Get, Copy: a command applied to each Item; `meta` applies to all Items."""

    name: ClassVar[str] = ""
    cmd_id: str
    no_resp: bool = False
    meta: Meta | None = None
    items: list[Item] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Add(_ItemCommand):
    name: ClassVar[str] = "Add"


@dataclass(slots=True, kw_only=True)
class Replace(_ItemCommand):
    name: ClassVar[str] = "Replace"


@dataclass(slots=True, kw_only=True)
class Delete(_ItemCommand):
    name: ClassVar[str] = "Delete"


@dataclass(slots=True, kw_only=True)
class Get(_ItemCommand):
    name: ClassVar[str] = "Get"


@dataclass(slots=True, kw_only=True)
class Copy(_ItemCommand):
    name: ClassVar[str] = "Copy"


@dataclass(slots=True, kw_only=True)
class Exec(_ItemCommand):
    name: ClassVar[str] = "Exec"
    correlator: str | None = None


@dataclass(slots=True, kw_only=True)
class Alert:
    name: ClassVar[str] = "Alert"
    cmd_id: str
    code: int
    no_resp: bool = False
    correlator: str | None = None
    items: list[Item] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Atomic:
    name: ClassVar[str] = "Atomic"
    cmd_id: str
    no_resp: bool = False
    meta: Meta | None = None
    commands: list[Command] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Sequence:
    name: ClassVar[str] = "Sequence"
    cmd_id: str
    no_resp: bool = False
    meta: Meta | None = None
    commands: list[Command] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Status:
    """`code` is the Status Data; `cmd_ref` "0" with `cmd` "SyncHdr" answers the header."""

    name: ClassVar[str] = "Status"
    cmd_id: str
    msg_ref: str | None
    cmd_ref: str
    cmd: str
    code: int
    target_refs: list[str] = field(default_factory=list)
    source_refs: list[str] = field(default_factory=list)
    chal: Chal | None = None
    items: list[Item] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Results:
    name: ClassVar[str] = "Results"
    cmd_id: str
    msg_ref: str | None
    cmd_ref: str
    meta: Meta | None = None
    target_refs: list[str] = field(default_factory=list)
    source_refs: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Unknown:
    """A SyncBody/Atomic/Sequence child that could not become a command.

    Kept in place (rather than failing the message) so the engine answers it with `status` and still
    executes everything else, as real clients do (Windows: missing CmdID or unknown element -> 400).
    `status` is 400 for malformed commands, 412 when a mandatory part is missing, 501 for SyncML
    commands DM does not use (Sync, Map, Put, Search...). `cmd_id` is None when it was missing.
    """

    name: str
    cmd_id: str | None
    status: int = 400
    reason: str = ""


Command: TypeAlias = (
    Add | Replace | Delete | Get | Copy | Exec | Alert | Atomic | Sequence | Status | Results | Unknown
)

ItemCommand: TypeAlias = Add | Replace | Delete | Get | Copy | Exec
"""The commands that carry Items and nothing else of their own (Exec adds a Correlator)."""

ITEM_COMMANDS: tuple[type[ItemCommand], ...] = (Add, Replace, Delete, Get, Copy, Exec)


@dataclass(slots=True, kw_only=True)
class Message:
    header: SyncHdr
    commands: list[Command] = field(default_factory=list)
    final: bool = False
    deviations: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) the parser tolerated
