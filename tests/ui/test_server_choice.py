"""Which server the window talks to: "No server" until the user chooses one (no guess from the last
demo's dead port), recent servers kept per protocol and only as the user chose them, and Test
connection saying plainly what answered (real loopback: a refused port, an HTTP error, a server that
answers, a TLS server whose certificate is not trusted)."""

from __future__ import annotations

import argparse
import socket

import pytest
from aiohttp import web

from emulator.util.certs import issue_cert, load_ca, make_ca
from ui.app import NO_SERVER, Desktop
from ui.server_dialog import ServerDialog
from ui.settings import recent_servers, remember_servers, settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_demo(arun, disposer):
    remember_servers("dm2", ["http://127.0.0.1:45999/dm2"])  # as an old window might have left it
    settings().setValue("servers/recent", ["http://127.0.0.1:41234"])  # the old mixed list, demo port
    d = Desktop(argparse.Namespace(workspace=None, no_demo=True, screenshot=None), stop_loop=False)
    arun(d.start())
    yield d
    disposer(d.window)
    arun(d.stop())


def test_no_demo_says_no_server_until_one_is_chosen(no_demo, qtbot):
    w, fleet = no_demo.window, no_demo.fleet
    assert fleet.server == ""
    assert NO_SERVER in w.server_label.text() and "no server" in w.windowTitle()
    # a device added now has no server: starting it says so and starts nothing
    w.fleet_panel.add_devices("smartphone", 1)
    phone = next(iter(fleet.devices))
    assert w.fleet_panel.start_sessions([phone]) == []
    assert "no server chosen" in w.statusBar().currentMessage()
    assert fleet.stats.sessions_started == 0 and fleet.stats.sessions_not_run == 0
    # the user chooses one: the window names it, new devices go there, it is remembered for DM 2.0 only
    w.fleet_panel.select(phone)
    dialog = ServerDialog(fleet, [phone], w)
    qtbot.addWidget(dialog)
    dialog.forms["dm2"].url.setCurrentText("http://dm.example.net:8443/dm2")
    dialog.forms["dm12"].setChecked(False)
    job = w.server_actions.apply(dialog.changes())
    qtbot.waitUntil(lambda: not job.running, timeout=3000)
    assert "http://dm.example.net:8443/dm2" in w.server_label.text()
    assert "no server" not in w.windowTitle()
    assert fleet.server == "http://dm.example.net:8443"
    assert recent_servers("dm2")[0] == "http://dm.example.net:8443/dm2"
    assert "http://dm.example.net:8443/dm2" not in recent_servers("dm12")
    assert settings().value("servers/recent") is None  # the old mixed list with demo ports is gone


def test_recent_lists_keep_only_chosen_servers_per_protocol(window, qtbot):
    window.server_actions.demo_url = "http://127.0.0.1:40404"
    window.save_settings()
    assert window.fleet.server not in recent_servers("dm12") + recent_servers("dm2")  # the window's own: no
    window.server_actions.chose({"dm12": "http://dm12.example.com/oma", "dm2": "https://dm2.example.com/dm2"})
    window.server_actions.chose({"dm2": "http://127.0.0.1:40404/dm2"})  # the demo server: not kept
    assert recent_servers("dm12")[0] == "http://dm12.example.com/oma"
    assert recent_servers("dm2")[0] == "https://dm2.example.com/dm2"
    assert not any("/dm2" in u for u in recent_servers("dm12"))
    assert "http://127.0.0.1:40404/dm2" not in recent_servers("dm2")
    dialog = ServerDialog(window.fleet, [], window)
    qtbot.addWidget(dialog)
    offered = {p: [f.url.itemText(i) for i in range(f.url.count())] for p, f in dialog.forms.items()}
    assert "https://dm2.example.com/dm2" in offered["dm2"] and "https://dm2.example.com/dm2" not in offered["dm12"]
    assert "http://dm12.example.com/oma" in offered["dm12"] and "http://dm12.example.com/oma" not in offered["dm2"]


@pytest.fixture
def servers(arun, tmp_path):
    """Real loopback servers: one answering 503, one with only POST routes (GET: 405), one over TLS
    with a certificate from a CA the client does not trust."""
    from emulator.server.tls import serve_tls_context

    async def busy(request):
        return web.Response(status=503, text="down for maintenance")

    async def dm(request):
        return web.Response(text="ok")

    ca = load_ca(make_ca(tmp_path / "ca", "Nobody's Root"))
    cert, key = issue_cert(ca, "dm.test", sans=["127.0.0.1"])
    runners, urls = [], {}

    async def start():
        for name, route, ssl_ctx in (("busy", ("GET", busy), None), ("dm", ("POST", dm), None),
                                     ("tls", ("POST", dm), serve_tls_context(cert, key))):
            app = web.Application()
            app.router.add_route(route[0], "/dm2", route[1])
            runner = web.AppRunner(app)
            await runner.setup()
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(8)
            sock.setblocking(False)
            await web.SockSite(runner, sock, ssl_context=ssl_ctx).start()
            runners.append(runner)
            scheme = "https" if ssl_ctx else "http"
            urls[name] = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}/dm2"

    arun(start())
    yield urls
    for runner in runners:
        arun(runner.cleanup())


def _test(dialog, qtbot, url):
    form = dialog.forms["dm2"]
    form.url.setCurrentText(url)
    task = dialog.start_test(form)
    if task is not None:
        qtbot.waitUntil(task.done, timeout=15_000)
        qtbot.waitUntil(form.test_button.isEnabled, timeout=2000)
    assert form.test_result.isVisibleTo(dialog)
    return form.test_result.text()


def test_test_connection_says_what_answered(window, servers, qtbot):
    dialog = ServerDialog(window.fleet, [], window)
    qtbot.addWidget(dialog)
    dialog.show()
    refused = _test(dialog, qtbot, f"http://127.0.0.1:{_closed_port()}/dm2")
    assert refused.startswith("✖") and "refused" in refused
    busy = _test(dialog, qtbot, servers["busy"])
    assert busy.startswith("✖") and "HTTP 503 Service Unavailable" in busy
    ok = _test(dialog, qtbot, servers["dm"])
    assert ok.startswith("✔ reachable") and "405" in ok
    tls = _test(dialog, qtbot, servers["tls"])
    assert tls.startswith("✖ TLS error") and "certificate" in tls.lower()
    bad = _test(dialog, qtbot, "ftp://example.com/x")
    assert bad.startswith("✖") and "not an http" in bad
