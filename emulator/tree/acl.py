"""ACL strings (PROTOCOL.md 3.4), parsed once and shared: thousands of nodes carry the same few ACLs."""

from __future__ import annotations

from functools import lru_cache

from emulator.tree.errors import TreeError

COMMANDS = ("Add", "Delete", "Exec", "Get", "Replace")
_FORBIDDEN = set("=&*+ \t\r\n")


class Acl:
    """An immutable parsed ACL. Compare and hash by its canonical string."""

    __slots__ = ("_grants", "text")

    def __init__(self, grants: dict[str, frozenset[str]]) -> None:
        self._grants = {cmd: ids for cmd, ids in grants.items() if ids}
        self.text = "&".join(
            f"{cmd}={'+'.join(sorted(self._grants[cmd]))}" for cmd in COMMANDS if cmd in self._grants
        )

    @staticmethod
    def parse(text: str) -> Acl:
        return _parse_cached(text or "")

    def allows(self, command: str, server_id: str) -> bool:
        ids = self._grants.get(command)
        return ids is not None and ("*" in ids or server_id in ids)

    def servers(self, command: str) -> frozenset[str]:
        return self._grants.get(command, frozenset())

    def with_servers(self, command: str, server_ids: set[str] | frozenset[str]) -> Acl:
        grants = dict(self._grants)
        grants[command] = frozenset(server_ids)
        return Acl.parse(Acl(grants).text)

    def without_server(self, server_id: str) -> Acl:
        """Scrub one server from every entry (removing a DMAcc); entries left empty are dropped."""
        return Acl.parse(Acl({c: ids - {server_id} for c, ids in self._grants.items()}).text)

    def __bool__(self) -> bool:
        return bool(self._grants)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Acl({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Acl) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Acl:
    grants: dict[str, set[str]] = {}
    if text:
        for entry in text.split("&"):
            cmd, sep, ids = entry.partition("=")
            if not sep or cmd not in COMMANDS:
                raise TreeError(400, f"bad ACL entry {entry!r} in {text!r}")
            for sid in ids.split("+"):
                if not sid or (sid != "*" and _FORBIDDEN & set(sid)):
                    raise TreeError(400, f"bad server identifier {sid!r} in ACL {text!r}")
                grants.setdefault(cmd, set()).add(sid)
    return Acl({cmd: frozenset(ids) for cmd, ids in grants.items()})


EMPTY = Acl.parse("")
ROOT_DEFAULT = Acl.parse("Add=*&Get=*")
