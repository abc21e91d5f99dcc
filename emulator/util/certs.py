"""A test certificate authority: server and per-device client certificates for HTTPS and mutual TLS.

DM servers identify devices by their client certificate as often as by a password (DM-SECACATE-001,
DM-DI-001), so a fleet needs one identity per device. EC P-256 keys are used throughout because they
are generated and signed in tens of microseconds: a thousand distinct device identities take about a
second, where RSA-2048 would take a minute. Everything is written as PEM files, since that is what
:mod:`ssl` loads (it cannot load PKCS#12; :func:`load_pkcs12` converts a user's bundle instead).

Private keys are written unencrypted with mode 0600: they are test identities, and the emulator must
load a thousand of them without asking for a passphrase.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emulator.errors import FileFormatError

CA_DAYS = 3650
CERT_DAYS = 825  # the longest server certificate lifetime browsers accept
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class TestCa:
    """A loaded CA: its files, plus the parsed certificate and key so issuing does not re-read them."""

    __test__ = False  # not a pytest test class, despite the name

    cert_path: Path
    key_path: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


CaLike = TestCa | tuple[str | os.PathLike[str], str | os.PathLike[str]]


def make_ca(directory: str | os.PathLike[str], cn: str = "dm-emulator test CA", *,
            days: int = CA_DAYS) -> tuple[Path, Path]:
    """A self-signed CA in ``directory`` (``ca.pem``, ``ca.key``); returns the two paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = out / "ca.pem", out / "ca.key"
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    _write(key_path, _key_pem(key), private=True)
    return cert_path, key_path


def load_ca(ca: CaLike) -> TestCa:
    """A CA from its two PEM files (as :func:`make_ca` wrote them); a TestCa is returned as it is."""
    if isinstance(ca, TestCa):
        return ca
    cert_path, key_path = Path(ca[0]), Path(ca[1])
    cert = _load_cert(cert_path, "CA certificate")
    try:
        key = serialization.load_pem_private_key(_read(key_path, "CA key"), password=None)
    except (ValueError, TypeError) as exc:
        raise FileFormatError(str(key_path), None, f"not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise FileFormatError(str(key_path), None, "the test CA key must be an EC key (make_ca writes one)")
    return TestCa(cert_path, key_path, cert, key)


def issue_cert(
    ca: CaLike,
    cn: str,
    *,
    sans: Iterable[str] = (),
    client: bool = False,
    days: int = CERT_DAYS,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    directory: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> tuple[Path, Path]:
    """A certificate for ``cn`` signed by ``ca``: ``<name>.pem`` and ``<name>.key`` in ``directory``.

    ``sans`` are host names or IP addresses (a server certificate needs the one clients connect to;
    ``client=True`` makes a client-authentication certificate instead). ``not_before``/``not_after``
    override ``days``, so tests can make an expired or not-yet-valid certificate.
    ``directory`` defaults to the CA's own, ``name`` to ``cn`` made safe for a file name.
    """
    authority = load_ca(ca)
    out = Path(directory) if directory is not None else authority.cert_path.parent
    out.mkdir(parents=True, exist_ok=True)
    cert, key = _build(authority, cn, tuple(sans), client, days, not_before, not_after)
    stem = name or _UNSAFE.sub("_", cn) or "cert"
    cert_path, key_path = out / f"{stem}.pem", out / f"{stem}.key"
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    _write(key_path, _key_pem(key), private=True)
    return cert_path, key_path


def issue_device_certs(
    ca: CaLike,
    dev_ids: Iterable[str],
    *,
    directory: str | os.PathLike[str] | None = None,
    days: int = CERT_DAYS,
) -> dict[str, tuple[Path, Path]]:
    """One client certificate per device (CN = the DevId, each with its own key): ``{dev_id: (cert, key)}``.

    Files go to ``directory`` (default ``devices/`` next to the CA), named after the DevId.
    """
    authority = load_ca(ca)
    out = Path(directory) if directory is not None else authority.cert_path.parent / "devices"
    issued: dict[str, tuple[Path, Path]] = {}
    stems: set[str] = set()
    for dev_id in dev_ids:
        stem = _UNSAFE.sub("_", dev_id) or "device"
        if stem in stems:  # "IMEI:1" and "IMEI_1" must not share files
            stem = f"{stem}-{len(stems)}"
        stems.add(stem)
        issued[dev_id] = issue_cert(authority, dev_id, client=True, days=days, directory=out, name=stem)
    return issued


def load_pkcs12(path: str | os.PathLike[str], password: str | bytes | None = None) -> tuple[bytes, bytes]:
    """A PKCS#12 bundle as (certificate chain PEM, private key PEM), for :mod:`ssl`, which reads only PEM."""
    data = _read(Path(path), "PKCS#12 file")
    secret = password.encode("utf-8") if isinstance(password, str) else password
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, secret or None)
    except (ValueError, TypeError) as exc:
        why = "wrong password or not a PKCS#12 file" if "password" in str(exc).lower() or secret else str(exc)
        raise FileFormatError(str(path), None, f"cannot open PKCS#12: {why}") from None
    if key is None or cert is None:
        raise FileFormatError(str(path), None, "PKCS#12 holds no certificate with its private key")
    chain = cert.public_bytes(serialization.Encoding.PEM)
    chain += b"".join(c.public_bytes(serialization.Encoding.PEM) for c in extra or ())
    return chain, _key_pem(key)


def export_pkcs12(cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str],
                  out: str | os.PathLike[str], password: str | None = None) -> Path:
    """A certificate and its key as one PKCS#12 file (what many real devices and servers import)."""
    cert = _load_cert(Path(cert_path), "certificate")
    try:
        key = serialization.load_pem_private_key(_read(Path(key_path), "private key"), password=None)
    except (ValueError, TypeError) as exc:
        raise FileFormatError(str(key_path), None, f"not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                      | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):  # DSA: deprecated, not offered
        raise FileFormatError(str(key_path), None, f"a {type(key).__name__} does not go into PKCS#12 here")
    encryption = (serialization.BestAvailableEncryption(password.encode("utf-8")) if password
                  else serialization.NoEncryption())
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    label = str(cn[0].value).encode("utf-8") if cn else None
    data = pkcs12.serialize_key_and_certificates(label, key, cert, None, encryption)
    target = Path(out)
    _write(target, data, private=True)
    return target


def common_name(cert_pem: bytes) -> str:
    """The subject CN of a PEM certificate ("" when it has none)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cn[0].value) if cn else ""


# ---------------------------------------------------------------------------------------------- helpers


def _build(ca: TestCa, cn: str, sans: tuple[str, ...], client: bool, days: int,
           not_before: datetime | None, not_after: datetime | None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    start = not_before or now - timedelta(minutes=5)
    end = not_after or start + timedelta(days=days)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(s) for s in sans]), critical=False)
    return builder.sign(ca.key, hashes.SHA256()), key


def _san(text: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        return x509.DNSName(text)


def _key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_cert(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(path, what))
    except ValueError as exc:
        raise FileFormatError(str(path), None, f"not a PEM certificate: {exc}") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FileFormatError(str(path), None, f"cannot read {what}: {exc.strerror or exc}") from None


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write a file; a private key is created 0600 from the start, never readable by others for a moment."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
