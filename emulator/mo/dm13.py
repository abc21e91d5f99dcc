"""The DM 1.3 nodes of a device's tree: the optional features it supports, the current session's bearer.

Why nodes: a server discovers what a DM 1.x device supports by reading its tree (DevInfo, DevDetail,
DDFs); the features a DM 1.3 client supports (DM-HLF-019) are answered the same way, from the
profile, and the bearer and roaming status of the current session (ERELD 4.3) are written before each
session and sent in Package 1 beside DevInfo. The node names are the project's [P]: the DM 1.3
StdObj/Protocol texts that name them were not reachable (README "How DM is read here").

- ``./DevDetail/Ext/DMFeatures/<feature>``: one ``bool`` leaf ``true`` per supported feature, Get
  only; ``Get ./DevDetail/Ext/DMFeatures?list=Struct`` lists them. A DM 1.2 device has no such node:
  the same Get is answered 404.
- ``./DevDetail/Ext/Session/Bearer`` (the active bearer's type, e.g. ``LTE``; empty when none is up)
  and ``./DevDetail/Ext/Session/Roaming`` (``true``/``false``), Get only.
"""

from __future__ import annotations

from collections.abc import Iterable

from emulator.tree import Tree

FEATURES_ROOT = "./DevDetail/Ext/DMFeatures"
SESSION_ROOT = "./DevDetail/Ext/Session"
SESSION_BEARER = f"{SESSION_ROOT}/Bearer"
SESSION_ROAMING = f"{SESSION_ROOT}/Roaming"
SESSION_URIS = (SESSION_BEARER, SESSION_ROAMING)
"""What a DM 1.3 device with the session-bearer feature adds to its Package 1 Replace."""
_GET = frozenset({"Get"})


def _interior(tree: Tree, uri: str) -> None:
    if not tree.exists(uri):
        tree.set_node(uri, format="node", access=_GET)


def write_features(tree: Tree, features: Iterable[str]) -> None:
    """The DMFeatures node of a DM 1.3 device: one Get-only ``true`` leaf per supported feature."""
    _interior(tree, "./DevDetail/Ext")
    tree.set_node(FEATURES_ROOT, format="node", permanent=True, access=_GET)
    for name in features:
        tree.set_node(f"{FEATURES_ROOT}/{name}", "true", format="bool", type="text/plain", permanent=True,
                      access=_GET)


def write_session(tree: Tree, bearer_type: str, roaming: bool) -> None:
    """The bearer and roaming status of the session about to start (written as the device itself)."""
    _interior(tree, "./DevDetail/Ext")
    _interior(tree, SESSION_ROOT)
    tree.set_node(SESSION_BEARER, bearer_type, format="chr", type="text/plain", access=_GET)
    tree.set_node(SESSION_ROAMING, "true" if roaming else "false", format="bool", type="text/plain",
                  access=_GET)


def supports(tree: Tree, feature: str) -> bool:
    """True when the device's tree says it supports a DM 1.3 feature."""
    return tree.exists(f"{FEATURES_ROOT}/{feature}")
