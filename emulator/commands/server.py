"""`dm-emulator server`: the reference DM server alone, until Ctrl+C (or SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import ssl
import sys
from collections.abc import Callable

from emulator.errors import EmulatorError
from emulator.server.accounts import ServerAccount, load_accounts
from emulator.server.faults import NOTIFICATION_KINDS, Fault
from emulator.server.state import ServerState
from emulator.util.admin_token import ADMIN_TOKEN_ENV


async def serve(host: str, port: int, *, ready: Callable[[str, ServerState], object] | None = None, stop: asyncio.Event | None = None,
                ssl_context: ssl.SSLContext | None = None, faults: list[Fault] | None = None,
                state: ServerState | None = None, accounts: list[ServerAccount] | None = None) -> None:
    """Listen on host:port (0 = a free port) until ``stop`` is set (or forever); ``ready(url, state)``
    is called once the server accepts connections. With ``ssl_context`` it serves HTTPS; ``faults``
    are committed as :mod:`emulator.server.faults` says; ``accounts`` are played from the start."""
    from emulator.server.app import start_server

    state = state if state is not None else ServerState()
    for fault in faults or ():
        state.faults.add(fault)
    server = await start_server(state, host=host, port=port, ssl_context=ssl_context)
    if accounts:
        server.control.add_accounts(accounts)
    try:
        if ready is not None:
            ready(server.url, server.state)
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await server.stop()


def run(args: argparse.Namespace) -> int:
    ssl_context = ca = None
    faults = [Fault.parse(spec) for spec in getattr(args, "fault", None) or ()]  # a bad one stops us here
    if getattr(args, "require_client_cert", False) and not args.tls:
        raise EmulatorError("--require-client-cert needs --tls (client certificates are a TLS feature)")
    if getattr(args, "tls", False):
        from emulator.server.tls import server_tls

        ssl_context, ca = server_tls(args.tls_dir, args.host, require_client_cert=args.require_client_cert)

    accounts = load_accounts(args.accounts) if getattr(args, "accounts", None) else []  # a bad file stops us here
    state = ServerState(ui_resume=getattr(args, "ui_resume", "held"))
    if getattr(args, "admin_token", None):
        state.admin_token = args.admin_token

    def ready(url: str, state: ServerState) -> None:
        print(f"reference DM server on {url}", flush=True)
        print(f"  DM 2.0: {url}/dm2   DM 1.2: {url}/dm12   web pages: {url}/ui/   (Ctrl+C stops)", flush=True)
        for fault in faults:
            when = (f"its next {fault.sessions} notification(s)" if fault.kind in NOTIFICATION_KINDS
                    else f"answer {fault.message} of its next {fault.sessions} session(s)")
            print(f"  fault: {fault.kind} for {'every device' if fault.device == '*' else fault.device}, {when}",
                  flush=True)
        if ca is not None:
            print(f"  TLS: devices trust the CA file {ca} (account node Ext/TLS/CAFile)"
                  + ("; client certificates from that CA required" if args.require_client_cert else ""),
                  flush=True)
        for account in accounts:
            shown = account.shown()
            route = "/dm12" if account.protocol == "dm12" else "/dm2"
            print(f"  account: {shown['dev_id']} as {shown['client_user']} ({shown['client_auth']}) at "
                  f"{url}{route}/{account.server_id}, server {shown['server_name']} ({shown['server_auth']})"
                  if account.protocol == "dm12" else
                  f"  account: {shown['dev_id']} as {shown['client_user']} at {url}{route}/{account.server_id}",
                  flush=True)
        if getattr(args, "admin_token", None) or os.environ.get(ADMIN_TOKEN_ENV):
            print("  admin API: /admin/... with Authorization: Bearer <the admin token you gave>", flush=True)
        else:
            print(f"  admin API: /admin/... with Authorization: Bearer {state.admin_token}", flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers on Windows
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await serve(args.host, args.port, ready=ready, stop=stop, ssl_context=ssl_context, faults=faults,
                    state=state, accounts=accounts)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    print("stopped", file=sys.stderr)
    return 0
