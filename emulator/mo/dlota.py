"""OMA download descriptors (DLOTA 1.0 ``application/vnd.oma.dd+xml``): the device reads one, the
reference server writes one, so both sides agree on one reading.

A descriptor names the object (``objectURI``), its ``size`` and ``type``, and where the device
posts its install status (``installNotifyURI``, DLOTA status codes such as ``900 Success``). The
project adds one element in its own namespace, ``<dme:sha256>``: the object's SHA-256, so a corrupt
download is told from a good one [P]. What is refused (:class:`BadDescriptor`, FUMO result 500
"alternate download server error" in :mod:`emulator.mo.fumo`): not XML, not a ``media`` element,
no objectURI, a size that is no whole number >= 0, more than :data:`MAX_DESCRIPTOR` bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from emulator.errors import EmulatorError
from emulator.util import xmlsafe

DD_TYPE = "application/vnd.oma.dd+xml"
DD_NS = "http://www.openmobilealliance.org/xmlns/dd"
DME_NS = "urn:dm-emulator:dd"
MAX_DESCRIPTOR = 64 * 1024
"""Largest descriptor a device reads (a real one is well under 2 KB)."""

STATUS = {900: "Success", 901: "Insufficient memory", 902: "User Cancelled", 903: "Loss of Service",
          905: "Attribute mismatch", 906: "Invalid descriptor", 951: "Invalid DDVersion", 952: "Device Aborted",
          953: "Non-Acceptable Content", 954: "Loader Error"}
"""DLOTA 1.0 install status codes (posted as ``<code> <text>`` to installNotifyURI)."""


class BadDescriptor(ValueError):
    """A descriptor the device cannot use; the message says why."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    object_uri: str
    size: int
    type: str = "application/octet-stream"
    name: str = ""
    version: str = ""
    install_notify_uri: str = ""
    sha256: str = ""


def parse_descriptor(data: bytes) -> Descriptor:
    """Read a descriptor; BadDescriptor naming what is wrong."""
    if len(data) > MAX_DESCRIPTOR:
        raise BadDescriptor(f"descriptor of {len(data)} bytes, more than {MAX_DESCRIPTOR}")
    try:
        root = xmlsafe.parse(data)
    except EmulatorError as exc:
        raise BadDescriptor(f"descriptor is not XML: {exc}") from None
    if not isinstance(root.tag, str) or root.tag.rsplit("}", 1)[-1] != "media":
        raise BadDescriptor("descriptor root is not <media>")
    fields: dict[str, str] = {}
    for child in root:
        if isinstance(child.tag, str):
            fields.setdefault(child.tag.rsplit("}", 1)[-1], (child.text or "").strip())
    uri = fields.get("objectURI", "")
    if not uri:
        raise BadDescriptor("descriptor has no objectURI")
    size_text = fields.get("size", "")
    if not size_text.isdigit() or len(size_text) > 15:
        raise BadDescriptor(f"descriptor size {size_text[:20]!r} is not a whole number of bytes")
    return Descriptor(uri, int(size_text), fields.get("type") or "application/octet-stream", fields.get("name", ""),
                      fields.get("version", ""), fields.get("installNotifyURI", ""), fields.get("sha256", "").lower())


def build_descriptor(d: Descriptor) -> bytes:
    """The XML of a descriptor (what the reference server serves)."""
    parts = [f'<media xmlns="{DD_NS}" xmlns:dme="{DME_NS}">', "<DDVersion>1.0</DDVersion>",
             f"<type>{escape(d.type)}</type>", f"<objectURI>{escape(d.object_uri)}</objectURI>",
             f"<size>{d.size}</size>"]
    if d.name:
        parts.append(f"<name>{escape(d.name)}</name>")
    if d.install_notify_uri:
        parts.append(f"<installNotifyURI>{escape(d.install_notify_uri)}</installNotifyURI>")
    if d.version:
        parts.append(f"<dme:version>{escape(d.version)}</dme:version>")
    if d.sha256:
        parts.append(f"<dme:sha256>{escape(d.sha256)}</dme:sha256>")
    parts.append("</media>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + "\n".join(parts) + "\n").encode()


def status_line(code: int) -> bytes:
    """The install-notify body for ``code`` (``900 Success``)."""
    return f"{code} {STATUS.get(code, '')}".strip().encode()
