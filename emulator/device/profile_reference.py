"""The reference of every profile key (docs/profiles.md), taken from the checks the loader makes.

A hand-written list of keys drifts from the loader the day someone adds a key. So the keys, which
are required, their types, defaults and allowed values are not written here: :class:`_Recorder`
runs the real loader (:class:`~emulator.device.profile._ProfileReader`) over :data:`EXAMPLE` and
notes every check it makes. Only the sentences that explain a key live here (:data:`DOCS`), and
:func:`missing_docs` names every key the loader accepts that has none, so a test fails until the
new key is explained and docs/profiles.md regenerated (``dm-emulator profiles --reference``).

The same sentences comment the copy ``dm-emulator profiles new`` writes (:func:`commented_copy`).
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from emulator.device.identity import IdentitySpec
from emulator.device.profile import PLACEHOLDERS, _ProfileReader
from emulator.mo.behaviours import MAX_STEPS
from emulator.mo.behaviours import PLACEHOLDERS as STEP_PLACEHOLDERS
from emulator.util.tomlcheck import KeyPath

# A profile that makes the loader visit every section once; an array of tables needs one item here
# (a dm12 and a dm2 account, for the defaults that depend on the protocol).
EXAMPLE: dict[str, Any] = {
    "title": "Reference",
    "protocols": ["dm2", "dm12"],
    "devinfo": {"Man": "Acme", "Mod": "M1"},
    "identity": {f.name: f.default for f in dataclasses.fields(IdentitySpec)},
    "bearers": [{"name": "lte0", "type": "LTE"}],
    "environments": [{"name": "host", "kind": "host"}],
    "accounts": [{"server_id": "a", "protocol": "dm12", "client_secret": "s"},
                 {"server_id": "b", "protocol": "dm2", "client_secret": "s"}],
    "extra_mos": [{"path": "./Vendor"}],
    "dm_version": "1.3",
    "bootstrap": {"secret": "s", "acl_scope": ["./DevDetail"]},
    "behaviours": [{"node": "./Vendor/Update", "steps": [
        {"set": {"./Vendor/State": "x"}}, {"wait": 0.0}, {"status": 200}, {"fail": 0.0, "status": 500},
        {"alert": {"type": "x"}}]},
        {"mo": "fumo", "node": "./FwUpdate/x", "settings": {}}],
}

# Defaults that depend on something else, in words.
DEFAULT_TEXT: dict[str, str] = {"name": "the file name without .toml", "accounts.name": "its server_id"}

# Defaults the loader leaves to a dataclass (it passes only the keys a file sets).
_DATACLASS_DEFAULTS: dict[str, type] = {"identity": IdentitySpec}

SECTION_DOCS: dict[str, str] = {
    "": "The top level of the file.",
    "identity": "How the devices of a fleet are numbered: device *i* of `--count N` gets identity "
    "`start + i`, the same on every run. Every device also gets a serial, a MAC and a UUID, "
    "whatever its scheme (placeholders `{serial}`, `{mac}`, `{uuid}`, `{imei}`).",
    "ui": "What the device can show to its user.",
    "bootstrap": "DM 1.3 client-initiated bootstrap: a factory-fresh device GETs its first DM 1.x account "
    "from this bootstrap server before its first session (README \"DM 1.3\"); needs `dm_version = \"1.3\"`.",
    "limits": "How far one session may go before the device ends it (a server that never ends a "
    "session): DM 1.2 sends Alert 1223, DM 2.0 stops; the session ends `failed` saying which limit.",
    "bearers": "The device's access technologies, each with its own link conditions; the first "
    "one that is up carries the sessions.",
    "environments": "Operating environments (DM-HLF-006): a host and its guests or containers, "
    "each with a subtree `./OpEnv/<name>` and the accounts that manage it.",
    "accounts": "The management authorities the device knows from the factory: one DMAcc entry each "
    "(`./DMAcc/<server_id>` for dm12, `./DM2/DMAcc/<server_id>` for dm2).",
    "extra_mos": "Nodes the profile adds to the tree beyond the standard objects (vendor objects).",
    "devinfo": "Values of the DevInfo object (DM 1.2 `./DevInfo`, DM 2.0 `./DM2/DevInfo`), by node "
    "name as in the shipped DDF; `Man` and `Mod` are required; the device id comes from "
    "`[identity]`.",
    "behaviours": "What the device does when a server Execs a node (or Replaces a trigger node): "
    "steps run in order, so a vendor's update trigger can set nodes, take its time, answer a status, "
    "fail now and then, and report with a generic alert in a later session.",
    "behaviours.steps": f"One step (at most {MAX_STEPS} per behaviour): exactly one of `set`, `wait`, "
    "`status`, `fail` (which may carry the `status` it fails with) or `alert`. A `wait` makes the "
    "answer asynchronous (202, the result reported later).",
    "behaviours.steps.alert": "The generic alert the step sends in a later session (DM 1.2 Alert 1226 "
    "with the Exec's Correlator; DM 2.0 a generic alert). `data` and `source` take "
    + ", ".join(f"`{p}`" for p in STEP_PLACEHOLDERS) + ".",
    "devdetail": "Values of the DevDetail object (`./DevDetail`), by node name as in the shipped DDF; "
    "interior nodes such as `URI` or `Ext` are tables.",
}

DOCS: dict[str, str] = {
    "name": "The profile's name, as `--profile` takes it.",
    "title": "One line for `dm-emulator profiles` and the window.",
    "description": "A sentence or two about the device.",
    "protocols": "What the device speaks: `dm2` (OMA DM 2.0, JSON) and/or `dm12` (DM 1.2/1.3, "
    "SyncML); the first is the default of `run --protocol`.",
    "identity": "Table: see [identity].",
    "devinfo": "Table: see [devinfo].",
    "devdetail": "Table: see [devdetail].",
    "bearers": "Array of tables: see [[bearers]].",
    "environments": "Array of tables: see [[environments]].",
    "accounts": "Array of tables: see [[accounts]].",
    "extra_mos": "Array of tables: see [[extra_mos]].",
    "ui": "Table: see [ui].",
    "limits": "Table: see [limits].",
    "max_msg_size": "Largest message the device accepts, in bytes (DM 1.2 MaxMsgSize).",
    "max_obj_size": "Largest object the device accepts, in bytes (DM 1.2 MaxObjSize).",
    "encoding": "How DM 1.2 messages are sent: `xml` or `wbxml`.",
    "tree_style": "`windows` marks a Windows-style DM 1.2 client (needs `dm12`).",
    "dm_version": "The DM 1.x version the device implements: `1.2`, or `1.3` (speaks DM/1.3; needs `dm12`; "
    "README \"DM 1.3\").",
    "bootstrap": "Table: see [bootstrap] (DM 1.3 client-initiated bootstrap; needs the client-bootstrap "
    "feature).",
    "bootstrap.server_uri": "The bootstrap server the device GETs its first account from (`<server_uri>/<DevID>`); "
    "https, or plain http only to a loopback address. Empty: the device discovers its bootstrap server first "
    "(`GET <server>/.well-known/dm-bootstrap`, README \"DM 1.3\").",
    "bootstrap.secret": "The factory bootstrap secret (HTTP Basic password, user = the DevID); the reference "
    "server learns it from the shipped profiles.",
    "bootstrap.acl_scope": "The nodes the bootstrapped server gets every right on (besides its own account); "
    "ACLs in the bootstrap document are not taken.",
    "dm13_features": "The optional DM 1.3 features the device supports (`sha256-auth`, `session-bearer`, "
    "`feature-discovery`, `client-bootstrap`); needs `dm_version = \"1.3\"`; empty: all of them. Answered to servers from "
    "`./DevDetail/Ext/DMFeatures`.",
    "behaviours": "Array of tables: see [[behaviours]].",
    "behaviours.node": "The node (absolute DM URI; `*` matches one segment).",
    "behaviours.on": "`exec`: when a server Execs the node; `replace`: when it Replaces it (a trigger).",
    "behaviours.steps": "Array of tables: see [[behaviours.steps]]; at least one.",
    "behaviours.mo": "Instead of steps, a whole managed object whose state machine the emulator implements: "
    "`fumo` (firmware update, OMA FUMO; its knobs in README \"Firmware campaigns\"), `lawmo` (lock and wipe, "
    "OMA LAWMO), `scomo` (software components, OMA SCOMO; both in README \"How DM 2.0 is read here\"). "
    "`diagmon` (diagnostics: readings, traps, the error log; at `./DiagMon` for DM 1.2, `./DM2/DiagMon` "
    "for DM 2.0) and `connmo` (connectivity under server control; at `./ConnMO`, `./DM2/ConnMO`), both in "
    "README \"How DM is read here\". `node` is then the "
    "instance root (DM 1.2 path, or `./DM2/<MO name>/<MIID>` for DM 2.0). An object not declared is not in "
    "the device's tree (a server's Get of it is 404) and costs the device nothing. The shipped profiles "
    "declare what the device has: `smartphone`, `smartphone-dm13`, `smartphone-dm13-fresh`, "
    "`tablet-dual-env`, `home-gateway` and `vehicle-telematics` (a battery or a power supply and radios a "
    "server watches) have `diagmon` and `connmo` for each protocol they speak; `nbiot-sensor` (a "
    "constrained sensor with 2 KB messages) and `windows-laptop` (managed through its own `./Vendor/MSFT` "
    "nodes) have neither.",
    "behaviours.settings": "With `mo`: the object's knobs (e.g. fumo's `install_s`, `reboot_s`, `battery`, "
    "`min_battery`, `consent`, `fail`, `free_bytes`, `download_kbps`); unknown ones are refused.",
    "behaviours.steps.set": "Table of node URI = value to set.",
    "behaviours.steps.wait": "Seconds to wait before the next step.",
    "behaviours.steps.status": "The status to answer (with `fail`: the status of the failure).",
    "behaviours.steps.fail": "Probability of failing here (seeded per device, so runs repeat); a "
    "failure skips the later steps but the alerts.",
    "behaviours.steps.alert": "Table: see [behaviours.steps.alert].",
    "behaviours.steps.alert.type": "The alert type (e.g. `org.openmobilealliance.dm.firmwareupdate.devicerequest`).",
    "behaviours.steps.alert.format": "Format of `data`.",
    "behaviours.steps.alert.data": "The alert's data.",
    "behaviours.steps.alert.source": "The alert's source URI.",
    "behaviours.steps.alert.mark": "DM 2.0 Mark (`critical`, `warning`...).",
    "identity.scheme": "What the DevId is made of: `IMEI` (from `tac`, Luhn-checked), `MAC` (from "
    "`mac_prefix`), `UUID` (version 5, in `namespace`) or `SN` (`prefix` + serial).",
    "identity.start": "Index of the first device, so two fleets (or two runs) use disjoint ranges.",
    "identity.prefix": "Start of the serial number every device gets.",
    "identity.width": "Digits of the serial number (1 to 32).",
    "identity.tac": "IMEI Type Allocation Code: exactly 8 digits; the IMEI's serial part has 6 digits, "
    "so at most 1,000,000 devices per TAC.",
    "identity.mac_prefix": "First three octets of the MAC addresses; locally administered and unicast "
    "(e.g. `02:xx:xx`); 2^24 devices per prefix.",
    "identity.namespace": "UUID namespace of the version 5 UUIDs (default: the emulator's own).",
    "limits.max_messages": "Messages the device sends in one session at most; the next one it would "
    "send is not sent.",
    "limits.max_session_seconds": "Seconds one session may last at most, checked before every step.",
    "ui.has_screen": "The device can show DM 1.2 user-interaction alerts.",
    "ui.browser": "The device opens DM 2.0 SHOW pages (needs `has_screen`).",
    "bearers.name": "Interface name, unique in the profile (`lte0`).",
    "bearers.type": "Access technology.",
    "bearers.nat": "The device sits behind NAT on this bearer: servers cannot reach it (push long-poll "
    "instead of notifications).",
    "bearers.up": "Whether the bearer is up at start.",
    "bearers.latency_ms": "Added one-way latency, in milliseconds.",
    "bearers.jitter_ms": "Random variation of the latency, in milliseconds.",
    "bearers.loss": "Ratio of requests lost.",
    "bearers.bandwidth_kbps": "Bandwidth in kbit/s; 0 = unlimited.",
    "bearers.address": "The device's address on this bearer.",
    "bearers.roaming": "The device is roaming while on this bearer (a DM 1.3 device reports it with the bearer "
    "type in each session's Package 1).",
    "environments.name": "Environment name, unique in the profile: its subtree is `./OpEnv/<name>`.",
    "environments.kind": "`host` (at most one), `guest` or `container`.",
    "environments.own_identity": "The environment is a DM client of its own: its sessions carry its "
    "`ClientID` as DevId.",
    "environments.accounts": "The `server_id`s of the accounts that manage this environment.",
    "accounts.server_id": "The ServerID (SrvID in DM 2.0), unique in the profile; no `= & * +` or spaces.",
    "accounts.name": "Display name of the server.",
    "accounts.server_uri": "Where the server is; `{server}` is the URL given to `--server` (see the "
    "README on `--server` with and without a path).",
    "accounts.protocol": "`dm12` or `dm2`; must be among the profile's `protocols`.",
    "accounts.auth": "How the device authenticates to the server: `md5` is the default for dm12, "
    "`basic` for dm2 (which takes only `basic`, `digest` or `none`); `sha256` (DM 1.3's auth-SHA256) "
    "needs `dm_version = \"1.3\"`; every scheme but `none` needs `client_secret`.",
    "accounts.notification_secret": "dm12, DM 1.3 only: a separate secret for this server's notifications "
    "(`AppAuth/NOTIFCRED`); the device then checks a Package 0 with it alone, not with the server's "
    "credentials.",
    "accounts.server_auth": "dm12 only: how the server must prove itself: `dm` DM-layer credentials as "
    "`auth` asks; `transport` a verified TLS server certificate is enough; `none` accepted, shown as a "
    "warning.",
    "accounts.strict": "dm12 only: a server's protocol deviation (reused CmdIDs, Status children out of "
    "order, 212 where 200 is due ...) fails the session instead of being reported as a warning; "
    "`run --strict` sets it for every account.",
    "accounts.ui_resume": "dm2 only: after a SHOW's page flow, the server holds its answer to the "
    "Package#3 (`held`), or the client resumes the session itself (`client`).",
    "accounts.client_user": "The device's user name at the server.",
    "accounts.client_secret": "The device's secret.",
    "accounts.server_secret": "The secret the server proves itself with (DM 1.2 md5/hmac).",
    "accounts.nonce": "Initial nonce, base64 as in AAuthData.",
    "accounts.perms": "dm2 only: the MOIDs the server may manage (DMAcc `Perm`), e.g. "
    "`urn:oma:mo:oma-dm-devinfo:1.2`.",
    "accounts.acl_scope": "dm12 only: the DM URIs the server gets ACL rights on (`.` for the whole tree).",
    "accounts.priority": "Larger wins when two authorities change the same object (README, "
    "\"Management authorities\").",
    "extra_mos.path": "Absolute DM URI of the node (`./Vendor/App/Setting`).",
    "extra_mos.format": "Node format; `node` for an interior node (which has no value).",
    "extra_mos.value": "The leaf's value.",
    "extra_mos.type": "The node's Type (a MIME type, or an MO identifier for an MO's root).",
}


@dataclass
class Key:
    """One key as the loader checks it; ``defaults`` lists every default it used (one per protocol...)."""

    name: str
    required: bool = False
    kind: str = ""
    defaults: list[Any] = field(default_factory=list)
    choices: tuple[str, ...] = ()
    template: bool = False  # placeholders are filled in
    bounds: tuple[float, float | None] | None = None


@dataclass
class Section:
    """One table of the file: ``""`` is the top level, ``accounts`` an array of tables."""

    name: str
    keys: dict[str, Key]
    array: bool = False


class _Recorder(_ProfileReader):
    """The profile loader, noting each check it makes instead of only making it."""

    def __init__(self) -> None:
        super().__init__("<reference>", "", "example")
        self.sections: dict[str, Section] = {}

    def _section(self, path: KeyPath) -> Section:
        name = ".".join(p for p in path if isinstance(p, str))
        if name not in self.sections:
            self.sections[name] = Section(name, {}, array=bool(path) and isinstance(path[-1], int))
        return self.sections[name]

    def _key(self, path: KeyPath, key: str) -> Key:
        keys = self._section(path).keys
        if key not in keys:
            keys[key] = Key(key)
        return keys[key]

    def keys(self, data: Any, path: KeyPath, allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
        allowed, required = tuple(allowed), tuple(required)
        for key in allowed:
            self._key(path, key).required = key in required
        return super().keys(data, path, allowed, required)

    def value(self, data: dict[str, Any], path: KeyPath, key: str, kind: type, default: Any = None, *,
              choices: Iterable[str] | None = None, template: bool = False) -> Any:  # fmt: skip
        k = self._key(path, key)
        k.kind = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(kind, kind.__name__)
        if default is not None and default not in k.defaults:
            k.defaults.append(default)
        if choices is not None:
            k.choices = tuple(choices)
        k.template = k.template or template
        return super().value(data, path, key, kind, default, choices=choices, template=template)

    def number_range(self, at: KeyPath, v: float, lo: float, hi: float | None = None) -> None:
        self._key(at[:-1], str(at[-1])).bounds = (lo, hi)
        super().number_range(at, v, lo, hi)

    def strings(self, data: dict[str, Any], path: KeyPath, key: str) -> tuple[str, ...]:
        self._key(path, key).kind = "array of strings"
        return super().strings(data, path, key)

    def list_of(self, top: dict[str, Any], key: str, read: Any) -> tuple[Any, ...]:
        self._key((), key).kind = "array of tables"
        return super().list_of(top, key, read)

    def mo_values(self, data: Any, path: KeyPath, desc: Any, required: Iterable[str] = ()) -> dict[str, Any]:
        if len(path) == 1:
            self._key((), str(path[0])).kind = "table"
        return super().mo_values(data, path, desc, required)


def schema() -> dict[str, Section]:
    """Every section and key the loader checks, in the loader's order (see the module doc)."""
    recorder = _Recorder()
    recorder.profile(EXAMPLE)
    sections = recorder.sections
    top = sections[""]
    for name, section in sections.items():
        parent, _, last = name.rpartition(".")
        if name and parent in sections and last in sections[parent].keys and not sections[parent].keys[last].kind:
            sections[parent].keys[last].kind = "array of tables" if section.array else "table"
        spec = _DATACLASS_DEFAULTS.get(name)
        if spec is not None:
            defaults = {f.name: f.default for f in dataclasses.fields(spec)}
            for key in section.keys.values():
                if not key.defaults and key.name in defaults:
                    key.defaults.append(defaults[key.name])
        for key in section.keys.values():
            if not key.kind and key.defaults:
                key.kind = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
                    type(key.defaults[0]), "")
    for dotted, text in DEFAULT_TEXT.items():
        section_name, _, key_name = dotted.rpartition(".")
        if key_name in sections.get(section_name, Section("", {})).keys:
            sections[section_name].keys[key_name].defaults = [text]
    order = [n for k in top.keys if k in sections for n in sections if n == k or n.startswith(k + ".")]
    return {"": top, **{n: sections[n] for n in order}, **{n: s for n, s in sections.items() if n and n not in order}}


def missing_docs(sections: dict[str, Section] | None = None) -> list[str]:
    """Keys the loader accepts with no sentence in DOCS, sections with none in SECTION_DOCS, and
    arrays of tables whose items EXAMPLE does not show (so their keys were never seen)."""
    sections = schema() if sections is None else sections
    out = []
    for name, section in sections.items():
        if name not in SECTION_DOCS:
            out.append(f"section [{name}] has no sentence in SECTION_DOCS")
        out += [f"key {_dotted(name, k)} has no sentence in DOCS" for k in section.keys
                if _dotted(name, k) not in DOCS]
    for key in sections[""].keys.values():
        if key.kind == "array of tables" and key.name not in sections:
            out.append(f"array of tables [[{key.name}]] has no item in EXAMPLE: its keys cannot be seen")
    known = {_dotted(n, k) for n, s in sections.items() for k in s.keys}
    out += [f"DOCS explains {k}, which the loader does not accept" for k in DOCS if k not in known]
    return out


def _dotted(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str) and v in DEFAULT_TEXT.values():
        return v
    return f"`{v!r}`".replace("'", '"') if isinstance(v, str) else f"`{v}`"


def _header(section: Section) -> str:
    if not section.name:
        return "Top level"
    return f"[[{section.name}]]" if section.array else f"[{section.name}]"


def reference_markdown() -> str:
    """docs/profiles.md: every section and key the loader accepts, with type, default and meaning."""
    sections = schema()
    lines = [
        "# Device profile keys",
        "",
        "<!-- Generated by `dm-emulator profiles --reference` from the checks the profile loader makes",
        "     (emulator/device/profile.py, emulator/device/profile_reference.py). Do not edit: a test",
        "     fails when this file and the loader disagree. -->",
        "",
        "A device profile is a TOML file. `--profile` takes the name of a shipped one (`dm-emulator",
        "profiles` lists them, from `profiles/`) or the path to your own `.toml` file. To start one, copy a",
        "shipped profile with every key explained in comments:",
        "",
        "```sh",
        ".venv/bin/dm-emulator profiles new my-phone --from smartphone",
        "```",
        "",
        "then edit `my-phone.toml` and use it with `--profile ./my-phone.toml`. The loader is strict:",
        "an unknown key, a wrong type or a value out of range stops it with the file, the line and the",
        "reason.",
        "",
        "Strings where *placeholders are allowed* may hold, filled per device: "
        + ", ".join(f"`{{{p}}}`" for p in sorted(PLACEHOLDERS))
        + " (`{server}` is the URL given to `--server`).",
    ]
    order = [""] + [n for n in sections if n] + ["devinfo", "devdetail"]
    for name in order:
        section = sections.get(name)
        lines += ["", f"## {_header(section) if section else f'[{name}]'}", "", SECTION_DOCS[name], ""]
        if name in ("devinfo", "devdetail"):
            lines += _node_table(name)
            continue
        assert section is not None
        lines += ["| key | type | required / default | meaning |", "| --- | --- | --- | --- |"]
        for key in section.keys.values():
            if key.required:
                need = "required"
            elif key.defaults:
                need = " or ".join(_show(d) for d in key.defaults)
            else:
                need = "none" if key.kind not in ("array of strings", "array of tables") else "empty"
            meaning = DOCS.get(_dotted(name, key.name), "")
            if key.bounds is not None:
                lo, hi = key.bounds
                meaning += f" At least {lo}." if hi is None else f" From {lo} to {hi}."
            if key.template:
                meaning += " Placeholders allowed."
            if key.choices:
                meaning += " One of: " + ", ".join(f"`{c}`" for c in key.choices) + "."
            lines.append(f"| `{key.name}` | {key.kind or 'table'} | {need} | {meaning.strip()} |")
    return "\n".join(lines) + "\n"


def _node_table(name: str) -> list[str]:
    desc = _ProfileReader.devinfo_desc() if name == "devinfo" else _ProfileReader.devdetail_desc()
    rows = ["| node | format | required |", "| --- | --- | --- |"]
    for child in desc.children:
        if not child.name or child.name in ("DevId", "DevID"):
            continue
        need = "required" if name == "devinfo" and child.name in ("Man", "Mod") else ""
        rows.append(f"| `{child.name}` | {child.format} | {need} |")
    return rows


_KEY_LINE = re.compile(r"^([A-Za-z0-9_]+)\s*=")
_TABLE_LINE = re.compile(r"^\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?")


HEADER = (
    "# Device profile {name!r}, copied from {source!r} by `dm-emulator profiles new`.",
    "# Edit it, then use it by path: dm-emulator run --server URL --profile ./{name}.toml",
    "# Every key is explained in docs/profiles.md (`dm-emulator profiles --reference`); the loader",
    "# names file, line and reason for any mistake.",
)


def commented_copy(text: str, *, name: str, source: str) -> str:
    """A profile's text with a header saying how to use it and each key explained once per section.

    ``name`` replaces the top-level ``name``; the file's own comments stay. A copy of a copy gets
    neither the header nor the explanations twice.
    """
    out = [line.format(name=name, source=source) for line in HEADER] + [""]
    old_header = {line.split("{")[0] for line in HEADER}
    section = ""
    explained: set[str] = set()
    named = skipped = False
    for line in text.splitlines():
        stripped = line.strip()
        if any(stripped.startswith(h) for h in old_header if h.strip("# ")):
            skipped = True
            continue
        if skipped and not stripped:
            skipped = False
            continue  # the blank line after an old header
        skipped = False
        doc = None
        if m := _TABLE_LINE.match(stripped):
            section = m.group(1)
            doc = SECTION_DOCS.get(section)
        elif (m := _KEY_LINE.match(stripped)) and not line.startswith((" ", "\t")):
            if section == "" and m.group(1) == "name":
                line, named = f"name = {_toml_string(name)}", True
            if section not in ("devinfo", "devdetail"):
                doc = DOCS.get(_dotted(section, m.group(1)))
        if doc is not None and doc not in explained:
            explained.add(doc)
            wrapped = textwrap.wrap(doc, 96, initial_indent="# ", subsequent_indent="# ")
            if out[-len(wrapped):] != wrapped:
                out += wrapped
        out.append(line)
    if not named:
        out.insert(len(HEADER) + 1, f"name = {_toml_string(name)}")
    return "\n".join(out) + "\n"


def _toml_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
