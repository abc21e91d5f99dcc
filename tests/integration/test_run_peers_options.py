"""`run` against outside servers: --server-auth, --strict, the scenario keys that set them, and
latency left out when no session completed."""

from __future__ import annotations

import asyncio
import json
import textwrap
import threading

import pytest
from outside_dm12 import OutsideDm12, Quirks, serve

from emulator.cli import main
from emulator.errors import FileFormatError
from emulator.scenarios.model import load_scenario


@pytest.fixture
def outside():
    """An outside DM 1.2 server (no DM-layer credentials, reused CmdIDs) on its own loop and thread."""
    server = OutsideDm12(Quirks(reuse_cmd_ids=True))
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        box["runner"], box["url"] = loop.run_until_complete(serve(server))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    yield box["url"]
    asyncio.run_coroutine_threadsafe(box["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_server_auth_none_completes_with_warnings_and_strict_fails(outside, tmp_path, capsys):
    report = tmp_path / "r.json"
    args = ["run", "--server", outside, "--profile", "smartphone", "--protocol", "dm12", "--report", str(report)]
    assert main(args) == 1  # default policy dm: the server sends no credentials
    assert "--server-auth" in capsys.readouterr().err
    assert main([*args, "--server-auth", "none"]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "CmdID reused" in err
    assert "server authentication is OFF" in err  # said once for the run, like TLS verification off
    assert json.loads(report.read_text())["sessions_with_warnings"] == 1
    assert main([*args, "--server-auth", "none", "--strict"]) == 1
    assert "strict mode" in capsys.readouterr().err


def test_scenario_group_sets_server_auth_and_strict(outside, tmp_path, capsys):
    scenario = tmp_path / "s.toml"
    scenario.write_text(textwrap.dedent("""
        [[devices]]
        profile = "smartphone"
        protocol = "dm12"
        server_auth = "none"
        strict = true
    """))
    assert main(["run", "--server", outside, "--scenario", str(scenario)]) == 1
    assert "strict mode" in capsys.readouterr().err


@pytest.mark.parametrize(("line", "words"), [
    ('server_auth = "tls"', "is not one of dm, transport, none"),
    ('server = "nobody"', "has no dm12 account 'nobody'"),
    ("strict = 1", "expected bool"),
])
def test_scenario_group_mistakes_name_file_and_line(tmp_path, line, words):
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'[[devices]]\nprofile = "smartphone"\nprotocol = "dm12"\n{line}\n')
    with pytest.raises(FileFormatError) as err:
        load_scenario(scenario)
    assert words in str(err.value) and f"{scenario}:4" in str(err.value)


def test_server_auth_on_a_dm2_group_is_refused(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text('[[devices]]\nprofile = "smartphone"\nprotocol = "dm2"\nserver_auth = "none"\n')
    with pytest.raises(FileFormatError, match="apply to dm12 groups"):
        load_scenario(scenario)


def test_no_latency_when_no_session_completed(tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["run", "--server", "http://127.0.0.1:9", "--profile", "nbiot-sensor", "--report", str(report)]) == 1
    data = json.loads(report.read_text())
    assert data["sessions_failed"] == 1
    assert not any(key.startswith("latency") for key in data)
    assert "no session completed: no rate, no latency" in capsys.readouterr().out
