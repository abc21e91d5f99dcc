"""Device identities made from a profile's pattern and an index.

A fleet of ``--count 1000`` devices from one profile needs 1000 distinct, stable identities: the
same index must give the same DevId on every run (so a server sees the same device again after a
restart) and two indices must never collide. Everything here is a pure function of
``(IdentitySpec, index)``; nothing is random.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from emulator.errors import EmulatorError

SCHEMES = ("IMEI", "MAC", "UUID", "SN")

# The emulator's own UUID namespace (uuid5 of the DNS name), so v5 ids never collide with a
# namespace another tool picked; a profile may set its own.
DEFAULT_NAMESPACE = str(uuid.uuid5(uuid.NAMESPACE_DNS, "dm-emulator.invalid"))

_IMEI_SERIALS = 1_000_000  # 6-digit serial number after the 8-digit TAC
_MAC_SUFFIXES = 1 << 24  # 3 octets after the 3-octet prefix


class IdentityError(EmulatorError):
    """An identity pattern is unusable (bad TAC, MAC prefix not locally administered, range exhausted).

    ``field`` names the IdentitySpec field at fault, so a profile error can point at its line.
    """

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class IdentitySpec:
    """How a profile numbers its devices.

    ``scheme`` picks what the DevId is made of. ``start`` shifts the index, so two profiles (or two
    test runs against one server) can use disjoint ranges. ``prefix`` and ``width`` shape the serial
    number every scheme also gets; ``tac`` feeds IMEIs, ``mac_prefix`` MAC addresses and
    ``namespace`` UUIDv5s.
    """

    scheme: str = "UUID"
    start: int = 0
    prefix: str = "SN"
    width: int = 8
    tac: str = "35000000"
    mac_prefix: str = "02:DE:E0"
    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        problem = spec_problem(self)
        if problem:
            raise IdentityError(problem[1], problem[0])


@dataclass(frozen=True, slots=True)
class Identity:
    """What one device (or one operating environment with its own identity) is called.

    ``dev_id`` is what goes into DevInfo/DevId (DM 1.2), DevInfo/DevID and the OMADM-DevID header
    (DM 2.0). ``imei`` is set only for the IMEI scheme; every device has a MAC (for its network
    interfaces), a UUID and a serial number whatever its scheme.
    """

    dev_id: str
    serial: str
    mac: str
    uuid: str
    imei: str | None = None


def spec_problem(spec: IdentitySpec) -> tuple[str, str] | None:
    """``(field, reason)`` when ``spec`` cannot generate identities, else None."""
    if spec.scheme not in SCHEMES:
        return "scheme", f"identity scheme {spec.scheme!r} is not one of {', '.join(SCHEMES)}"
    if spec.start < 0:
        return "start", f"identity start {spec.start} is negative"
    if not 1 <= spec.width <= 32:
        return "width", f"identity width {spec.width} is not between 1 and 32"
    if len(spec.tac) != 8 or not spec.tac.isdigit():
        return "tac", f"IMEI TAC {spec.tac!r} must be exactly 8 digits"
    try:
        octets = _parse_mac_prefix(spec.mac_prefix)
    except ValueError as exc:
        return "mac_prefix", str(exc)
    if not octets[0] & 0x02 or octets[0] & 0x01:
        return "mac_prefix", (
            f"MAC prefix {spec.mac_prefix!r} must be locally administered and unicast "
            "(second-lowest bit of the first octet set, lowest bit clear, e.g. 02:xx:xx)"
        )
    try:
        uuid.UUID(spec.namespace)
    except ValueError:
        return "namespace", f"identity namespace {spec.namespace!r} is not a UUID"
    return None


def luhn_check_digit(digits: str) -> str:
    """The Luhn digit that makes ``digits + result`` pass the Luhn test (the IMEI's 15th digit)."""
    if not digits.isdigit():
        raise ValueError(f"Luhn input must be digits, got {digits!r}")
    total = 0
    # Double every second digit counting from the right of the payload (the check digit will be
    # position 0, so the payload's rightmost digit is doubled).
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def is_valid_imei(imei: str) -> bool:
    """15 digits whose last one is the Luhn check digit of the first 14."""
    return len(imei) == 15 and imei.isdigit() and luhn_check_digit(imei[:14]) == imei[14]


def make_identity(spec: IdentitySpec, index: int, environment: str | None = None) -> Identity:
    """The identity of device number ``index`` (0-based) of a profile; pure and deterministic.

    With ``environment`` set (an operating environment that has its own client identity), the
    DevId becomes a UUID derived from the device number and the environment name: a guest OS
    has no IMEI of its own, yet must be told apart from its host and from the same guest on
    another device.
    """
    if index < 0:
        raise IdentityError(f"device index {index} is negative")
    n = spec.start + index
    serial = f"{spec.prefix}{n:0{spec.width}d}"
    if len(serial) - len(spec.prefix) > spec.width:
        raise IdentityError(f"serial number space of width {spec.width} exhausted at index {index}")
    if n >= _MAC_SUFFIXES:
        raise IdentityError(f"MAC address space of prefix {spec.mac_prefix} exhausted at index {index}")
    octets = _parse_mac_prefix(spec.mac_prefix) + [(n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF]
    mac = ":".join(f"{o:02X}" for o in octets)
    namespace = uuid.UUID(spec.namespace)
    dev_uuid = str(uuid.uuid5(namespace, f"device/{n}"))
    imei = None
    if spec.scheme == "IMEI":
        if n >= _IMEI_SERIALS:
            raise IdentityError(f"IMEI serial space of TAC {spec.tac} exhausted at index {index}")
        body = f"{spec.tac}{n:06d}"
        imei = body + luhn_check_digit(body)

    if environment:
        dev_id = f"urn:uuid:{uuid.uuid5(namespace, f'device/{n}/env/{environment}')}"
    elif spec.scheme == "IMEI":
        dev_id = f"IMEI:{imei}"
    elif spec.scheme == "MAC":
        dev_id = "MAC:" + mac.replace(":", "")
    elif spec.scheme == "UUID":
        dev_id = f"urn:uuid:{dev_uuid}"
    else:
        dev_id = serial
    return Identity(dev_id=dev_id, serial=serial, mac=mac, uuid=dev_uuid, imei=imei)


def capacity(spec: IdentitySpec) -> int:
    """How many devices ``spec`` can number (indexes 0 .. capacity-1): the smallest of its serial
    width, its MAC suffixes and, for IMEIs, the 6-digit serial after the TAC, less ``start``."""
    limits = [10**spec.width, _MAC_SUFFIXES] + ([_IMEI_SERIALS] if spec.scheme == "IMEI" else [])
    return max(0, min(limits) - spec.start)


def share(spec: IdentitySpec, first: int, part: int, parts: int) -> range:
    """The device indexes of ``part`` (0-based) when ``parts`` processes share ``spec``'s identities
    from index ``first``: equal, disjoint, contiguous blocks covering the space.

    Why: Locust workers each number their own users; a fixed stride per worker (the old 1,000,000)
    overflowed the IMEI space at the second worker. An IdentityError says why when the space cannot
    give every part at least one identity, or ``part`` is not one of ``parts``.
    """
    total = capacity(spec) - first
    if first < 0:
        raise IdentityError(f"first device index {first} is negative")
    if parts < 1 or not 0 <= part < parts:
        raise IdentityError(f"part {part} of {parts}: expected 0 <= part < parts")
    if total < parts:
        raise IdentityError(f"{parts} workers cannot share the identities of this profile: from index {first} "
                            f"it has {max(total, 0)} (IMEI: 1,000,000 per TAC; MAC: 2^24 per prefix; serial: "
                            f"10^width), less identity start {spec.start}")
    size = total // parts
    return range(first + part * size, first + (part + 1) * size)


def _parse_mac_prefix(text: str) -> list[int]:
    parts = text.replace("-", ":").split(":")
    if len(parts) != 3 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"MAC prefix {text!r} must be three octets like 02:DE:E0")
    try:
        return [int(p, 16) for p in parts]
    except ValueError:
        raise ValueError(f"MAC prefix {text!r} must be hexadecimal octets like 02:DE:E0") from None


def index_of(spec: IdentitySpec, dev_id: str) -> int | None:
    """The device index whose identity has ``dev_id`` (the inverse of :func:`make_identity`), or None
    when ``dev_id`` is not one ``spec`` makes or cannot be traced back (UUIDs are one-way).

    Why: the reference server checks that the user a device authenticates as is the one its profile
    gives that DevId (``client_user = "{serial}"``), which needs the serial behind an IMEI or a MAC.
    """
    traced = trace_identity(spec, dev_id)
    return traced[0] if traced is not None else None


def trace_identity(spec: IdentitySpec, dev_id: str) -> tuple[int, Identity] | None:
    """:func:`index_of` with the identity it found (the server needs its serial: one make_identity, not two)."""
    n: int | None = None
    if spec.scheme == "IMEI" and dev_id.startswith(f"IMEI:{spec.tac}") and len(dev_id) == 20:
        digits = dev_id[13:19]
        n = int(digits) if digits.isdigit() else None
    elif spec.scheme == "MAC" and dev_id.startswith("MAC:") and len(dev_id) == 16:
        try:
            n = int(dev_id[10:], 16)
        except ValueError:
            n = None
    elif spec.scheme == "SN" and dev_id.startswith(spec.prefix):
        digits = dev_id[len(spec.prefix):]
        n = int(digits) if digits.isdigit() and len(digits) == spec.width else None
    if n is None or n < spec.start:
        return None
    try:
        identity = make_identity(spec, n - spec.start)
    except IdentityError:
        return None
    return (n - spec.start, identity) if identity.dev_id == dev_id else None
