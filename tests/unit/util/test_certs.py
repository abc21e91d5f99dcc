"""The test CA: what it issues must be what X.509 and TLS expect (RFC 5280 fields, usages, validity)."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emulator.errors import FileFormatError
from emulator.util.certs import (
    common_name,
    export_pkcs12,
    issue_cert,
    issue_device_certs,
    load_ca,
    load_pkcs12,
    make_ca,
)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory):
    return load_ca(make_ca(tmp_path_factory.mktemp("ca"), "Unit CA"))


def test_ca_is_a_self_signed_ca_with_a_private_key_file(ca):
    cert = _cert(ca.cert_path)
    assert cert.subject == cert.issuer
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert stat.S_IMODE(ca.key_path.stat().st_mode) == 0o600
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey) and ca.key.curve.name == "secp256r1"
    cert.verify_directly_issued_by(cert)  # self-signed: its signature checks with its own key


def test_server_certificate_names_and_usage(ca, tmp_path):
    cert_path, key_path = issue_cert(ca, "dm.example", sans=["dm.example", "127.0.0.1", "::1"], directory=tmp_path)
    cert = _cert(cert_path)
    cert.verify_directly_issued_by(_cert(ca.cert_path))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["dm.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    # ssl accepts the pair as a server identity
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)


def test_explicit_validity_makes_expired_certificates(ca, tmp_path):
    start = datetime(2020, 1, 1, tzinfo=UTC)
    cert_path, _ = issue_cert(ca, "old", not_before=start, not_after=start + timedelta(days=2), directory=tmp_path)
    cert = _cert(cert_path)
    assert cert.not_valid_before_utc == start and cert.not_valid_after_utc == start + timedelta(days=2)
    assert cert.not_valid_after_utc < datetime.now(UTC)


def test_device_certificates_are_distinct_client_identities(ca, tmp_path):
    ids = [f"IMEI:35000000000{i:04d}" for i in range(20)] + ["IMEI_350000000000000"]
    issued = issue_device_certs(ca, ids, directory=tmp_path)
    assert list(issued) == ids
    certs = {dev: _cert(c) for dev, (c, _) in issued.items()}
    assert {dev: c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for dev, c in certs.items()} == {
        dev: dev for dev in ids
    }
    assert len({c.public_key().public_numbers() for c in certs.values()}) == len(ids)  # one key each
    assert len({p for pair in issued.values() for p in pair}) == 2 * len(ids)  # no file shared
    for c in certs.values():
        assert list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
            ExtendedKeyUsageOID.CLIENT_AUTH
        ]
        c.verify_directly_issued_by(_cert(ca.cert_path))


def test_pkcs12_round_trip_with_and_without_password(ca, tmp_path):
    cert_path, key_path = issue_cert(ca, "IMEI:1", client=True, directory=tmp_path)
    for password in ("pw", None):
        bundle = export_pkcs12(cert_path, key_path, tmp_path / f"b{password}.p12", password)
        chain, key = load_pkcs12(bundle, password)
        assert chain == cert_path.read_bytes()
        assert key.startswith(b"-----BEGIN PRIVATE KEY-----")
        assert common_name(chain) == "IMEI:1"


def test_pkcs12_errors_name_the_file(ca, tmp_path):
    cert_path, key_path = issue_cert(ca, "x", client=True, directory=tmp_path)
    bundle = export_pkcs12(cert_path, key_path, tmp_path / "x.p12", "right")
    with pytest.raises(FileFormatError, match=r"x\.p12.*password"):
        load_pkcs12(bundle, "wrong")
    (tmp_path / "junk.p12").write_bytes(b"\x30\x03junk")
    with pytest.raises(FileFormatError, match=r"junk\.p12"):
        load_pkcs12(tmp_path / "junk.p12")
    with pytest.raises(FileFormatError, match="cannot read"):
        load_pkcs12(tmp_path / "missing.p12")


def test_pkcs12_export_refuses_a_key_pkcs12_cannot_hold(ca, tmp_path):
    """An X25519 key (key agreement only) is a readable PEM key that PKCS#12 has no place for."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import x25519

    cert_path, _ = issue_cert(ca, "x", client=True, directory=tmp_path)
    odd = tmp_path / "odd.key"
    odd.write_bytes(x25519.X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(FileFormatError, match=r"odd\.key.*X25519PrivateKey does not go into PKCS#12"):
        export_pkcs12(cert_path, odd, tmp_path / "x.p12")
    assert not (tmp_path / "x.p12").exists()


def test_load_ca_refuses_what_is_not_a_ca_pair(tmp_path):
    (tmp_path / "a.pem").write_text("not a certificate")
    (tmp_path / "a.key").write_text("not a key")
    with pytest.raises(FileFormatError, match=r"a\.pem"):
        load_ca((tmp_path / "a.pem", tmp_path / "a.key"))
