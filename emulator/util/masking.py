"""Which values are secrets, and how they are hidden in what people see and save.

Traffic views, TNDS exports and saved trees are shared freely (bug reports, screenshots), so the
credentials in them are replaced by :data:`MASK` unless the user asks to reveal them
(``--reveal-secrets``). A secret is a leaf whose name says so (AAuthSecret, the DM 2.0 Secret
leaves, ClientSecretKey, passwords, private keys), a PEM private key wherever it sits, and the
credentials a SyncML message carries in ``<Cred>``.

Masking is for people, not for protocols: a DM server that may Get a secret node still gets it.
Masked text is a fixed string, so not even the length of a secret leaks. A masked leaf of Format
``bin`` carries the mask's bytes (base64 in TNDS), so a masked export still imports; the imported
device then holds the mask, not the secret.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from lxml import etree

from emulator.errors import EmulatorError
from emulator.util.xmlsafe import children, parse

MASK = "********"
MASK_BYTES = MASK.encode("ascii")

#: leaf names that hold a secret in the standard objects and in the emulator's own Ext nodes
SECRET_LEAVES = frozenset({
    "AAuthSecret",  # DMAcc AppAuth (DM 1.2)
    "Secret",  # DM 2.0 DMAcc Auth/Noti/Secret, Ext/HTTPAuth/Secret
    "ClientSecretKey",  # DM 2.0 DMAcc Auth
    "ClientPW", "ServerPW", "AppPW",  # DMAcc 1.1
    "ClientCertPassword",  # emulator Ext/TLS
    "PW", "PSK", "PIN", "PUK", "WEPKey", "WPAKey", "PreSharedKey",  # connectivity objects
})
# Other names that say "secret": passwords, passphrases, private keys.
_SECRET_NAME = re.compile(r"secret|passw|passphrase|private_?key", re.IGNORECASE)
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a node (or JSON key) of this name holds a secret."""
    return name in SECRET_LEAVES or bool(_SECRET_NAME.search(name))


def is_secret_uri(uri: str) -> bool:
    """Whether the leaf a DM URI (or ClientURI) names holds a secret: its last segment decides."""
    return is_secret_name(uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0])


def is_secret_value(value: object) -> bool:
    """Values that are secret whatever their node is called: PEM private keys."""
    if isinstance(value, bytes):
        return value.startswith(b"-----BEGIN") and b"PRIVATE KEY-----" in value
    return isinstance(value, str) and value.startswith("-----BEGIN") and bool(_PRIVATE_KEY.match(value))


def mask(value: Any) -> Any:
    """The masked form of a value: the mask as text or bytes; None (no value) stays None."""
    if value is None:
        return None
    return MASK_BYTES if isinstance(value, bytes | bytearray) else MASK


def masked_value(name: str, value: Any) -> Any:
    """``value`` itself, or its mask when a leaf named ``name`` holding it is secret."""
    if value is not None and (is_secret_name(name) or is_secret_value(value)):
        return mask(value)
    return value


# ---------------------------------------------------------------------------------------------- messages


def mask_json(obj: Any) -> tuple[Any, int]:
    """A copy of a DM 2.0 JSON body with the values of secret keys masked; and how many were."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        count = 0
        for key, value in obj.items():
            if isinstance(key, str) and is_secret_name(key) and not isinstance(value, dict | list):
                out[key] = MASK if value is not None else None
                count += value is not None
            else:
                out[key], n = mask_json(value)
                count += n
        return out, count
    if isinstance(obj, list):
        items = [mask_json(v) for v in obj]
        return [v for v, _ in items], sum(n for _, n in items)
    if isinstance(obj, str) and is_secret_value(obj):
        return MASK, 1
    return obj, 0


def mask_tnds_text(text: str) -> tuple[str, int]:
    """A TNDS document (as text) with the values of secret leaves masked; unchanged if not TNDS."""
    try:
        root = parse(text.encode("utf-8"))
    except EmulatorError:
        return text, 0
    count = 0
    for node in root.iter("{*}Node"):
        name = next((c.text or "" for c in children(node, "NodeName")), "")
        for value in children(node, "Value"):
            if value.text and (is_secret_name(name) or is_secret_value(value.text)):
                value.text = MASK
                count += 1
    return (etree.tostring(root, encoding="unicode"), count) if count else (text, 0)
