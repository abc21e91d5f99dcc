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
    """A fresh test CA and a server certificate for ``host`` (plus localhost): (ca, cert, key).

    What ``dm-emulator server --tls`` uses; devices trust it by pointing their CA file at ``ca``.
    """
    from emulator.certs import issue_cert, load_ca, make_ca

    ca = load_ca(make_ca(directory, "dm-emulator reference server CA"))
    sans = dict.fromkeys([host, "localhost", "127.0.0.1", "::1"])  # ordered, no repeats
    cert, key = issue_cert(ca, host, sans=[s for s in sans if s not in ("", "0.0.0.0", "::")], name="server")
    return ca.cert_path, cert, key
