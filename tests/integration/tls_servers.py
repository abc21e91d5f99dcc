"""TLS servers outside asyncio, for tests that need the server's TLS alert to reach the device.

asyncio's TLS server side drops the alert of a failed handshake (the client sees a reset or an early
EOF); a blocking server sends it, as most servers in the field do.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time


def alerting_server(ctx: ssl.SSLContext) -> tuple[int, threading.Thread]:
    """Blocking TLS accepts, as servers outside asyncio do it: a failed handshake sends its alert and
    the socket stays open a moment, so a blocking client reads the alert instead of a reset. Two
    connections: the asyncio transport loses the alert in a reset and probes once more to read it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)
    listener.settimeout(5)

    def serve() -> None:
        try:
            for _ in range(2):
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                tls = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                try:
                    tls.do_handshake()  # refuses the client certificate and sends the alert
                    tls.recv(1024)
                except (ssl.SSLError, OSError):
                    time.sleep(0.3)  # keep the socket: closing it with unread data would reset the alert away
                finally:
                    tls.close()
        finally:
            listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread
