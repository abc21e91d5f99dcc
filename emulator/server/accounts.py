"""Accounts for clients the reference server did not ship: ``dm-emulator server --accounts FILE.toml``
and ``POST /admin/accounts``.

Why: the server learns its authorities from the shipped profiles, so a DM client written elsewhere
(intel/libdmclient's test client: DevId ``DMCtest``, user ``funambol``, basic towards the server,
md5 expected back) had no way in. An account names, for one DevId and one ServerID, everything its
DMAcc holds on the client: the client's user name (apart from the DevId), secret and scheme, and the
server's name, secret and scheme (apart from the client's), and optionally the nonces the client
starts with (AAuthData, base64). Once added, that DevId authenticates only as its account says, and
an authority made only of added accounts lets no other DevId in.

A file is read strictly (unknown keys, wrong types and bad values are FileFormatErrors naming the
file and line); the admin API takes the same keys as JSON and answers 400 with the reason.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, replace
from typing import Any

from emulator.errors import EmulatorError, FileFormatError
from emulator.server.authorities import Authority, SecretPair, UserRule
from emulator.util.tomlcheck import KeyPath, TomlChecker, read_toml

DM12_SCHEMES = ("none", "basic", "md5", "hmac", "sha256")
"""DM 1.2 schemes, each way (PROTOCOL.md 2.9)."""

DM2_SCHEMES = ("basic", "digest")
"""DM 2.0 client schemes (the server accepts either, and client certificates, for every account)."""

MAX_ACCOUNTS = 10_000
"""Accounts one server holds from files and the admin API together."""

MAX_TEXT = 1024
"""Longest name, secret or id in an account (characters)."""

MAX_NONCE = 256
"""Longest nonce in an account (bytes, once decoded)."""

KEYS = ("protocol", "server_id", "dev_id", "client_user", "client_secret", "client_auth", "server_name",
        "server_secret", "server_auth", "client_nonce", "server_nonce")
_DM12_ONLY = ("server_name", "server_secret", "server_auth", "client_nonce", "server_nonce")


@dataclass(frozen=True, slots=True)
class ServerAccount:
    """One client's account at the server (see the module doc); empty names default to the DevId
    (client) and the ServerID (server), an empty ``server_auth`` to the client's scheme."""

    server_id: str
    dev_id: str
    protocol: str = "dm12"
    client_user: str = ""
    client_secret: str = ""
    client_auth: str = "md5"
    server_name: str = ""
    server_secret: str = ""
    server_auth: str = ""
    client_nonce: bytes | None = None
    server_nonce: bytes | None = None

    def rule(self) -> UserRule:
        return UserRule(self.client_user or self.dev_id, SecretPair(self.client_secret, self.server_secret),
                        dev_id=self.dev_id, client_auth=self.client_auth, server_auth=self.server_auth or None,
                        server_name=self.server_name or None, client_nonce=self.client_nonce,
                        server_nonce=self.server_nonce)

    def shown(self) -> dict[str, Any]:
        """What the admin API lists: everything but the secrets."""
        return {"protocol": self.protocol, "server_id": self.server_id, "dev_id": self.dev_id,
                "client_user": self.client_user or self.dev_id, "client_auth": self.client_auth,
                "server_name": self.server_name or self.server_id,
                "server_auth": self.server_auth or self.client_auth}


def load_accounts(path: str | os.PathLike[str]) -> list[ServerAccount]:
    """The ``[[accounts]]`` of a TOML file; a FileFormatError (file:line: reason) for any problem."""
    text, data = read_toml(path, "accounts file")
    reader = _Reader(os.fspath(path), text)
    reader.keys(data, (), ("accounts",), required=("accounts",))
    accounts = reader.list_of(data, "accounts", reader.account)
    if len(accounts) > MAX_ACCOUNTS:
        raise reader.fail(("accounts",), f"{len(accounts)} accounts: at most {MAX_ACCOUNTS}")
    seen: dict[tuple[str, str, str], int] = {}
    for i, acc in enumerate(accounts):
        key = (acc.protocol, acc.server_id, acc.dev_id)
        if key in seen:
            raise reader.fail(("accounts", i, "dev_id"), f"{acc.dev_id!r} has an account for {acc.server_id!r} "
                                                         f"already (accounts[{seen[key]}])")
        seen[key] = i
    return list(accounts)


def account_from_json(spec: object) -> ServerAccount:
    """One account from the admin API's JSON; EmulatorError (400) naming the key at fault."""
    try:
        return _Reader("account", "").account(spec, ())
    except FileFormatError as exc:
        raise EmulatorError(f"account: {exc.reason}", status=400) from None


def install(state: Any, account: ServerAccount) -> None:
    """Make the server on ``state`` (a ServerState with its protocols set up) play ``account``; an
    account for the same DevId and ServerID is replaced. EmulatorError (400) past MAX_ACCOUNTS."""
    known = [a for a in state.accounts if (a.protocol, a.server_id, a.dev_id) !=
             (account.protocol, account.server_id, account.dev_id)]
    if len(known) >= MAX_ACCOUNTS:
        raise EmulatorError(f"the server holds {MAX_ACCOUNTS} accounts already", status=400)
    state.accounts = [*known, account]
    if account.protocol == "dm12":
        if state.dm12 is None:
            raise EmulatorError("the DM 1.2 side of this server is not set up", status=404)
        config = state.dm12.config
        config.authorities[account.server_id] = _with(config.authority(account.server_id), account)
        state.dm12.nonces.pop((account.server_id, account.dev_id), None)  # start from the account's nonces
    else:
        table = state.dm2_authorities if state.dm2_authorities is not None else {}
        table[account.server_id] = _with(table.get(account.server_id), account)
        state.dm2_authorities = table
        state.dm2_secrets.pop((account.server_id, account.dev_id), None)


def _with(authority: Authority | None, account: ServerAccount) -> Authority:
    rule = account.rule()
    if authority is None:
        return Authority(account.server_id, account.protocol, (account.client_auth,), (rule.pair,), users=(rule,))
    schemes = authority.schemes if account.client_auth in authority.schemes else (*authority.schemes,
                                                                                 account.client_auth)
    secrets = authority.secrets if rule.pair in authority.secrets else (*authority.secrets, rule.pair)
    users = (*(r for r in authority.users if r.dev_id != account.dev_id), rule)
    return replace(authority, schemes=schemes, secrets=secrets, users=users)


class _Reader(TomlChecker):
    def account(self, data: Any, path: KeyPath) -> ServerAccount:
        d = self.keys(data, path, KEYS, required=("server_id", "dev_id"))
        protocol = self.value(d, path, "protocol", str, "dm12", choices=("dm12", "dm2"))
        if protocol == "dm2":
            extra = next((k for k in _DM12_ONLY if k in d), None)
            if extra is not None:
                raise self.fail((*path, extra), "a DM 2.0 account has no server credentials or nonces "
                                                "(the server proves itself with TLS)")
        schemes = DM12_SCHEMES if protocol == "dm12" else DM2_SCHEMES
        texts = {k: self._text(d, path, k) for k in ("server_id", "dev_id", "client_user", "client_secret",
                                                      "server_name", "server_secret")}
        for key in ("server_id", "dev_id"):
            if not texts[key]:
                raise self.fail((*path, key), "must not be empty")
        client_auth = self.value(d, path, "client_auth", str, "md5" if protocol == "dm12" else "basic",
                                 choices=schemes)
        server_auth = self.value(d, path, "server_auth", str, "", choices=("", *DM12_SCHEMES))
        if protocol == "dm12" and "hmac" in (client_auth, server_auth or client_auth) \
                and (server_auth or client_auth) != client_auth:
            raise self.fail((*path, "server_auth"), "hmac signs every message both ways: client_auth and "
                                                    "server_auth must both be hmac")
        if client_auth != "none" and not texts["client_secret"]:
            raise self.fail((*path, "client_secret"), f"client_auth {client_auth!r} needs a client_secret")
        if protocol == "dm12" and (server_auth or client_auth) != "none" and not texts["server_secret"]:
            raise self.fail((*path, "server_secret"), f"server_auth {server_auth or client_auth!r} needs a "
                                                      "server_secret")
        return ServerAccount(
            texts["server_id"], texts["dev_id"], protocol, texts["client_user"], texts["client_secret"], client_auth,
            texts["server_name"], texts["server_secret"], server_auth,
            self._nonce(d, path, "client_nonce"), self._nonce(d, path, "server_nonce"))

    def _text(self, d: dict[str, Any], path: KeyPath, key: str) -> str:
        v = self.value(d, path, key, str, "")
        if len(v) > MAX_TEXT:
            raise self.fail((*path, key), f"{len(v)} characters: at most {MAX_TEXT}")
        if any(ord(c) < 0x20 for c in v):
            raise self.fail((*path, key), "control characters are not allowed")
        return v

    def _nonce(self, d: dict[str, Any], path: KeyPath, key: str) -> bytes | None:
        """A nonce as AAuthData holds it (base64; "" is an empty nonce, as libdmclient starts)."""
        if key not in d:
            return None
        v = self.value(d, path, key, str)
        try:
            raw = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise self.fail((*path, key), f"{v[:40]!r} is not base64") from None
        if len(raw) > MAX_NONCE:
            raise self.fail((*path, key), f"{len(raw)} bytes: at most {MAX_NONCE}")
        return raw
