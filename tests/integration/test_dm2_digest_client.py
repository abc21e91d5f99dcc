"""The DM 2.0 client authenticates with HTTP Digest (RFC 7616, PROTOCOL.md 1.15) against a loopback
server that checks every request with its own digest code: one 401 per session, then the nonce
reused with a growing count; a stale nonce is renewed; wrong secrets end in a clear failure."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re

from aiohttp import web

from emulator.fleet.fleet import Fleet
from emulator.mo.accounts import configure_account
from emulator.protocol.dm2 import media
from emulator.protocol.dm2.digest import MAX_CHALLENGE, parse_challenges

USER, SECRET, REALM = "dev-user", "digest-secret", "outside-dm2"
FWV = "urn:oma:mo:oma-dm-devinfo:1.2//FwV"


class DigestServer:
    """Two Package#2 (a GET, then END); each POST must carry a valid Digest answer."""

    def __init__(self, *, algorithm: str = "SHA-256", stale_once: bool = False) -> None:
        self.algorithm = algorithm
        self.stale_once = stale_once
        self.nonce_no = 0
        self.nonce = ""
        self.counts: list[int] = []
        self.used: set[tuple[str, int]] = set()
        self.refused: list[str] = []
        self.bodies: list[dict] = []

    def _challenge(self, stale: bool = False) -> web.Response:
        self.nonce_no += 1
        self.nonce = f"n{self.nonce_no}x"
        headers = [("WWW-Authenticate", f'Digest realm="{REALM}", qop="auth", algorithm={self.algorithm}, '
                                        f'nonce="{self.nonce}"' + (", stale=true" if stale else "")),
                   ("WWW-Authenticate", f'Basic realm="{REALM}"')]
        resp = web.Response(status=401, text="who are you")
        for k, v in headers:
            resp.headers.add(k, v)
        return resp

    def _valid(self, request: web.Request) -> bool:
        value = request.headers.get("Authorization", "")
        if not value.startswith("Digest "):
            return False
        p = {m.group(1): m.group(2).strip('"') for m in re.finditer(r'(\w+)=("[^"]*"|[^,\s]+)', value)}
        h = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}[p["algorithm"]]

        def d(text: str) -> str:
            return h(text.encode()).hexdigest()

        want = d(f"{d(f'{USER}:{REALM}:{SECRET}')}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:"
                 f"{d(f'POST:{request.path_qs}')}")
        ok = (p["username"] == USER and p["nonce"] == self.nonce and p["uri"] == request.path_qs
              and p["response"] == want and (p["nonce"], int(p["nc"], 16)) not in self.used)
        if ok:
            self.used.add((p["nonce"], int(p["nc"], 16)))
            self.counts.append(int(p["nc"], 16))
        return ok

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self._valid(request):
            self.refused.append(request.headers.get("Authorization", ""))
            return self._challenge()
        if self.stale_once and len(self.bodies) == 1:
            self.stale_once = False
            return self._challenge(stale=True)
        self.bodies.append(json.loads(body))
        cmd = [["GET", FWV]] if len(self.bodies) == 1 else [["END"]]
        return web.Response(body=json.dumps({"CMD": cmd}).encode(), content_type=media.REQUEST)


def _session(server: DigestServer, secret: str = SECRET):
    async def main():
        app = web.Application()
        app.router.add_post("/dm2", server.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/dm2?x=1"
        fleet = Fleet(server="http://127.0.0.1:1")
        try:
            (dev,) = fleet.add("smartphone", 1)
            dev.bearers, dev.bearer = {}, ""
            configure_account(dev.tree, dev.account(protocol="dm2"), auth="digest", client_user=USER,
                              client_secret=secret)
            return await fleet.run_session(dev.id, "dm2", server_uri=url), dev
        finally:
            await fleet.aclose()
            await runner.cleanup()

    return asyncio.run(main())


def test_digest_session_takes_one_challenge_then_counts_up():
    server = DigestServer()
    done, dev = _session(server)
    assert done.outcome == "completed", done.detail
    assert server.refused == [""]  # only the very first request went without credentials
    assert server.counts == [1, 2]
    assert server.bodies[1]["Status"][0]["sc"] == 200
    assert server.bodies[1]["Status"][0]["MOS"][0]["MOData"]["FwV"] == dev.tree.value("./DM2/DevInfo/FwV")


def test_digest_md5_and_a_stale_nonce_is_renewed():
    server = DigestServer(algorithm="MD5", stale_once=True)
    done, _ = _session(server)
    assert done.outcome == "completed", done.detail
    assert server.nonce_no == 2 and server.counts == [1, 2, 1]


def test_wrong_secret_fails_with_the_servers_401_after_bounded_retries():
    server = DigestServer()
    done, _ = _session(server, secret="wrong")
    assert done.outcome == "failed" and "401" in done.detail
    assert len(server.refused) == 3  # no credentials, then MAX_DIGEST_REFUSALS answers


def test_challenge_parsing_edges():
    both = 'Digest realm="r", qop="auth,auth-int", algorithm=SHA-256, nonce="a", Basic realm="r"\nDigest realm="r", nonce="b"'
    got = parse_challenges(both)
    assert [(c.algorithm, c.nonce, c.qop) for c in got] == [("SHA-256", "a", ("auth", "auth-int")), ("MD5", "b", ())]
    assert parse_challenges('Digest realm="r", nonce="n", algorithm=SHA-512-256') == []  # not spoken: skipped
    assert parse_challenges('Digest realm="r", nonce="n", qop="auth-int"') == []
    assert parse_challenges("Digest") == [] and parse_challenges("") == []
    head = 'Digest realm="r", nonce="'
    at_limit = head + "x" * (MAX_CHALLENGE - len(head) - 1) + '"'
    assert len(at_limit) == MAX_CHALLENGE and len(parse_challenges(at_limit)) == 1
    assert parse_challenges(at_limit[:-1] + 'x"') == []  # one character beyond MAX_CHALLENGE


def test_digest_against_the_reference_server():
    """The reference server's own Digest (emulator/server/dm2_auth.py) and the client's agree."""
    from emulator.events import SessionEnded
    from emulator.server.app import start_server
    from emulator.server.state import ServerState

    async def main():
        server = await start_server(ServerState(show_hold_s=1))
        fleet = Fleet(server=server.url)
        ended: list[SessionEnded] = []
        fleet.bus.subscribe(ended.append, SessionEnded)
        try:
            (dev,) = fleet.add("smartphone", 1)
            dev.bearers, dev.bearer = {}, ""
            configure_account(dev.tree, dev.account(protocol="dm2"), auth="digest")
            server.state.set_script(dev.id, [[["GET", FWV]]])
            return await fleet.run_session(dev.id, "dm2"), server.state.device(dev.id), dev
        finally:
            await fleet.aclose()
            await server.stop()

    done, log, dev = asyncio.run(main())
    assert done.outcome == "completed", done.detail
    assert log.gets[FWV] == {"FwV": dev.tree.value("./DM2/DevInfo/FwV")}
