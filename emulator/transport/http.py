"""HTTP(S) for sessions: the only place that talks to servers.

One pooled ``aiohttp.ClientSession`` per TLS configuration and lane serves the whole fleet
(thousands of devices, a handful of connections each way, no port exhaustion). Two lanes, each with
its own pool: session messages (:meth:`HttpTransport.post`), whose answer a server may hold (DM 2.0
SHOW: until the web form is submitted, PROTOCOL 1.19 item 5), and every other request (web pages
and form posts, DM 2.0 HTTP GET/PUT, local apps' fetches). The form that releases a held answer
never waits for a connection that a held message has taken, so no number of sessions in flight and
no pool size can deadlock the fleet: at worst sessions queue for a message connection. aiohttp rather than httpx: under a
few hundred concurrent sessions httpx's async client falls to ~50 round trips/s where aiohttp keeps
~2,000 on the same machine (measured by ``dm-emulator bench``). Failures never escape as exceptions:
they come back as an :class:`HttpResult` with ``status == 0`` and an error in the user's words, and
the engine ends the session cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp

from emulator.errors import EmulatorError, FileFormatError
from emulator.protocol.actions import HttpResult
from emulator.transport.bodies import (
    ACCEPT_ENCODING,
    DEFAULT_MAX_BODY,
    READ_CHUNK,
    BadEncoding,
    BodyReader,
    BodyTooLarge,
)
from emulator.transport.shaping import NO_SHAPING, Shaping

if TYPE_CHECKING:
    from emulator.mo.accounts import Account
    from emulator.transport.lean import LeanPool

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """How one device reaches one server over HTTPS (DM-SECACATE-001, DM-DI-001, DM-SECCONF-001).

    verify: True (the system trust store), False (explicitly off: see :attr:`warning`), or a CA file.
    client_cert: the device's certificate for mutual TLS, PEM (holding the key too, or see
    client_key) or PKCS#12 (.p12/.pfx, opened with client_password, which also decrypts a PEM key).
    Frozen and hashable: the transport keeps one connection pool per distinct configuration.
    """

    verify: bool | str = True
    client_cert: str | None = None
    client_key: str | None = None
    client_password: str | None = field(default=None, repr=False)

    @classmethod
    def for_account(cls, account: Account) -> TlsConfig:
        """The settings of one account (its ``Ext/TLS`` nodes, see :mod:`emulator.mo.accounts`)."""
        verify: bool | str = account.ca_file or True
        if not account.verify:
            verify = False
        return cls(verify, account.client_cert or None, account.client_key or None,
                   account.client_cert_password or None)

    @property
    def warning(self) -> str | None:
        """What to show the user when this configuration is unsafe (verification turned off)."""
        if self.verify is False:
            return ("TLS server certificate verification is OFF for this account: any server, or anyone "
                    "in between, can pose as the DM server")
        return None

    @property
    def trust(self) -> str:
        """Where server certificates are checked against, in the words of an error message."""
        return f"the CA file {self.verify}" if isinstance(self.verify, str) else "the system trust store"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context; FileFormatError naming the file when a CA or certificate cannot be loaded."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.verify is False:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif isinstance(self.verify, str):
            try:
                ctx.load_verify_locations(cafile=self.verify)
            except (OSError, ssl.SSLError) as exc:
                raise FileFormatError(self.verify, None, f"cannot load the CA file: {_os_reason(exc)}") from None
        else:
            _load_system_trust(ctx)
        if self.client_cert:
            self._load_client_cert(ctx)
        return ctx

    def _load_client_cert(self, ctx: ssl.SSLContext) -> None:
        path = self.client_cert or ""
        try:
            if _is_pkcs12(path):
                from emulator.util.certs import load_pkcs12

                chain, key = load_pkcs12(path, self.client_password)
                _load_pem_pair(ctx, chain, key)
            else:
                ctx.load_cert_chain(path, self.client_key, password=self.client_password)
        except (OSError, ssl.SSLError) as exc:
            which = path if self.client_key is None else f"{path} with key {self.client_key}"
            raise FileFormatError(which, None, f"cannot load the client certificate: {_os_reason(exc)}") from None


def _is_pkcs12(path: str) -> bool:
    if path.lower().endswith((".p12", ".pfx")):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False  # load_cert_chain says what is wrong with the file
    return bool(head) and b"-----BEGIN" not in head and head[:1] == b"\x30"  # DER SEQUENCE


def _load_pem_pair(ctx: ssl.SSLContext, chain: bytes, key: bytes) -> None:
    """ssl loads key material only from files: a private directory that lives for one call."""
    with tempfile.TemporaryDirectory(prefix="dm-emulator-tls-") as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_path.write_bytes(chain)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        ctx.load_cert_chain(cert_path, key_path)


@lru_cache(maxsize=1)
def _system_capath() -> str | None:
    """The system's hashed CA directory, if there is one and nobody overrode the CA file.

    Loading the whole system bundle costs about 20 ms per context; a fleet with a client
    certificate per device needs a context per device, so 1,000 devices would spend 20 s on it. A
    hashed directory is read lazily, one CA at a time, when a handshake needs it.
    """
    if os.environ.get("SSL_CERT_FILE"):
        return None
    capath = ssl.get_default_verify_paths().capath
    try:
        if capath and any(name.endswith(".0") for name in os.listdir(capath)):
            return capath
    except OSError:
        pass
    return None


def _load_system_trust(ctx: ssl.SSLContext) -> None:
    capath = _system_capath()
    if capath:
        ctx.load_verify_locations(capath=capath)
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.strerror:
        return exc.strerror
    return str(exc)


LEAN_TARGETS_KEPT = 4096
"""Session message URLs whose parts the transport keeps (each is split once, not once per message)."""
DEFAULT_DEADLINE = 60.0  # seconds for one request, connect to last byte (docs/security.md)


MESSAGES = "messages"
"""The lane of session messages: a server may hold their answer (see the module doc)."""
FETCHES = "fetches"
"""The lane of every other request: web pages and forms, DM 2.0 HTTP requests, apps' fetches."""
LANES = (MESSAGES, FETCHES)


class HttpTransport:
    """Pooled async HTTP for all devices. ``timeout`` covers a server holding a long-poll answer.

    ``deadline`` bounds one request from connecting to the last byte of the answer: the read
    timeout alone restarts with every byte, so a server trickling one byte every few seconds would
    hold a device for ever. ``max_body`` caps an answer whose request names no limit of its own.
    ``max_connections``: connections at once in the lane of session messages (per TLS
    configuration); ``fetch_connections`` (default: as many) in the lane of every other request.
    """

    def __init__(self, *, timeout: float = 60.0, connect_timeout: float = 10.0, max_connections: int = 200,
                 fetch_connections: int | None = None, deadline: float | None = None,
                 max_body: int = DEFAULT_MAX_BODY,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:  # fmt: skip
        if max_connections < 1 or (fetch_connections is not None and fetch_connections < 1):
            raise ValueError("a connection pool needs at least 1 connection")
        self._sleep = sleep  # shaping delays go through here (tests record them instead of waiting)
        self._read_timeout = timeout
        self._deadline = deadline if deadline is not None else max(DEFAULT_DEADLINE, timeout)  # long polls
        self._max_body = max_body
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=timeout)
        self.limits = {MESSAGES: max_connections, FETCHES: fetch_connections or max_connections}
        self._clients: dict[tuple[TlsConfig, str], aiohttp.ClientSession] = {}
        self._connect_timeout = connect_timeout
        self._lean: LeanPool | None = None  # session messages over plain HTTP (see lean.py)
        self._lean_targets: dict[str, tuple[str, int, str]] = {}  # URL -> (host, port, request target)
        self._answered: set[tuple[TlsConfig, str]] = set()  # (tls, origin) whose handshake is known good
        self.requests = 0

    def _client(self, tls: TlsConfig, lane: str = FETCHES) -> aiohttp.ClientSession:
        client = self._clients.get((tls, lane))
        if client is None:
            connector = aiohttp.TCPConnector(limit=self.limits[lane], ssl=tls.ssl_context())
            # bodies are unpacked by BodyReader under the request's limit, never by aiohttp
            client = aiohttp.ClientSession(connector=connector, timeout=self._timeout, auto_decompress=False)
            self._clients[(tls, lane)] = client
            if tls.warning and lane == MESSAGES:
                log.warning("%s", tls.warning)
        return client

    async def request(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        tls: TlsConfig = TlsConfig(),
        shaping: Shaping = NO_SHAPING,
        rng: random.Random | None = None,
        max_body: int | None = None,
        lane: str = FETCHES,
    ) -> HttpResult:
        """One request; ``lane``: :data:`MESSAGES` for a session message, else :data:`FETCHES`."""
        if lane not in LANES:
            raise ValueError(f"lane must be one of {', '.join(LANES)}, not {lane!r}")
        self.requests += 1
        delay, lost = shaping.before(method, url, len(body), rng)
        if lost:
            return HttpResult(0, error=lost)
        if delay > 0:
            await self._sleep(delay / 1000)
        limit = max_body if max_body is not None else self._max_body
        if lane == MESSAGES and method == "POST" and url[:7].lower() == "http://":  # no TLS: no aiohttp client
            result = await self._lean_request(method, url, body, headers, limit)
            download = shaping.transfer_ms(len(result.body)) if result.status else 0
            if download > 0:
                await self._sleep(download / 1000)
            return result
        try:
            client = self._client(tls, lane)
        except (OSError, ssl.SSLError, EmulatorError) as exc:
            return HttpResult(0, error=f"{method} {url}: TLS set-up failed: {exc}")
        try:
            async with asyncio.timeout(self._deadline):
                async with client.request(method, url, data=body or None,
                                          headers={"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})},
                                          allow_redirects=False) as response:
                    status = response.status
                    answer_headers = _joined(response.headers)
                    reader = BodyReader(limit, answer_headers.get("content-encoding", ""),
                                        answer_headers.get("content-length"))
                    async for chunk in response.content.iter_chunked(READ_CHUNK):
                        reader.feed(chunk)
                    content = reader.body()
        except BodyTooLarge as exc:
            return HttpResult(0, error=f"{method} {url}: {exc}", too_large=True)
        except BadEncoding as exc:
            return HttpResult(0, error=f"{method} {url}: {exc}")
        except aiohttp.ServerTimeoutError:  # a TimeoutError too: first
            return HttpResult(0, error=f"{method} {url}: no answer within {self._read_timeout:g} s")
        except TimeoutError:  # asyncio.timeout: the whole exchange took too long
            return HttpResult(0, error=f"{method} {url}: the exchange did not finish within the deadline "
                                       f"of {self._deadline:g} s")
        except Exception as exc:  # aiohttp, bare ssl and socket errors: a session must never raise
            origin = (tls, _origin(url))
            refusal = tls_refusal(exc, tls, url, answered_before=origin in self._answered)
            if refusal and refusal.startswith(DROPPED):
                # asyncio's TLS loses the server's alert in a reset; one blocking handshake can read it
                precise = await asyncio.to_thread(probe_alert, url, tls)
                refusal = precise or refusal
            if refusal:
                return HttpResult(0, error=f"{method} {url}: TLS refused: {refusal}")
            if isinstance(exc, aiohttp.ClientConnectorError):
                return HttpResult(0, error=f"{method} {url}: cannot connect ({connect_reason(exc)})")
            return HttpResult(0, error=f"{method} {url}: {type(exc).__name__} ({_reason(exc)})")
        if len(self._answered) < 100_000:
            self._answered.add((tls, _origin(url)))
        download = shaping.transfer_ms(len(content))
        if download > 0:
            await self._sleep(download / 1000)
        return HttpResult(status, content, answer_headers)

    async def _lean_request(self, method: str, url: str, body: bytes, headers: dict[str, str] | None,
                            limit: int) -> HttpResult:
        """A session message over plain HTTP with the lean client (lean.py): the same answers and the
        same words for failures as the aiohttp path."""
        from emulator.transport.lean import BadAnswer, ConnectFailed, Disconnected, LeanPool, ReadTimeout

        if self._lean is None:
            self._lean = LeanPool(limit=self.limits[MESSAGES], connect_timeout=self._connect_timeout,
                                  read_timeout=self._read_timeout)
        where = self._lean_targets.get(url)
        if where is None:
            try:
                parts = urlsplit(url)
                host, port = parts.hostname or "", parts.port or 80
            except ValueError as exc:
                return HttpResult(0, error=f"{method} {url}: InvalidURL ({exc})")
            where = (host, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
            if len(self._lean_targets) >= LEAN_TARGETS_KEPT:  # RespURIs may be per session: start afresh
                self._lean_targets.clear()
            self._lean_targets[url] = where
        host, port, target = where
        all_headers = {"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})}

        def reader(answer: dict[str, str]) -> BodyReader:
            return BodyReader(limit, answer.get("content-encoding", ""), answer.get("content-length"))

        try:
            status, answer_headers, content = await self._lean.request(
                host, port, target, method, all_headers, body, reader, self._lean.loop.time() + self._deadline)
        except BodyTooLarge as exc:
            return HttpResult(0, error=f"{method} {url}: {exc}", too_large=True)
        except BadEncoding as exc:
            return HttpResult(0, error=f"{method} {url}: {exc}")
        except ReadTimeout:
            return HttpResult(0, error=f"{method} {url}: no answer within {self._read_timeout:g} s")
        except TimeoutError:
            return HttpResult(0, error=f"{method} {url}: the exchange did not finish within the deadline "
                                       f"of {self._deadline:g} s")
        except ConnectFailed as exc:
            return HttpResult(0, error=f"{method} {url}: cannot connect ({exc})")
        except Disconnected as exc:
            return HttpResult(0, error=f"{method} {url}: ServerDisconnectedError ({exc})")
        except BadAnswer as exc:
            return HttpResult(0, error=f"{method} {url}: {exc}")
        except Exception as exc:  # a session must never raise
            return HttpResult(0, error=f"{method} {url}: {type(exc).__name__} ({_reason(exc)})")
        return HttpResult(status, content, answer_headers)

    async def post(self, url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None, *,
                   tls: TlsConfig = TlsConfig(), shaping: Shaping = NO_SHAPING,
                   rng: random.Random | None = None, max_body: int | None = None) -> HttpResult:
        """A session message: over the lane whose answers a server may hold."""
        all_headers = {"Content-Type": content_type, **(headers or {})}
        if shaping is NO_SHAPING and url[:7].lower() == "http://":  # what request() would do, one step less
            self.requests += 1
            return await self._lean_request("POST", url, body, all_headers,
                                            max_body if max_body is not None else self._max_body)
        return await self.request("POST", url, body, all_headers, tls=tls, shaping=shaping, rng=rng,
                                  max_body=max_body, lane=MESSAGES)

    async def aclose(self) -> None:
        lean, self._lean = self._lean, None
        if lean is not None:
            await lean.aclose()
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()


def _joined(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers by lower-case name; repeated ones (several ``WWW-Authenticate`` challenges) joined
    with ", " as RFC 9110 5.3 allows, the way httpx does for the Locust transport."""
    out: dict[str, str] = {}
    for key, value in headers.items():  # a multidict's items() gives every repeated header
        name = key.lower()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}"


def connect_reason(exc: aiohttp.ClientConnectorError) -> str:
    """Why a connection could not be made, without aiohttp's ``ssl:default`` and ``Connect call
    failed`` wording (which names TLS settings even for plain HTTP): "connection refused:
    127.0.0.1:9"."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientConnectorSSLError):
        return _reason(exc)
    os_error = exc.os_error
    errno = getattr(os_error, "errno", None)
    why = os.strerror(errno) if isinstance(errno, int) and errno > 0 else (
        getattr(os_error, "strerror", None) or str(os_error) or type(os_error).__name__)
    if isinstance(os_error, TimeoutError | asyncio.TimeoutError) and not errno:
        why = "timed out"
    return f"{why[:1].lower()}{why[1:]}: {exc.host}:{exc.port}"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "server certificate not trusted: " + text.split("certificate verify failed:")[-1].strip(" )]")
    return text


# OpenSSL X509_V_ERR_* codes of a failed server certificate check, in the user's words.
_UNKNOWN_CA = "the server's certificate is not signed by a CA in {trust} (unknown CA)"
_VERIFY_CODES = {
    2: _UNKNOWN_CA,  # unable to get issuer certificate
    9: "the server's certificate is not valid yet (check the clocks)",
    10: "the server's certificate has expired",
    18: "the server's certificate is self-signed and not in {trust} (unknown CA)",
    19: "the server's certificate chain ends in a self-signed CA that is not in {trust} (unknown CA)",
    20: _UNKNOWN_CA,  # unable to get local issuer certificate
    21: _UNKNOWN_CA,  # unable to verify the first certificate
    23: "the server's certificate has been revoked",
    26: "the server's certificate may not be used for a TLS server (wrong key usage)",
    62: "wrong host name: the server's certificate is not valid for {host}",
    64: "wrong host name: the server's certificate is not valid for the address {host}",
}
# TLS alerts the server sends when it refuses the device's client certificate (OpenSSL reasons).
_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate and {has}",
    "TLSV1_ALERT_UNKNOWN_CA": "the server does not trust the device's client certificate (unknown CA)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the server refused the device's client certificate: it has expired",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "the server refused the device's client certificate: it is revoked",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the server refused the device's client certificate (bad certificate)",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the server refused the device's client certificate",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the server ended the handshake: no common TLS version or cipher, "
    "or it requires a client certificate and {has}",
    "TLSV1_ALERT_PROTOCOL_VERSION": "no TLS version both sides accept (the device needs TLS 1.2 or later)",
    "WRONG_VERSION_NUMBER": "the server does not speak TLS on this port (plain HTTP? try http://)",
}


DROPPED = "the server dropped the connection during or right after the TLS handshake"


def probe_alert(url: str, tls: TlsConfig, timeout: float = 5.0) -> str | None:
    """Handshake once with blocking sockets and name the TLS alert the server sends, if any.

    Only run after a failure: a TLS 1.3 server refuses a client certificate after the client's
    handshake ends, and asyncio's transport turns that alert into a bare reset.
    """
    import socket

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    try:
        ctx = tls.ssl_context()
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=host) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            conn.recv(1)
    except ssl.SSLError as exc:
        return tls_refusal(exc, tls, url)
    except (OSError, EmulatorError):
        return None
    return None


def tls_refusal(exc: BaseException, tls: TlsConfig, url: str, *, answered_before: bool = False) -> str | None:
    """Why a TLS connection was refused, in plain words; None when the failure was not TLS.

    aiohttp wraps the ssl error (ClientConnectorCertificateError around SSLCertVerificationError,
    ClientOSError around a reset), so the cause chain and aiohttp's wrapped errors are searched. A TLS 1.3 server checks the client certificate after
    the client has finished its handshake; servers on asyncio then drop the connection without
    sending their alert, so a reset is reported as the likely refusal, unless the server has
    ``answered_before`` with this configuration (then the handshake is known to pass).
    """
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # a URL that cannot even be parsed failed before any TLS
        return None
    has = ("the device has none configured" if not tls.client_cert
           else f"the device's certificate ({tls.client_cert}) was not accepted")
    reset = False
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        # aiohttp's wrappers subclass the ssl errors without their fields: look at what they wrap
        wrapped = getattr(cause, "certificate_error", None) or getattr(cause, "os_error", None)
        if isinstance(wrapped, BaseException) and id(wrapped) not in seen:
            cause = wrapped
            continue
        if isinstance(cause, ssl.SSLCertVerificationError):
            text = _VERIFY_CODES.get(cause.verify_code)
            if text is None:
                return f"the server's certificate was not accepted: {cause.verify_message}"
            return text.format(trust=tls.trust, host=host)
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or ""
            text = _ALERTS.get(reason)
            return text.format(has=has) if text else f"TLS error {reason or cause}"
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            reset = True
        cause = cause.__cause__ or cause.__context__
    dropped = reset or isinstance(exc, aiohttp.ServerDisconnectedError)
    if dropped and not answered_before and url.lower().startswith("https:"):
        return (DROPPED + "; "
                + ("it probably requires a client certificate and the device has none configured"
                   if not tls.client_cert
                   else f"it probably refused the device's client certificate {tls.client_cert} "
                   "(unknown CA, expired or revoked)"))
    return None
