"""Hostile OMA download descriptors (DLOTA), one table for every managed object that follows them
(FUMO: tests/integration/test_fumo.py, SCOMO: tests/integration/test_mo_flows.py): each case gives
the descriptor URL from the reference server's base, what the server holds for it, the MO's knobs,
and the DLOTA status the device posts to its installNotifyURI (None: the descriptor names none it
could read). Each MO's test says which of its result codes a case ends with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.mo.dlota import DD_TYPE


def _garbage(state: Any) -> None:
    state.put_repo("bad.dd", b"<media><objectURI>http://x/fw</objectURI><size>lots</size></media>", DD_TYPE)


Case = tuple[Callable[[str], str], Callable[[Any], None], dict[str, object], str | None, str]

DESCRIPTOR_CASES: dict[str, Case] = {
    # case: (URL from the base, prepare the server state, knobs, install status posted, package)
    "oversize by descriptor": (lambda b: f"{b}/packages/big/dd", lambda s: s.packages.add("big", 300_000),
                               {"free_bytes": 299_999}, "901 Insufficient memory", "big"),
    "wrong size": (lambda b: f"{b}/packages/liar/dd", lambda s: s.packages.add("liar", 300_000, dd_size=300_005),
                   {}, "905 Attribute mismatch", "liar"),
    "corrupt": (lambda b: f"{b}/packages/bent/dd", lambda s: s.packages.add("bent", 1000, dd_sha256="0" * 64),
                {}, "905 Attribute mismatch", "bent"),
    "descriptor garbage": (lambda b: f"{b}/repo/bad.dd", _garbage, {}, None, ""),
}
