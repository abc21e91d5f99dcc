"""OMA download descriptors (DLOTA 1.0 ``application/vnd.oma.dd+xml``): the device reads one, the
reference server writes one, so both sides agree on one reading; and the download that follows one
(:func:`download`), the same for every managed object that downloads a package (FUMO, SCOMO).

A descriptor names the object (``objectURI``), its ``size`` and ``type``, and where the device
posts its install status (``installNotifyURI``, DLOTA status codes such as ``900 Success``). The
project adds one element in its own namespace, ``<dme:sha256>``: the object's SHA-256, so a corrupt
download is told from a good one [P]. What is refused (:class:`BadDescriptor`, FUMO result 500
"alternate download server error" in :mod:`emulator.mo.fumo`): not XML, not a ``media`` element,
no objectURI, a size that is no whole number >= 0, more than :data:`MAX_DESCRIPTOR` bytes.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from emulator.errors import EmulatorError
from emulator.mo.operations import Action, Fetch, Fetched, Send
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


# ---------------------------------------------------------------------------------------------
# following a descriptor (the download of an operation, sans-IO: it yields the operation's actions)

PROBLEMS = ("bad descriptor", "too large", "corrupt")
"""Why a download through a descriptor failed where the fetch itself did not: the descriptor cannot
be used, it announces more than the device has room for (nothing more is fetched), or the object's
SHA-256 is not the one it announces. Each MO maps these (and a failed fetch) onto its result codes."""


@dataclass(frozen=True, slots=True)
class Downloaded:
    """How :func:`download` ended: the last fetch (the object's, or the only one when the URL gave the
    object itself), the descriptor it followed (None: none), and ``problem`` (one of :data:`PROBLEMS`,
    "" for none) with ``error`` in words."""

    fetched: Fetched
    descriptor: Descriptor | None = None
    problem: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.fetched.ok and not self.problem


def download(url: str, room: int, rate_kbps: float = 0.0) -> Generator[Action, Any, Downloaded]:
    """Fetch ``url``; when the answer is a descriptor, fetch the object it names (its size announced:
    another size is a failed fetch, ``size mismatch``) and check its SHA-256. ``room``: the most the
    device takes. ``yield from`` it in an operation's steps; :func:`notify` then tells the descriptor's
    installNotifyURI how it ended."""
    fetched: Fetched = yield Fetch(url, room, keep_types=(DD_TYPE,), rate_kbps=rate_kbps)
    if not fetched.ok or fetched.content_type.split(";")[0].strip().lower() != DD_TYPE:
        return Downloaded(fetched)
    try:
        dd = parse_descriptor(fetched.body or b"")
    except BadDescriptor as exc:
        return Downloaded(fetched, None, "bad descriptor", str(exc))
    if dd.size > room:
        return Downloaded(fetched, dd, "too large", f"the descriptor announces {dd.size} bytes, room for {room}")
    fetched = yield Fetch(dd.object_uri, room, expect_size=dd.size, rate_kbps=rate_kbps)
    if fetched.ok and dd.sha256 and fetched.digest != dd.sha256:
        return Downloaded(fetched, dd, "corrupt", "the object's SHA-256 is not the one its descriptor announces")
    return Downloaded(fetched, dd)


def install_status(got: Downloaded, succeeded: bool) -> int:
    """The DLOTA status a device posts for a download whose operation ended ``succeeded`` or not [P]:
    900 Success; 901 Insufficient memory (more than the device's room); 905 Attribute mismatch (a size
    or SHA-256 other than the descriptor's); 903 Loss of Service (no answer, a cut connection); 952
    Device Aborted (the download was good, the device ended the operation itself); 954 Loader Error
    (any other failure of the fetch)."""
    if succeeded:
        return 900
    outcome = got.fetched.outcome
    if got.problem == "too large" or outcome == "too large":
        return 901
    if got.problem == "corrupt" or outcome == "size mismatch":
        return 905
    if outcome == "network":
        return 903
    return 952 if got.ok else 954


def notify(got: Downloaded, code: int) -> Send | None:
    """The install-notify POST of DLOTA status ``code`` (:data:`STATUS`) for a download that followed
    a descriptor naming an installNotifyURI; None otherwise."""
    if got.descriptor is None or not got.descriptor.install_notify_uri:
        return None
    return Send("POST", got.descriptor.install_notify_uri, status_line(code), "text/plain")
