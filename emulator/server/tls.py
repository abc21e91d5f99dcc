"""HTTPS for the reference server: a server certificate, and client certificates when asked for.

The reference server is the peer the TLS tests run against, so it must be able to refuse the way
real DM servers do: no client certificate, one from an unknown CA, an expired one.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from emulator.errors import FileFormatError

PathLike = str | os.PathLike[str]


def serve_tls_context(
    cert: PathLike,
    key: PathLike | None = None,
    *,
    client_ca: PathLike | None = None,
    require_client_cert: bool = False,
) -> ssl.SSLContext:
    """A server-side context; with ``client_ca`` client certificates signed by it are checked.

    ``require_client_cert`` refuses clients without one (mutual TLS); otherwise a certificate is
    asked for but optional, and the handler sees who sent one (:func:`peer_common_name`).
    """
    if require_client_cert and client_ca is None:
        raise ValueError("require_client_cert needs client_ca: the CA client certificates are checked against")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(os.fspath(cert), os.fspath(key) if key is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise FileFormatError(os.fspath(cert), None, f"cannot load the server certificate and key: {exc}") from None
    if client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=os.fspath(client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise FileFormatError(os.fspath(client_ca), None, f"cannot load the client CA: {exc}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def peer_common_name(transport: object) -> str | None:
    """The CN of the verified client certificate on a connection (an asyncio transport), or None.

    In aiohttp: ``peer_common_name(request.transport)``.
    """
    get = getattr(transport, "get_extra_info", None)
    cert = get("peercert") if get else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def make_server_identity(directory: PathLike, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for ``host`` (plus localhost) in ``directory``: (ca, cert, key).

    What ``dm-emulator server --tls`` uses; devices trust the server by taking ``ca`` as the CA file
    of their account. Files already there are kept, so devices keep trusting a restarted server.
    """
    from emulator.util.certs import issue_cert, load_ca, make_ca

    folder = Path(directory)
    ca_files = (folder / "ca.pem", folder / "ca.key")
    cert, key = folder / "server.pem", folder / "server.key"
    names = [n for n in dict.fromkeys([host, "localhost", "127.0.0.1", "::1"]) if n not in ("", "0.0.0.0", "::")]
    if all(p.is_file() for p in (*ca_files, cert, key)) and _covers(cert, names):
        return ca_files[0], cert, key
    ca = load_ca(ca_files if all(p.is_file() for p in ca_files) else make_ca(folder, "dm-emulator reference server CA"))
    cert, key = issue_cert(ca, names[0], sans=names, name="server")
    return ca.cert_path, cert, key


def _covers(cert_path: Path, names: list[str]) -> bool:
    """Whether an existing server certificate is still valid and names every host it must."""
    from datetime import UTC, datetime

    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    have = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return set(names) <= have and cert.not_valid_after_utc > datetime.now(UTC)


def server_tls(directory: PathLike | None, host: str, *, require_client_cert: bool = False
               ) -> tuple[ssl.SSLContext, Path]:
    """The context ``dm-emulator server --tls`` listens with, and the CA file devices must trust.

    ``directory`` None: a new private folder (printed by the command; it outlives the server, since
    devices need its CA). With ``require_client_cert`` devices must show a certificate from that CA.
    """
    import tempfile

    folder = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="dm-emulator-tls-"))
    ca, cert, key = make_server_identity(folder, host)
    ctx = serve_tls_context(cert, key, client_ca=ca, require_client_cert=require_client_cert)
    return ctx, ca
