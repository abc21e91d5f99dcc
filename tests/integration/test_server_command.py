"""`dm-emulator server` as a user runs it: prints its URL, serves the pages, stops cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx


def test_server_command_prints_its_url_serves_and_stops_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "server", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("reference DM server on http://127.0.0.1:"), first
        url = first.split()[-1]
        home = httpx.get(url + "/", timeout=5)
        page = httpx.get(url + "/ui/", timeout=5)
        css = httpx.get(url + "/ui/static/style.css", timeout=5)
        assert home.status_code == 200 and "/dm2" in home.text
        assert page.status_code == 200 and "/ui/wifi" in page.text
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped" in err
