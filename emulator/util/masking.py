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

import json
import re
from functools import lru_cache
from typing import Any

from lxml import etree

from emulator.errors import EmulatorError

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
_SYNCML_MASKED = ("Cred",)  # elements whose Data is always masked


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


def mask_syncml(root: etree._Element) -> int:
    """Mask, in place, the secrets of a parsed SyncML message; returns how many were masked.

    Masked: the Data of every Cred (basic credentials are the password in base64; a digest is a
    replayable credential for its nonce), the Data of items whose Target or Source names a secret
    leaf, private keys anywhere, and secret leaves of TNDS documents carried in a Data.
    """
    count = 0
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        local = etree.QName(el).localname
        if local in _SYNCML_MASKED:
            count += sum(_mask_element(data) for data in _children(el, "Data"))
        elif local == "Item":
            names = [loc.text or "" for part in ("Target", "Source") for sub in _children(el, part)
                     for loc in _children(sub, "LocURI")]
            for data in _children(el, "Data"):
                if any(is_secret_uri(n) for n in names) or is_secret_value(data.text):
                    count += _mask_element(data)
                elif data.text and "MgmtTree" in data.text:
                    text, n = mask_tnds_text(data.text)
                    if n:
                        data.text = text
                        count += n
    return count


def mask_tnds_text(text: str) -> tuple[str, int]:
    """A TNDS document (as text) with the values of secret leaves masked; unchanged if not TNDS."""
    from emulator.util.xmlsafe import parse

    try:
        root = parse(text.encode("utf-8"))
    except EmulatorError:
        return text, 0
    count = 0
    for node in root.iter("{*}Node"):
        name = next((c.text or "" for c in node if isinstance(c.tag, str) and etree.QName(c).localname == "NodeName"), "")
        for value in _children(node, "Value"):
            if value.text and (is_secret_name(name) or is_secret_value(value.text)):
                value.text = MASK
                count += 1
    return (etree.tostring(root, encoding="unicode"), count) if count else (text, 0)


def mask_message(content_type: str, body: bytes) -> bytes:
    """A message body with its secrets masked, in the same encoding (XML, WBXML or JSON).

    Bodies that cannot be decoded, or hold no secret, come back as they are: masking never makes
    a traffic view fail.
    """
    base = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return body
    try:
        if "wbxml" in base:
            from emulator.protocol.syncml import wbxml

            root = wbxml.decode(body)
            return wbxml.encode(root) if mask_syncml(root) else body
        if "xml" in base or body.lstrip().startswith(b"<"):
            from emulator.util.xmlsafe import parse

            root = parse(body, repair_ampersands=True)
            if "dmtnds" in base:
                text, n = mask_tnds_text(body.decode("utf-8"))
                return text.encode("utf-8") if n else body
            return etree.tostring(root, encoding="utf-8") if mask_syncml(root) else body
        if "json" in base or body.lstrip()[:1] in (b"{", b"["):
            obj, n = mask_json(json.loads(body))
            return json.dumps(obj, ensure_ascii=False).encode("utf-8") if n else body
    except (EmulatorError, ValueError, RecursionError, etree.LxmlError):
        return body
    return body


def _children(el: etree._Element, local: str) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str) and etree.QName(c).localname == local]


def _mask_element(el: etree._Element) -> int:
    if not (el.text or len(el)):
        return 0
    for child in list(el):
        el.remove(child)
    from emulator.protocol.syncml.wbxml import OPAQUE_ATTR, set_opaque

    if el.get(OPAQUE_ATTR) is not None:  # WBXML opaque data: keep it opaque, so it re-encodes as it came
        set_opaque(el, MASK_BYTES)
    else:
        el.text = MASK
    return 1
