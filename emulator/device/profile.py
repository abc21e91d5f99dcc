"""Device profiles: the TOML templates a VirtualDevice (or a fleet of them) is built from.

A profile is user-written data, so it is read strictly: unknown keys, wrong types, bad enum
values and inconsistent references are errors that name the file and the line (a typo in
``latency_ms`` must not silently give a zero-latency bearer). Node names under ``[devinfo]`` and
``[devdetail]`` are checked against the shipped DDFs for the same reason.

String values may hold placeholders filled per device by :func:`fill` (``{server}``, ``{dev_id}``,
``{serial}``, ``{index}``, ``{imei}``, ``{mac}``, ``{uuid}``); server URIs default to the local
demo server, ``{server}/dm12`` or ``{server}/dm2``.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import os
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.device.identity import IdentityError, IdentitySpec
from emulator.errors import EmulatorError, FileFormatError
from emulator.mo.accounts import AUTH_SCHEMES_DM1, AUTH_SCHEMES_DM2, SERVER_AUTH_POLICIES, UI_RESUME_STYLES
from emulator.mo.behaviours import MAX_STEPS, MAX_WAIT_S, STEP_KINDS, AlertStep, Behaviour, Step, mo_kinds
from emulator.mo.operations import check_settings
from emulator.protocol.flow import DEFAULT_LIMITS, MAX_MESSAGES_LIMIT, MAX_SECONDS_LIMIT, SessionLimits
from emulator.protocol.values import DmProtocol, is_protocol
from emulator.tree import uri as uri_mod
from emulator.tree.ddf import FORMATS, NodeDesc, load_builtin
from emulator.util.tomlcheck import KeyPath, TomlChecker, read_toml, type_name

PROFILE_DIR = Path(__file__).resolve().parents[2] / "profiles"

PROTOCOLS: tuple[DmProtocol, ...] = ("dm2", "dm12")  # the order the profile docs list them in
BEARER_TYPES = (
    "LTE", "LTE-M", "5GNR", "UMTS", "GSM", "WiFi", "Ethernet", "DSL", "Fiber", "NBIoT", "Satellite", "Bluetooth",
)  # fmt: skip
ENV_KINDS = ("host", "guest", "container")
AUTH_SCHEMES = ("basic", "md5", "hmac", "sha256", "digest", "none")
DM_VERSIONS = ("1.2", "1.3")  # what a dm12 profile implements (codes.DM_VERSIONS)
DM13_FEATURES = ("sha256-auth", "session-bearer", "feature-discovery", "client-bootstrap")
"""The optional DM 1.3 features a profile may claim (``dm13_features``), the ones this emulator
implements; a 1.3 profile that lists none claims them all. Answered to servers from
./DevDetail/Ext/DMFeatures (DM-HLF-019, README "DM 1.3")."""
ENCODINGS = ("xml", "wbxml")
TREE_STYLES = ("oma", "windows")
PLACEHOLDERS = frozenset({"server", "dev_id", "serial", "index", "imei", "mac", "uuid"})
DEFAULT_SERVER_URI = {"dm12": "{server}/dm12", "dm2": "{server}/dm2"}


class UnknownProfileError(EmulatorError):
    """No profile of that name; the message lists the ones there are."""

    status = 404


@dataclass(frozen=True, slots=True)
class BearerSpec:
    """One access technology of the device; ``loss`` is a ratio 0..1, ``bandwidth_kbps`` 0 = unlimited."""

    name: str
    type: str
    nat: bool = False
    up: bool = True
    latency_ms: int = 0
    jitter_ms: int = 0
    loss: float = 0.0
    bandwidth_kbps: int = 0
    address: str = ""
    roaming: bool = False  # the device is roaming while on this bearer (reported by DM 1.3 devices)


@dataclass(frozen=True, slots=True)
class EnvSpec:
    """An operating environment; ``accounts`` are the ServerIDs that manage it."""

    name: str
    kind: str
    own_identity: bool = False
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """A management authority the device knows from the factory (a DMAcc entry).

    ``nonce`` is the initial nonce, base64 as it sits in AAuthData; ``perms`` are the MOIDs a DM 2.0
    server may manage (DMAcc Perm); ``acl_scope`` the DM 1.x URIs the server gets ACL rights on;
    a larger ``priority`` wins when authorities conflict.
    """

    server_id: str
    name: str
    server_uri: str
    protocol: DmProtocol
    auth: str
    client_user: str = "{dev_id}"
    client_secret: str = ""
    server_secret: str = ""
    nonce: str = ""
    perms: tuple[str, ...] = ()
    acl_scope: tuple[str, ...] = ()
    priority: int = 0
    server_auth: str = "dm"  # DM 1.x: how the server proves itself (dm, transport, none)
    ui_resume: str = "held"  # DM 2.0: after a SHOW, the server holds its answer, or the client resumes
    strict: bool = False  # DM 1.x: a server's protocol deviation fails the session (not only a warning)
    notification_secret: str = ""  # DM 1.3: separate credentials for this server's notifications


@dataclass(frozen=True, slots=True)
class BootstrapSpec:
    """DM 1.3 client-initiated bootstrap: where a factory-fresh device asks for its first account,
    the factory secret it proves itself with, and the nodes the new server gets rights on."""

    server_uri: str = "{server}/bootstrap"
    secret: str = ""
    acl_scope: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UiSpec:
    has_screen: bool = False
    browser: bool = False


@dataclass(frozen=True, slots=True)
class ExtraNode:
    """A node the profile adds beyond the standard MOs; interior when ``format`` is ``node``."""

    path: str
    format: str = "chr"
    value: str | None = None
    type: str = ""


@dataclass(frozen=True)
class Profile:
    """A device template. ``devinfo``/``devdetail`` map node names to TOML values (tables for
    interior nodes such as ``URI`` or ``Ext``); treat them as read-only, thousands of devices share them."""

    name: str
    title: str
    description: str
    protocols: tuple[DmProtocol, ...]
    identity: IdentitySpec
    devinfo: dict[str, Any]
    devdetail: dict[str, Any]
    bearers: tuple[BearerSpec, ...] = ()
    environments: tuple[EnvSpec, ...] = ()
    accounts: tuple[AccountSpec, ...] = ()
    extra_mos: tuple[ExtraNode, ...] = ()
    behaviours: tuple[Behaviour, ...] = ()  # declared Exec / trigger behaviours (mo/behaviours.py)
    ui: UiSpec = field(default_factory=UiSpec)
    max_msg_size: int = 16384
    max_obj_size: int = 1048576
    encoding: str = "xml"
    tree_style: str = "oma"
    source: str = ""
    limits: SessionLimits = DEFAULT_LIMITS
    dm_version: str = "1.2"  # the DM 1.x version the device implements (1.2 or 1.3)
    dm13_features: tuple[str, ...] = ()  # the optional DM 1.3 features it supports (1.3 only)
    bootstrap: BootstrapSpec | None = None  # DM 1.3 client-initiated bootstrap (None: none)


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    """One line of ``dm-emulator profiles``; ``error`` is set (and the rest may be empty) for a broken file."""

    name: str
    title: str
    description: str
    protocols: tuple[DmProtocol, ...]
    path: str
    error: str | None = None


def fill(template: str, values: Mapping[str, object]) -> str:
    """Replace ``{server}``, ``{dev_id}`` ... in a profile string; unknown fields were refused at load."""
    return template.format_map(_Values(values))


class _Values(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return ""


# ---------------------------------------------------------------------------------------------
# finding profiles


def list_profiles(dirs: Iterable[str | os.PathLike[str]] | None = None) -> list[ProfileSummary]:
    """Every ``*.toml`` in ``dirs`` (default: the repo's ``profiles/``), sorted by name.

    A broken file is listed with its error instead of hiding the others.
    """
    out: list[ProfileSummary] = []
    for file in _profile_files(dirs):
        try:
            p = load_profile(file)
        except FileFormatError as exc:
            out.append(ProfileSummary(file.stem, "", "", (), str(file), error=str(exc)))
        else:
            out.append(ProfileSummary(p.name, p.title, p.description, p.protocols, str(file)))
    return sorted(out, key=lambda s: s.name)


def find_profile(name: str, dirs: Iterable[str | os.PathLike[str]] | None = None) -> Profile:
    """A profile by file stem or ``name`` (or a path to a .toml file); UnknownProfileError lists the choices."""
    if name.endswith(".toml") and Path(name).is_file():
        return load_profile(name)
    if name.endswith(".toml") or os.sep in name or "/" in name:
        raise UnknownProfileError(f"no profile file {name!r} (a --profile with a path must name an existing "
                                  f".toml file; `dm-emulator profiles new NAME --from smartphone` writes one)")
    files = _profile_files(dirs)
    for file in files:
        if file.stem == name:
            return load_profile(file)
    known: list[str] = []
    for file in files:
        try:
            p = load_profile(file)
        except FileFormatError:
            known.append(file.stem)
            continue
        if p.name == name or p.name.casefold() == name.casefold() or file.stem.casefold() == name.casefold():
            return p
        known.append(p.name)
    listing = ", ".join(sorted(set(known))) or "none found"
    raise UnknownProfileError(f"no device profile {name!r}; available: {listing}; or give the path to a .toml "
                              "file of your own (`dm-emulator profiles new NAME --from smartphone` writes one)")


def _profile_files(dirs: Iterable[str | os.PathLike[str]] | None) -> list[Path]:
    files: list[Path] = []
    for d in [PROFILE_DIR] if dirs is None else dirs:
        files.extend(sorted(Path(d).glob("*.toml")))
    return files


# ---------------------------------------------------------------------------------------------
# loading


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read and check one profile file; any problem is a FileFormatError naming file and line."""
    text, data = read_toml(path, "profile")
    return _ProfileReader(os.fspath(path), text, Path(path).stem).profile(data)


_Path = KeyPath


class _ProfileReader(TomlChecker):
    """Turns the parsed TOML into dataclasses, checking as it goes."""

    def __init__(self, label: str, text: str, stem: str) -> None:
        super().__init__(label, text)
        self.stem = stem

    def value(self, data: dict[str, Any], path: _Path, key: str, kind: type, default: Any = None, *,
              choices: Iterable[str] | None = None, template: bool = False) -> Any:  # fmt: skip
        v = super().value(data, path, key, kind, default, choices=choices)
        if template and key in data:
            self.check_template((*path, key), v)
        return v

    def check_template(self, at: _Path, text: str) -> None:
        try:
            parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text) if f is not None]
        except ValueError as exc:
            raise self.fail(at, f"bad placeholder in {text!r} ({exc}); write {{{{ and }}}} for braces") from None
        for f, spec, conv in parts:
            if f not in PLACEHOLDERS or spec or conv:
                known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
                raise self.fail(at, f"unknown placeholder {{{f}}} in {text!r} (known: {known})")

    # -- sections --------------------------------------------------------------------------

    def profile(self, data: dict[str, Any]) -> Profile:
        top = self.keys(
            data,
            (),
            (
                "name", "title", "description", "protocols", "identity", "devinfo", "devdetail", "bearers",
                "environments", "accounts", "extra_mos", "ui", "max_msg_size", "max_obj_size", "encoding",
                "tree_style", "behaviours", "limits", "dm_version", "dm13_features", "bootstrap",
            ),  # fmt: skip
            required=("title", "protocols", "devinfo"),
        )
        name = self.value(top, (), "name", str, self.stem)
        listed = self.strings(top, (), "protocols")
        if not listed:
            raise self.fail(("protocols",), "list at least one of " + ", ".join(PROTOCOLS))
        protocols: list[DmProtocol] = []
        for p in listed:
            if not is_protocol(p):
                raise self.fail(("protocols",), f"{p!r} is not one of {', '.join(PROTOCOLS)}")
            protocols.append(p)
        max_msg = self.value(top, (), "max_msg_size", int, 16384)
        self.number_range(("max_msg_size",), max_msg, 256)
        max_obj = self.value(top, (), "max_obj_size", int, 1048576)
        self.number_range(("max_obj_size",), max_obj, 1)
        tree_style = self.value(top, (), "tree_style", str, "oma", choices=TREE_STYLES)
        if tree_style == "windows" and "dm12" not in protocols:
            raise self.fail(("tree_style",), "the windows tree style needs the dm12 protocol")
        dm_version = self.value(top, (), "dm_version", str, "1.2", choices=DM_VERSIONS)
        if "dm_version" in top and "dm12" not in protocols:
            raise self.fail(("dm_version",), "dm_version is the DM 1.x version: it needs the dm12 protocol")
        features: tuple[str, ...] = self.strings(top, (), "dm13_features")
        if features and dm_version != "1.3":
            raise self.fail(("dm13_features",), 'dm13_features needs dm_version = "1.3"')
        for feature in features:
            if feature not in DM13_FEATURES:
                raise self.fail(("dm13_features",), f"{feature!r} is not one of {', '.join(DM13_FEATURES)}")
        if dm_version == "1.3" and not features:
            features = DM13_FEATURES
        boot = self.bootstrap(top["bootstrap"]) if "bootstrap" in top else None
        if boot is not None and "client-bootstrap" not in features:
            raise self.fail(("bootstrap",), 'a [bootstrap] needs dm_version = "1.3" with the client-bootstrap feature')
        accounts = self.accounts(top.get("accounts", []), protocols)
        for i, acc in enumerate(accounts):
            if acc.notification_secret and dm_version != "1.3":
                raise self.fail(("accounts", i, "notification_secret"),
                                'separate notification credentials are DM 1.3\'s: they need dm_version = "1.3"')
            if acc.auth == "sha256" and "sha256-auth" not in features:
                raise self.fail(("accounts", i, "auth"), 'auth "sha256" is DM 1.3\'s scheme: it needs '
                                                         'dm_version = "1.3" with the sha256-auth feature')
        bearers = self.list_of(top, "bearers", self.bearer)
        environments = self.list_of(top, "environments", self.environment)
        self.unique(bearers, "bearers", "name")
        self.unique(environments, "environments", "name")
        server_ids = {a.server_id for a in accounts}
        for i, env in enumerate(environments):
            for sid in env.accounts:
                if sid not in server_ids:
                    known = ", ".join(sorted(server_ids)) or "none"
                    raise self.fail(("environments", i, "accounts"), f"no account {sid!r} (accounts: {known})")
        if sum(1 for e in environments if e.kind == "host") > 1:
            raise self.fail(("environments",), "more than one environment of kind 'host'")
        return Profile(
            name=name,
            title=self.value(top, (), "title", str),
            description=self.value(top, (), "description", str, ""),
            protocols=tuple(protocols),
            identity=self.identity(top.get("identity", {})),
            devinfo=self.mo_values(top["devinfo"], ("devinfo",), self.devinfo_desc(), required=("Man", "Mod")),
            devdetail=self.mo_values(top.get("devdetail", {}), ("devdetail",), self.devdetail_desc()),
            bearers=bearers,
            environments=environments,
            accounts=accounts,
            extra_mos=self.list_of(top, "extra_mos", self.extra_node),
            behaviours=self.list_of(top, "behaviours", self.behaviour),
            ui=self.ui(top.get("ui", {})),
            max_msg_size=max_msg,
            max_obj_size=max_obj,
            encoding=self.value(top, (), "encoding", str, "xml", choices=ENCODINGS),
            tree_style=tree_style,
            source=self.label,
            limits=self.limits(top.get("limits", {})),
            dm_version=dm_version,
            dm13_features=tuple(features),
            bootstrap=boot,
        )

    def bootstrap(self, data: Any) -> BootstrapSpec:
        """``[bootstrap]``: DM 1.3 client-initiated bootstrap (README "DM 1.3")."""
        path = ("bootstrap",)
        d = self.keys(data, path, ("server_uri", "secret", "acl_scope"), required=("secret",))
        spec = BootstrapSpec(
            server_uri=self.value(d, path, "server_uri", str, "{server}/bootstrap", template=True),
            secret=self.value(d, path, "secret", str, template=True),
            acl_scope=self.strings(d, path, "acl_scope"),
        )
        if not spec.secret:
            raise self.fail((*path, "secret"), "the factory bootstrap secret may not be empty")
        for uri in spec.acl_scope:
            self.dm_uri((*path, "acl_scope"), uri)
        return spec

    def identity(self, data: Any) -> IdentitySpec:
        path = ("identity",)
        fields = ("scheme", "start", "prefix", "width", "tac", "mac_prefix", "namespace")
        d = self.keys(data, path, fields)
        types = {"start": int, "width": int}
        kwargs = {k: self.value(d, path, k, types.get(k, str)) for k in fields if k in d}
        if "scheme" in kwargs:
            kwargs["scheme"] = kwargs["scheme"].upper()
        try:
            return IdentitySpec(**kwargs)
        except IdentityError as exc:
            raise self.fail((*path, exc.field) if exc.field else path, str(exc)) from None

    def limits(self, data: Any) -> SessionLimits:
        """``[limits]``: how far one session may go before the device ends it (see protocol.flow)."""
        path = ("limits",)
        d = self.keys(data, path, ("max_messages", "max_session_seconds"))
        messages = self.value(d, path, "max_messages", int, DEFAULT_LIMITS.max_messages)
        seconds = self.value(d, path, "max_session_seconds", float, DEFAULT_LIMITS.max_seconds)
        for key, v, hi in (("max_messages", messages, MAX_MESSAGES_LIMIT), ("max_session_seconds", seconds,
                                                                           MAX_SECONDS_LIMIT)):
            if not 1 <= v <= hi:  # written so that nan fails too
                raise self.fail((*path, key), f"{v} must be between 1 and {hi:g}")
        return SessionLimits(messages, seconds)

    def ui(self, data: Any) -> UiSpec:
        d = self.keys(data, ("ui",), ("has_screen", "browser"))
        has_screen = self.value(d, ("ui",), "has_screen", bool, False)
        browser = self.value(d, ("ui",), "browser", bool, False)
        if browser and not has_screen:
            raise self.fail(("ui", "browser"), "a browser needs has_screen = true")
        return UiSpec(has_screen, browser)

    def bearer(self, data: Any, path: _Path) -> BearerSpec:
        d = self.keys(
            data,
            path,
            ("name", "type", "nat", "up", "latency_ms", "jitter_ms", "loss", "bandwidth_kbps", "address", "roaming"),
            required=("name", "type"),
        )
        spec = BearerSpec(
            name=self.value(d, path, "name", str),
            type=self.value(d, path, "type", str, choices=BEARER_TYPES),
            nat=self.value(d, path, "nat", bool, False),
            up=self.value(d, path, "up", bool, True),
            latency_ms=self.value(d, path, "latency_ms", int, 0),
            jitter_ms=self.value(d, path, "jitter_ms", int, 0),
            loss=self.value(d, path, "loss", float, 0.0),
            bandwidth_kbps=self.value(d, path, "bandwidth_kbps", int, 0),
            address=self.value(d, path, "address", str, "", template=True),
            roaming=self.value(d, path, "roaming", bool, False),
        )
        self.segment((*path, "name"), spec.name)
        self.number_range((*path, "latency_ms"), spec.latency_ms, 0)
        self.number_range((*path, "jitter_ms"), spec.jitter_ms, 0)
        self.number_range((*path, "loss"), spec.loss, 0.0, 1.0)
        self.number_range((*path, "bandwidth_kbps"), spec.bandwidth_kbps, 0)
        return spec

    def environment(self, data: Any, path: _Path) -> EnvSpec:
        d = self.keys(data, path, ("name", "kind", "own_identity", "accounts"), required=("name", "kind"))
        spec = EnvSpec(
            name=self.value(d, path, "name", str),
            kind=self.value(d, path, "kind", str, choices=ENV_KINDS),
            own_identity=self.value(d, path, "own_identity", bool, False),
            accounts=self.strings(d, path, "accounts"),
        )
        self.segment((*path, "name"), spec.name)
        return spec

    def accounts(self, items: Any, protocols: Sequence[DmProtocol]) -> tuple[AccountSpec, ...]:
        accounts = self.list_of({"accounts": items}, "accounts", self.account)
        self.unique(accounts, "accounts", "server_id")
        for i, a in enumerate(accounts):
            if a.protocol not in protocols:
                raise self.fail(("accounts", i, "protocol"), f"{a.protocol!r} is not among the profile's protocols")
        return accounts

    def account(self, data: Any, path: _Path) -> AccountSpec:
        d = self.keys(
            data,
            path,
            (
                "server_id", "name", "server_uri", "protocol", "auth", "client_user", "client_secret",
                "server_secret", "nonce", "perms", "acl_scope", "priority", "server_auth", "ui_resume", "strict",
                "notification_secret",
            ),  # fmt: skip
            required=("server_id", "protocol"),
        )
        protocol = self.value(d, path, "protocol", str, choices=PROTOCOLS)
        server_id = self.value(d, path, "server_id", str)
        if not server_id or any(c in server_id for c in "=&*+ \t"):
            raise self.fail((*path, "server_id"), f"{server_id!r} cannot be a ServerID (no = & * + or spaces)")
        auth = self.value(d, path, "auth", str, "md5" if protocol == "dm12" else "basic", choices=AUTH_SCHEMES)
        spec = AccountSpec(
            server_id=server_id,
            name=self.value(d, path, "name", str, server_id),
            server_uri=self.value(d, path, "server_uri", str, DEFAULT_SERVER_URI[protocol], template=True),
            protocol=protocol,
            auth=auth,
            client_user=self.value(d, path, "client_user", str, "{dev_id}", template=True),
            client_secret=self.value(d, path, "client_secret", str, "", template=True),
            server_secret=self.value(d, path, "server_secret", str, "", template=True),
            nonce=self.value(d, path, "nonce", str, ""),
            perms=self.strings(d, path, "perms"),
            acl_scope=self.strings(d, path, "acl_scope"),
            priority=self.value(d, path, "priority", int, 0),
            server_auth=self.value(d, path, "server_auth", str, "dm", choices=SERVER_AUTH_POLICIES),
            ui_resume=self.value(d, path, "ui_resume", str, "held", choices=UI_RESUME_STYLES),
            strict=self.value(d, path, "strict", bool, False),
            notification_secret=self.value(d, path, "notification_secret", str, "", template=True),
        )
        if "notification_secret" in d and protocol != "dm12":
            raise self.fail((*path, "notification_secret"), "notification_secret applies to dm12 accounts "
                                                            "(a DM 2.0 account has Auth/Noti)")
        if "server_auth" in d and protocol != "dm12":
            raise self.fail((*path, "server_auth"), "server_auth applies to dm12 accounts (a DM 2.0 server is "
                                                    "authenticated by TLS only)")
        if "strict" in d and protocol != "dm12":
            raise self.fail((*path, "strict"), "strict applies to dm12 accounts (DM 1.x server deviations)")
        if "ui_resume" in d and protocol != "dm2":
            raise self.fail((*path, "ui_resume"), "ui_resume applies to dm2 accounts (DM 2.0 SHOW)")
        allowed = AUTH_SCHEMES_DM2 if protocol == "dm2" else AUTH_SCHEMES_DM1
        if auth not in allowed:
            raise self.fail((*path, "auth"), f"{protocol} accounts take auth {', '.join(allowed)}, not {auth!r}")
        if auth != "none" and not spec.client_secret:
            raise self.fail(path, f"auth {auth!r} needs a client_secret")
        if spec.nonce:
            try:
                base64.b64decode(spec.nonce, validate=True)
            except (binascii.Error, ValueError):
                raise self.fail((*path, "nonce"), f"{spec.nonce!r} is not base64") from None
        if spec.perms and protocol != "dm2":
            raise self.fail((*path, "perms"), "perms (DMAcc Perm MOIDs) exist only for dm2 accounts; use acl_scope")
        if spec.acl_scope and protocol != "dm12":
            raise self.fail((*path, "acl_scope"), "acl_scope (DM 1.x ACLs) applies only to dm12 accounts; use perms")
        for moid in spec.perms:
            if not re.fullmatch(r"urn:oma:mo:[\w.-]+:\d+\.\d+|[\w.-]+/\d+\.\d+/[\w/]+", moid):
                raise self.fail((*path, "perms"), f"{moid!r} is not an MO identifier (urn:oma:mo:<name>:<ver>)")
        for uri in spec.acl_scope:
            self.dm_uri((*path, "acl_scope"), uri)
        return spec

    def extra_node(self, data: Any, path: _Path) -> ExtraNode:
        d = self.keys(data, path, ("path", "format", "value", "type"), required=("path",))
        node = ExtraNode(
            path=self.value(d, path, "path", str),
            format=self.value(d, path, "format", str, "chr", choices=sorted(FORMATS)),
            value=self.value(d, path, "value", str, None, template=True),
            type=self.value(d, path, "type", str, ""),
        )
        self.dm_uri((*path, "path"), node.path)
        if node.format == "node" and node.value is not None:
            raise self.fail((*path, "value"), "an interior node (format node) has no value")
        return node

    def behaviour(self, data: Any, path: _Path) -> Behaviour:
        """``[[behaviours]]``: ``node``, ``on`` (exec, replace), ``[[behaviours.steps]]`` (mo/behaviours.py);
        or a managed object: ``mo`` (its kind), ``node`` (its root), ``[behaviours.settings]`` (its knobs)."""
        d = self.keys(data, path, ("node", "on", "steps", "mo", "settings"), required=("node",))
        if "mo" in d:
            return self.managed_object(d, path)
        if "steps" not in d:
            raise self.fail(path, "missing key 'steps' (or 'mo': a managed object)")
        if "settings" in d:
            raise self.fail((*path, "settings"), "settings go with 'mo' (a managed object), not with steps")
        node = self.value(d, path, "node", str)
        self.dm_uri((*path, "node"), node)
        steps = d["steps"]
        if not isinstance(steps, list) or not steps:
            raise self.fail((*path, "steps"), "expected one or more steps ([[behaviours.steps]] tables)")
        if len(steps) > MAX_STEPS:
            raise self.fail((*path, "steps"), f"{len(steps)} steps: at most {MAX_STEPS}")
        return Behaviour(node=node, on=self.value(d, path, "on", str, "exec", choices=("exec", "replace")),
                         steps=tuple(self.step(s, (*path, "steps", i)) for i, s in enumerate(steps)),
                         line=self.where.line_of(path))

    def managed_object(self, d: dict[str, Any], path: _Path) -> Behaviour:
        for other in ("steps", "on"):
            if other in d:
                raise self.fail((*path, other), f"a managed object ('mo') has no {other!r}: its kind runs it")
        kinds = mo_kinds()
        kind = self.value(d, path, "mo", str, choices=tuple(sorted(kinds)))
        node = self.value(d, path, "node", str)
        self.dm_uri((*path, "node"), node)
        if "*" in uri_mod.split(node):
            raise self.fail((*path, "node"), "a managed object's root names one node (no * segments)")
        roots = kinds[kind].roots
        if roots and node not in roots:
            raise self.fail((*path, "node"), f"{kind} lives at {' or '.join(roots)}, not {node[:80]!r}")
        settings = d.get("settings", {})
        if not isinstance(settings, dict):
            raise self.fail((*path, "settings"), f"expected a table, got {type_name(settings)}")
        try:
            checked = check_settings(kinds[kind], settings)
        except ValueError as exc:
            raise self.fail((*path, "settings"), str(exc)) from None
        return Behaviour(node=node, steps=(), mo=kind, settings=checked, line=self.where.line_of(path))

    def step(self, data: Any, path: _Path) -> Step:
        d = self.keys(data, path, STEP_KINDS)
        kinds = [k for k in STEP_KINDS if k in d]
        if kinds == ["status", "fail"]:
            kinds = ["fail"]  # fail carries the status it fails with
        if len(kinds) != 1:
            raise self.fail(path, "a step is exactly one of " + ", ".join(STEP_KINDS)
                            + " (fail may carry a status)" + (f"; this one has {', '.join(kinds)}" if kinds else ""))
        kind = kinds[0]
        at = (*path, kind)
        if kind == "set":
            table = d["set"]
            if not isinstance(table, dict) or not table:
                raise self.fail(at, "expected a table of node URI = value")
            values = []
            for uri, value in table.items():
                self.dm_uri(at, uri)
                if isinstance(value, bool):
                    value = "true" if value else "false"
                if not isinstance(value, str | int | float):
                    raise self.fail(at, f"{uri}: expected a string or number, got {type_name(value)}")
                values.append((uri, str(value)))
            return Step("set", values=tuple(values))
        if kind == "wait":
            seconds = self.value(d, path, "wait", float)
            self.number_range(at, seconds, 0, MAX_WAIT_S)
            return Step("wait", seconds=seconds)
        if kind == "alert":
            a = self.keys(d["alert"], at, ("type", "format", "data", "source", "mark"), required=("type",))
            alert = AlertStep(type=self.value(a, at, "type", str), format=self.value(a, at, "format", str, "chr"),
                              data=self.value(a, at, "data", str, "{result}"),
                              source=self.value(a, at, "source", str, "{node}"),
                              mark=self.value(a, at, "mark", str, None))
            return Step("alert", alert=alert)
        status = self.value(d, path, "status", int, 500 if kind == "fail" else 200)
        self.number_range((*path, "status"), status, 100, 599)
        if kind == "fail":
            p = self.value(d, path, "fail", float)
            self.number_range(at, p, 0, 1)
            return Step("fail", status=status, probability=p)
        return Step("status", status=status)

    def dm_uri(self, at: _Path, uri: str) -> None:
        if not uri.startswith("./") and uri != ".":
            raise self.fail(at, f"{uri!r} must be an absolute DM URI starting with ./")
        try:
            uri_mod.split(uri)
        except EmulatorError as exc:
            raise self.fail(at, str(exc)) from None

    def segment(self, at: _Path, name: str) -> None:
        if not name or "/" in name or name in (".", ".."):
            raise self.fail(at, f"{name!r} cannot be a node name")

    # -- DevInfo / DevDetail values ---------------------------------------------------------

    @staticmethod
    def devinfo_desc() -> NodeDesc:
        # One table serves both protocols: DM 1.2 (DevId, 1.0) and DM 2.0 (DevID, DevType..., 1.2).
        v10 = load_builtin("urn:oma:mo:oma-dm-devinfo:1.0").root
        v12 = load_builtin("urn:oma:mo:oma-dm-devinfo:1.2").root
        names = {c.name: c for c in (*v10.children, *v12.children) if c.name not in ("DevId", "DevID")}
        return NodeDesc("DevInfo", children=tuple(names.values()))

    @staticmethod
    def devdetail_desc() -> NodeDesc:
        return load_builtin("urn:oma:mo:oma-dm-devdetail:1.0").root

    def mo_values(self, data: Any, path: _Path, desc: NodeDesc, required: Iterable[str] = ()) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(path, f"expected a table, got {type_name(data)}")
        for key, v in data.items():
            at = (*path, key)
            sub = desc.child(key) if not desc.is_open else None
            if sub is None and not desc.is_open:
                if key in ("DevId", "DevID"):
                    raise self.fail(at, "the device id comes from [identity], it cannot be set here")
                allowed = [c.name for c in desc.children if c.name]
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (nodes: {', '.join(allowed)})"
                raise self.fail(at, f"no node {key!r} in {desc.name}{hint}")
            if desc.is_open or (sub is not None and sub.is_open):
                self.free_values(v, at)
            elif sub is not None and sub.format == "node":
                self.mo_values(v, at, sub)
            elif sub is not None:
                self.leaf_value(v, at, sub.format)
        for key in required:
            if key not in data:
                raise self.fail(path, f"missing required node value {key!r}")
        return data

    def free_values(self, v: Any, at: _Path) -> None:
        if isinstance(v, dict):
            for key, sub in v.items():
                self.segment((*at, key), key)
                self.free_values(sub, (*at, key))
        elif not isinstance(v, str | int | float | bool):
            raise self.fail(at, f"expected a value or a table of values, got {type_name(v)}")

    def leaf_value(self, v: Any, at: _Path, fmt: str) -> None:
        expected: tuple[type, ...] = {"bool": (bool,), "int": (int,), "float": (int, float)}.get(fmt, (str,))
        if not isinstance(v, expected) or (bool not in expected and isinstance(v, bool)):
            raise self.fail(at, f"node format {fmt} needs a {expected[-1].__name__}, got {type_name(v)} {v!r}")

