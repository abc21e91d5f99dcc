"""The web view dock as the window's UiHandler, against a real local HTTP server."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
from aiohttp import web
from PySide6.QtWidgets import QDialogButtonBox

from emulator.fleet.drive import run
from emulator.protocol.actions import AskUser, OpenBrowser
from ui.webview import AlertDialog

PAGE = """<!doctype html><html><body><h1>Confirm update</h1>
<form method="post" action="/ui/submit"><input name="pin"><button>OK</button></form>
<a id="away" href="http://127.0.0.2:9/elsewhere">elsewhere</a></body></html>"""


@pytest.fixture
def site(arun):
    got: list[dict] = []

    async def page(request):
        return web.Response(text=PAGE, content_type="text/html")

    async def submit(request):
        got.append(dict(await request.post()))
        raise web.HTTPFound("/ui/done")

    async def done(request):
        return web.Response(text="<p>Thank you</p>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/ui/page", page)
    app.router.add_post("/ui/submit", submit)
    app.router.add_get("/ui/done", done)
    runner = web.AppRunner(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)

    async def start():
        await runner.setup()
        await web.SockSite(runner, sock).start()

    arun(start())
    yield SimpleNamespace(url=f"http://127.0.0.1:{sock.getsockname()[1]}", got=got)
    arun(runner.cleanup())


CTX = SimpleNamespace(device_id="IMEI:1", server="demo-dm2", session_id="s1")


def test_form_submitted_in_the_page_ends_the_flow(window, site, qloop, qtbot):
    dock = window.web_dock
    task = qloop.create_task(run(window.ui_handler.browse(CTX, OpenBrowser("r1", site.url + "/ui/page")), CTX))
    qtbot.waitUntil(lambda: dock.loaded_url.endswith("/ui/page"), timeout=10_000)
    assert dock.isVisible()
    assert "IMEI:1" in dock.header.text() and "demo-dm2" in dock.header.text()
    dock.page.runJavaScript("document.forms[0].pin.value = '4711'; document.forms[0].submit();")
    qtbot.waitUntil(task.done, timeout=10_000)
    assert task.result().outcome == "ok"
    assert site.got == [{"pin": "4711"}]


def test_closing_the_dock_cancels_and_other_origins_are_blocked(window, site, qloop, qtbot):
    dock = window.web_dock
    task = qloop.create_task(run(window.ui_handler.browse(CTX, OpenBrowser("r2", site.url + "/ui/page")), CTX))
    qtbot.waitUntil(lambda: dock.loaded_url.endswith("/ui/page"), timeout=10_000)
    dock.page.runJavaScript("document.getElementById('away').click();")
    qtbot.waitUntil(lambda: not dock.notice.isHidden(), timeout=5000)
    assert "127.0.0.2" in dock.notice.text()
    assert dock.view.url().toString().endswith("/ui/page")  # still on the server's page
    assert not task.done()
    dock.close()
    qtbot.waitUntil(task.done, timeout=2000)
    assert task.result().outcome == "cancelled"


def test_single_choice_alert_answers_the_chosen_number(window, qloop, qtbot):
    action = AskUser("a1", "single", "Pick a colour", choices=("red", "green", "blue"))
    task = qloop.create_task(run(window.ui_handler.ask(CTX, action), CTX))
    qtbot.waitUntil(lambda: any(isinstance(w, AlertDialog) and w.isVisible() for w in window.findChildren(AlertDialog)))
    dialog = next(w for w in window.findChildren(AlertDialog) if w.isVisible())
    dialog.choices.setCurrentRow(2)
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(task.done, timeout=2000)
    answer = task.result()
    assert (answer.outcome, answer.selected) == ("ok", (3,))


def test_confirm_alert_no_and_text_alert(window, qloop, qtbot):
    confirm = qloop.create_task(run(window.ui_handler.ask(CTX, AskUser("a2", "confirm", "Reboot now?")), CTX))
    qtbot.waitUntil(lambda: any(w.isVisible() for w in window.findChildren(AlertDialog)))
    dialog = next(w for w in window.findChildren(AlertDialog) if w.isVisible())
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.No).click()
    qtbot.waitUntil(confirm.done, timeout=2000)
    assert confirm.result().outcome == "no"
    text = qloop.create_task(run(window.ui_handler.ask(CTX, AskUser("a3", "text", "Name?", options={"DR": "bob"})), CTX))
    qtbot.waitUntil(lambda: any(w.isVisible() and w.line for w in window.findChildren(AlertDialog)))
    dialog = next(w for w in window.findChildren(AlertDialog) if w.isVisible() and w.line)
    dialog.line.setText("alice")
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(text.done, timeout=2000)
    assert (text.result().outcome, text.result().text) == ("ok", "alice")
