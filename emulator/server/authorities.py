"""The management authorities the reference server plays, learnt from the shipped device profiles.

Why learn them: a demo server is provisioned like the devices it ships with (factory provisioning).
Every account of every shipped profile names a ServerID, an auth scheme and the secrets both sides
hold; the reference server answers for each such ServerID (``POST /dm12/<ServerID>``,
``POST /dm2/<ServerID>``, the protocol's default ServerID on the bare route) with those credentials,
so each shipped device runs a whole session against ``dm-emulator`` alone.

Several profiles may share a ServerID with different secrets (and even different schemes: the
NB-IoT sensor speaks HMAC to "demo-dm12" where the phone uses MD5). The server cannot tell from a
DevID which profile a device came from, so an authority keeps every candidate pair; verifying a
digest is cheap, so the server tries each one and remembers, per device, which pair matched.

Secrets may be templates (``{dev_id}``); the server fills what it knows (the DevID, its own base URL)
and a placeholder it cannot know (``{serial}``...) simply makes that candidate fail to verify.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

from emulator.device.identity import IdentitySpec, trace_identity
from emulator.device.profile import PROTOCOLS, Profile, fill, list_profiles, load_profile
from emulator.errors import EmulatorError, FileFormatError

DEFAULT_SERVER_IDS = {"dm12": "demo-dm12", "dm2": "demo-dm2"}
"""The authority each protocol's bare route (``/dm12``, ``/dm2``) answers for."""

_K = TypeVar("_K")


EXPECTED_KEPT = 16384
"""DevIds an authority remembers what :meth:`Authority.expected` found for (all forgotten at once
when full: a fleet bigger than this traces its DevIds again, as a server without the memory would)."""


class UnknownAuthorityError(EmulatorError):
    """A route (or a caller) names a ServerID the server does not play."""

    status = 404


@dataclass(frozen=True, slots=True)
class SecretPair:
    """What one provisioned account holds: the device's secret and the server's."""

    client: str
    server: str
    notification: str = ""  # DM 1.3: the separate secret of its notifications ('': the server secret)

    def filled(self, values: Mapping[str, object]) -> SecretPair:
        """The pair with the placeholders the server knows filled in (see the module doc)."""
        if "{" not in self.client + self.server + self.notification:
            return self
        return SecretPair(fill(self.client, values), fill(self.server, values), fill(self.notification, values))


@dataclass(frozen=True, slots=True)
class UserRule:
    """Who may authenticate as a device: the user name (a profile template such as ``{serial}``) and
    the pair of one account, for the DevIds of ``identity`` (a shipped profile) or exactly ``dev_id``
    (an account added with ``--accounts``)."""

    user: str
    pair: SecretPair
    identity: IdentitySpec | None = None
    dev_id: str = ""
    # an account added for one DevId may say more (None: as the authority does)
    client_auth: str | None = None  # the scheme the client authenticates with
    server_auth: str | None = None  # the scheme the server proves itself with (DM 1.2)
    server_name: str | None = None  # the user name in the server's credentials (default: the ServerID)
    client_nonce: bytes | None = None  # the nonce the client holds for its first Cred
    server_nonce: bytes | None = None  # the nonce the client expects in the server's first Cred

    def for_device(self, dev_id: str) -> tuple[str, SecretPair] | None:
        """(user, pair) this rule gives ``dev_id``; None when the rule cannot tell (another device,
        or a DevId its profile does not make, or one that cannot be traced back such as a UUID)."""
        if self.dev_id:
            return (self.user, self.pair) if self.dev_id == dev_id else None
        return _rule_for_device(self, dev_id)


def _rule_for_device(rule: UserRule, dev_id: str) -> tuple[str, SecretPair] | None:
    """UserRule.for_device for a rule made from a profile (:meth:`Authority.expected` remembers the
    outcome per DevId)."""
    values: dict[str, object] = {"dev_id": dev_id}
    needs_identity = any(f"{{{k}}}" in rule.user + rule.pair.client + rule.pair.server
                         for k in ("serial", "index", "imei", "mac", "uuid"))
    if needs_identity:
        traced = _identity_values(rule.identity, dev_id) if rule.identity is not None else None
        if traced is None:
            return None
        values.update(traced)
    return fill(rule.user, values), rule.pair.filled(values)


@lru_cache(maxsize=4096)
def _identity_values(spec: IdentitySpec, dev_id: str) -> dict[str, object] | None:
    """The identity fields a DevId of ``spec`` traces back to (None: not one of its DevIds). Kept for
    the devices seen last: the DM 1.2 and the DM 2.0 authority of a profile ask for the same device,
    and tracing a DevId back costs more than the rest of a check. Callers do not change the dict."""
    traced = trace_identity(spec, dev_id)
    if traced is None:
        return None
    index, ident = traced
    return {"serial": ident.serial, "mac": ident.mac, "uuid": ident.uuid, "imei": ident.imei or "", "index": index}


@dataclass(frozen=True, slots=True)
class Authority:
    """One ServerID the server answers for.

    ``schemes``: the auth schemes devices use with it, the most common first (the one to challenge
    with when a device presents none); ``secrets``: the candidate pairs, in the order to try them.
    """

    server_id: str
    protocol: str
    schemes: tuple[str, ...] = ("md5",)
    secrets: tuple[SecretPair, ...] = ()
    # (DevID prefix of a profile's identity scheme, that profile's pair): which pair a device it has
    # never seen most likely holds, e.g. for the first notification the server signs for it
    owners: tuple[tuple[str, SecretPair], ...] = ()
    # who may authenticate as which device (see UserRule); empty: any user (first come, see dm2_auth)
    users: tuple[UserRule, ...] = ()
    # DevId -> what expected() found: it is asked on every message and depends only on ``users``,
    # which an Authority never changes (accounts and delegations make a new one)
    _expected: dict[str, tuple[tuple[str, SecretPair], ...] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def expected(self, dev_id: str) -> list[tuple[str, SecretPair]] | None:
        """The (user, pair) a device may authenticate with; None when no rule knows the DevId.

        An account given explicitly for this DevId wins over what the profiles would give it.
        """
        try:
            known = self._expected[dev_id]
        except KeyError:
            known = self._expected_now(dev_id)
            if len(self._expected) >= EXPECTED_KEPT:
                self._expected.clear()
            self._expected[dev_id] = known
        return list(known) if known is not None else None

    def _expected_now(self, dev_id: str) -> tuple[tuple[str, SecretPair], ...] | None:
        explicit = [r for r in self.users if r.dev_id == dev_id]
        found = [hit for r in (explicit or self.users) if (hit := r.for_device(dev_id)) is not None]
        if not found and self.users and all(r.dev_id for r in self.users):
            return ()  # an authority made only of added accounts lets no other DevId in
        return tuple(dict.fromkeys(found)) or None

    def account_for(self, dev_id: str) -> UserRule | None:
        """The account added for exactly this DevId (``--accounts``), if any."""
        return next((r for r in self.users if r.dev_id and r.dev_id == dev_id), None)

    @property
    def default_scheme(self) -> str:
        return self.schemes[0] if self.schemes else "none"

    def scheme_for(self, presented: str | None) -> str:
        """The scheme of a session: what the device presents when the authority allows it."""
        return presented if presented in self.schemes else self.default_scheme

    def candidates(self, first: SecretPair | None = None, **values: object) -> list[SecretPair]:
        """Pairs to try, ``first`` (the one that matched this device before) at the head."""
        pairs = [p.filled(values) for p in self.secrets]
        dev_id = str(values.get("dev_id", ""))
        likely = [p.filled(values) for prefix, p in self.owners if prefix and dev_id.startswith(prefix)]
        for pair in reversed(likely):
            pairs = [pair, *(p for p in pairs if p != pair)]
        own = self.account_for(dev_id) if dev_id else None
        if own is not None:
            pairs = [own.pair, *(p for p in pairs if p != own.pair)]
        if first is not None:
            pairs = [first, *(p for p in pairs if p != first)]
        return pairs


def learn_authorities(
    protocol: str,
    profiles: Iterable[Profile] | None = None,
    *,
    dirs: Iterable[str | os.PathLike[str]] | None = None,
) -> dict[str, Authority]:
    """ServerID -> Authority for one protocol, from ``profiles`` (default: every readable profile in
    ``dirs``, itself defaulting to the shipped ``profiles/``; a broken file is skipped, as
    ``dm-emulator profiles`` lists it with its error)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}")
    if profiles is None:
        profiles = _readable_profiles(dirs)
    schemes: dict[str, dict[str, int]] = {}
    secrets: dict[str, dict[SecretPair, int]] = {}
    owners: dict[str, list[tuple[str, SecretPair]]] = {}
    users: dict[str, list[UserRule]] = {}
    for profile in profiles:
        for acc in profile.accounts:
            if acc.protocol != protocol:
                continue
            counts = schemes.setdefault(acc.server_id, {})
            counts[acc.auth] = counts.get(acc.auth, 0) + 1
            pairs = secrets.setdefault(acc.server_id, {})
            pair = SecretPair(acc.client_secret, acc.server_secret, acc.notification_secret)
            pairs[pair] = pairs.get(pair, 0) + 1
            owners.setdefault(acc.server_id, []).append((dev_id_prefix(profile.identity), pair))
            users.setdefault(acc.server_id, []).append(UserRule(acc.client_user, pair, profile.identity))
    return {sid: Authority(sid, protocol, _most_common_first(schemes[sid]), _most_common_first(secrets[sid]),
                           tuple(owners[sid]), tuple(users[sid])) for sid in schemes}


def dev_id_prefix(spec: IdentitySpec) -> str:
    """What every DevID of an identity scheme starts with ('' when nothing is shared, as for UUIDs)."""
    if spec.scheme == "IMEI":
        return f"IMEI:{spec.tac}"
    if spec.scheme == "MAC":
        return "MAC:" + spec.mac_prefix.replace(":", "").replace("-", "").upper()
    if spec.scheme == "SN":
        return spec.prefix
    return ""


def _most_common_first(counts: dict[_K, int]) -> tuple[_K, ...]:
    order = list(counts)  # first seen first among equals: profiles come sorted by name
    return tuple(sorted(order, key=lambda k: (-counts[k], order.index(k))))


def readable_profiles(dirs: Iterable[str | os.PathLike[str]] | None = None) -> list[Profile]:
    """Every profile of ``dirs`` (default: the shipped ones) that loads; broken files are skipped."""
    return _readable_profiles(dirs)


def _readable_profiles(dirs: Iterable[str | os.PathLike[str]] | None) -> list[Profile]:
    out: list[Profile] = []
    for summary in list_profiles(dirs):
        if summary.error is not None:
            continue
        try:
            out.append(load_profile(summary.path))
        except FileFormatError:  # changed on disk between the listing and now
            continue
    return out

