"""PROOF (issue 13, "Their client against our reference server"): a DM 1.2 client we did not ship
gets in with its own account, from `dm-emulator server --accounts FILE` as the README shows, or from
the admin API. The client here is the emulator's own SyncML engine given exactly the DMAcc of
intel/libdmclient's test client (user funambol apart from DevId DMCtest, basic towards the server,
md5 expected back with an empty nonce), plus hand-made messages checked byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import FileFormatError
from emulator.events import EventBus
from emulator.fleet.drive import SessionContext, drive
from emulator.fleet.headless import HeadlessUi
from emulator.mo.accounts import Account
from emulator.protocol.syncml import auth, codes
from emulator.protocol.syncml.client import SyncMLClient
from emulator.protocol.syncml.commands import Alert, Cred, Message, Status, SyncHdr
from emulator.protocol.syncml.message import build_message, content_type, parse_message
from emulator.server.accounts import ServerAccount, load_accounts
from emulator.transport.http import HttpTransport

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "examples/accounts/libdmclient.toml"


@contextlib.contextmanager
def server_with_accounts(*extra: str):
    """`dm-emulator server --port 0 --accounts examples/accounts/libdmclient.toml`, run from the repo root."""
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "server", "--port", "0", "--accounts", EXAMPLE, *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline()]
        while not lines[-1].startswith("  admin API"):
            lines.append(proc.stdout.readline())
            assert lines[-1], "".join(lines) + proc.stderr.read()
        yield lines[0].split()[-1], lines
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def _libdmclient(url: str) -> Account:
    """libdmclient's ./DMAcc/test as the emulator's engine reads a DMAcc."""
    return Account(server_id="funambol", protocol="dm12", server_uri=url + "/dm12/funambol", name="funambol",
                   auth="basic", client_user="funambol", client_secret="funambol", server_user="funambol",
                   server_secret="srvpwd", server_nonce=b"")


async def _session(account: Account, *, wbxml: bool) -> tuple[object, SyncMLClient]:
    tree = VirtualDevice(find_profile("smartphone"), 0, server="http://127.0.0.1:9").tree
    engine = SyncMLClient(tree, account, dev_id="DMCtest", session_id="42", wbxml=wbxml)
    # libdmclient checks the server with its own scheme (toclient DIGEST) apart from its own (toserver
    # BASIC); the emulator's DMAcc reader keeps one scheme, so the engine is told here
    engine._server_scheme, engine._server_ok = "md5", False
    transport = HttpTransport(timeout=10)
    try:
        ctx = SessionContext(device_id="DMCtest", session_id="42", protocol="dm12", server="funambol",
                             bus=EventBus(), transport=transport)
        return await drive(engine, ctx, HeadlessUi()), engine
    finally:
        await transport.aclose()


def _package1(dev_id: str, cred: Cred | None, user: str = "funambol") -> bytes:
    header = SyncHdr(session_id="7", msg_id="1", target="http://x/dm12/funambol", source=dev_id, source_name=user,
                     cred=cred)
    return build_message(Message(header=header, commands=[Alert(cmd_id="1", code=codes.ALERT_CLIENT_INITIATED_MGMT)],
                                 final=True), wbxml=False)


def _post(url: str, body: bytes) -> Message:
    r = httpx.post(url, content=body, headers={"Content-Type": content_type(wbxml=False)}, timeout=10)
    assert r.status_code == 200, r.text
    return parse_message(r.content, r.headers["content-type"])


def test_the_readme_accounts_example_lets_a_third_party_client_run_whole_sessions():
    with server_with_accounts() as (url, lines):
        assert any("account: DMCtest as funambol (basic)" in line and "server funambol (md5)" in line
                   for line in lines), lines
        basic = Cred(type=codes.AUTH_BASIC, format="b64", data=auth.basic_credential("funambol", "funambol"))
        first = _post(url + "/dm12/funambol", _package1("DMCtest", basic))  # before any session: factory nonces
        done = [asyncio.run(_session(_libdmclient(url), wbxml=w)) for w in (False, True, False)]
        other_devid = _post(url + "/dm12/funambol", _package1("DMCother", basic))
        devid_as_user = _post(url + "/dm12/funambol", _package1(
            "DMCtest", Cred(type=codes.AUTH_BASIC, format="b64", data=auth.basic_credential("DMCtest", "funambol")),
            user="DMCtest"))
    for session, _engine in done:
        assert session.outcome == "completed", session
    status = next(c for c in first.commands if isinstance(c, Status) and c.cmd_ref == "0")
    assert status.code == 212
    # the server proves itself as libdmclient expects: md5, its own name and secret, the empty nonce
    assert first.header.cred is not None and first.header.cred.type == codes.AUTH_MD5
    assert auth.verify_md5(first.header.cred.data, "funambol", "srvpwd", b"")
    assert first.header.source_name == "funambol"
    for refused in (other_devid, devid_as_user):
        assert next(c for c in refused.commands if isinstance(c, Status) and c.cmd_ref == "0").code == 401


def test_an_account_added_through_the_admin_api_works_at_once(tmp_path):
    spec = {"server_id": "acme", "dev_id": "ACME-1", "client_user": "acme-user", "client_secret": "s3cret",
            "client_auth": "md5", "server_name": "acme-srv", "server_secret": "srv", "server_nonce": ""}
    with server_with_accounts("--admin-token", "t0ken") as (url, _):
        admin = {"Authorization": "Bearer t0ken"}
        refused = httpx.post(url + "/admin/accounts", json=spec, timeout=5)
        bad = httpx.post(url + "/admin/accounts", json={**spec, "client_auth": "rot13"}, headers=admin, timeout=5)
        added = httpx.post(url + "/admin/accounts", json=spec, headers=admin, timeout=5)
        listed = httpx.get(url + "/admin/accounts", headers=admin, timeout=5).json()
        account = Account(server_id="acme", protocol="dm12", server_uri=url + "/dm12/acme", auth="md5",
                          client_user="acme-user", client_secret="s3cret", server_user="acme-srv", server_secret="srv")
        tree = VirtualDevice(find_profile("smartphone"), 0, server=url).tree

        async def one():
            engine = SyncMLClient(tree, account, dev_id="ACME-1", session_id="9")
            transport = HttpTransport(timeout=10)
            try:
                ctx = SessionContext(device_id="ACME-1", session_id="9", protocol="dm12", server="acme",
                                     bus=EventBus(), transport=transport)
                return await drive(engine, ctx, HeadlessUi())
            finally:
                await transport.aclose()

        done = asyncio.run(one())
    assert refused.status_code == 401
    assert bad.status_code == 400 and "client_auth" in bad.text and "rot13" in bad.text
    assert added.status_code == 200
    assert {"dev_id": "ACME-1", "client_user": "acme-user", "server_name": "acme-srv", "server_auth": "md5"}.items() <= \
        next(a for a in listed["accounts"] if a["dev_id"] == "ACME-1").items()
    assert "s3cret" not in json.dumps(listed)
    assert done.outcome == "completed", done


@pytest.mark.parametrize(("text", "line", "reason"), [
    ('[[accounts]]\nserver_id = "a"\ndev_id = "d"\nclient_auth = "rot13"\nclient_secret = "x"\n', 4, "rot13"),
    ('[[accounts]]\nserver_id = "a"\ndev_id = "d"\nclient_secret = "x"\nserver_secret = "y"\ncolour = 1\n', 6,
     "unknown key 'colour'"),
    ('[[accounts]]\nserver_id = "a"\ndev_id = "d"\nclient_secret = "x"\nserver_secret = "y"\n'
     'server_nonce = "!!"\n', 6, "not base64"),
    ('[[accounts]]\nserver_id = "a"\ndev_id = "d"\nclient_auth = "hmac"\nclient_secret = "x"\nserver_secret = "y"\n'
     'server_auth = "md5"\n', 7, "both be hmac"),
    ('[[accounts]]\nserver_id = "a"\ndev_id = "d"\nclient_auth = "md5"\nserver_secret = "y"\n', 1, "client_secret"),
    ('[[accounts]]\nserver_id = "a"\ndev_id = ""\n', 3, "must not be empty"),
    ('[[accounts]]\nserver_id = "a"\ndev_id = "d"\nclient_auth = "none"\nserver_auth = "none"\n'
     '[[accounts]]\nserver_id = "a"\ndev_id = "d"\nclient_auth = "none"\nserver_auth = "none"\n', 8, "already"),
    ('[[accounts]]\nprotocol = "dm2"\nserver_id = "a"\ndev_id = "d"\nclient_secret = "x"\nserver_secret = "y"\n', 6,
     "DM 2.0 account"),
    ('[[accounts]\n', 1, "TOML syntax"),
    ('accounts = 3\n', 1, "array of tables"),
])
def test_a_bad_accounts_file_names_its_line_and_the_reason(tmp_path, text, line, reason):
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    with pytest.raises(FileFormatError) as err:
        load_accounts(path)
    assert err.value.line == line and reason in err.value.reason, str(err.value)


def test_the_server_command_stops_at_a_bad_accounts_file(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text('[[accounts]]\nserver_id = "a"\ndev_id = "d"\nclient_auth = "rot13"\n')
    proc = subprocess.run([sys.executable, "-m", "emulator", "server", "--port", "0", "--accounts", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and f"{path}:4:" in proc.stderr and "rot13" in proc.stderr, proc.stderr


def test_opaque_chr_data_from_a_wbxml_client_is_recorded_as_text():
    """libwbxml sends DevInfo values as OPAQUE: the server records `test model`, not `b'test model'`."""
    from emulator.protocol.syncml.commands import Item, Meta, Replace
    from emulator.server.app import start_server

    async def main():
        server = await start_server()
        server.control.add_accounts([ServerAccount("open", "IMEI:1", client_auth="none", server_auth="none")])
        try:
            header = SyncHdr(session_id="5", msg_id="1", target=server.url + "/dm12/open", source="IMEI:1")
            body = build_message(Message(header=header, final=True, commands=[
                Alert(cmd_id="1", code=codes.ALERT_CLIENT_INITIATED_MGMT),
                Replace(cmd_id="2", items=[Item(source="./DevInfo/Mod", meta=Meta(format="chr", type="text/plain"),
                                                data=b"test model")])]), wbxml=True)
            assert b"test model" in body
            async with httpx.AsyncClient() as http:
                r = await http.post(server.url + "/dm12/open", content=body,
                                    headers={"Content-Type": content_type(wbxml=True)})
            return r.status_code, server.state.dm12_sessions["IMEI:1"][-1].devinfo
        finally:
            await server.stop()

    status, devinfo = asyncio.run(main())
    assert status == 200
    assert devinfo["./DevInfo/Mod"] == "test model"


# The README's `server --accounts` and `curl` lines run as written (on a free port) in
# tests/integration/test_readme_faces.py::test_accounts_for_a_third_party_client.


def test_a_dm2_account_binds_its_devid_to_its_user():
    import base64

    from emulator.protocol.dm2 import media
    from emulator.protocol.dm2.messages import ALERT_CLIENT_INITIATED, Initiation, encode_initiation
    from emulator.protocol.dm2.messages import Alert as Alert2
    from emulator.server.app import start_server

    package1 = encode_initiation(Initiation([], [Alert2(ALERT_CLIENT_INITIATED)]))

    def headers(dev_id: str, user: str, secret: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        return {"Content-Type": media.INITIATION, media.HEADER_DEVID: dev_id, "Authorization": f"Basic {token}"}

    async def main():
        server = await start_server()
        server.control.add_accounts([ServerAccount("acme2", "ACME-2", "dm2", "their-user", "s", "basic")])
        try:
            async with httpx.AsyncClient() as http:
                url = server.url + "/dm2/acme2"
                own = await http.post(url, content=package1, headers=headers("ACME-2", "their-user", "s"))
                other = await http.post(url, content=package1, headers=headers("ACME-3", "their-user", "s"))
                devid = await http.post(url, content=package1, headers=headers("ACME-2", "ACME-2", "s"))
            return own.status_code, other.status_code, devid.status_code
        finally:
            await server.stop()

    assert asyncio.run(main()) == (200, 401, 401)
