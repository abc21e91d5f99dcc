"""`dm-emulator respond` on the project's own example server messages (assets/examples/).

The expectations are the table of assets/examples/README.md: what a fresh smartphone answers to
each package. The DM 1.2 examples are answered the same in XML and in their WBXML twins, which are
the project's own encoding of the XML (checked by scripts/example_wbxml.py --check).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Results, Status
from emulator.protocol.syncml.message import parse_message

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "assets" / "examples"

# DM 1.2: file stem -> [(Cmd, CmdRef, code, Results data or Alert items or None)], after SyncHdr 200
DM12: dict[str, list[tuple[str, str, int, list[str] | None]]] = {
    "get": [("Get", "1", 200, ["Nordwave", "NW-X5 Pro", "IMEI:354679100000002", "X5P-BL-2.14.07"]),
            ("Get", "2", 404, None)],
    "replace": [("Replace", "1", 200, None), ("Replace", "1", 405, None), ("Add", "2", 200, None),
                ("Get", "3", 200, ["Example DM server", "en-US", "hello from the example server"])],
    "exec": [("Exec", "1", 200, None), ("Exec", "2", 405, None)],
    "alerts": [("Alert", "1", 200, None), ("Alert", "2", 304, None), ("Alert", "3", 200, ["2"])],
}
# DM 2.0: file stem -> the Package#3 status codes, in order (None: no Package#3)
DM2: dict[str, list[int] | None] = {
    "get": [200, 200, 404],
    "hget-replace": [500, 405, 200],
    "exec": [403, 405, 404],
    "show": [200, 200],
    "end": None,
}


def test_every_example_has_an_expectation_and_a_wbxml_twin():
    assert sorted(p.stem for p in (EXAMPLES / "dm12").glob("*.xml")) == sorted(DM12)
    assert sorted(p.stem for p in (EXAMPLES / "dm12").glob("*.wbxml")) == sorted(DM12)
    assert sorted(p.stem for p in (EXAMPLES / "dm2").glob("*.json")) == sorted(DM2)
    readme = (EXAMPLES / "README.md").read_text()
    for stem in DM12:
        assert f"`dm12/{stem}.xml`" in readme
    for stem in DM2:
        assert f"`dm2/{stem}.json`" in readme


def test_wbxml_twins_are_our_encoding_of_the_xml():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "example_wbxml.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def _respond(capsysbinary, *args: str) -> tuple[int, bytes, str]:
    code = main(["respond", "--profile", "smartphone", *args])
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err.decode()


@pytest.mark.parametrize("stem", sorted(DM12))
@pytest.mark.parametrize(("suffix", "wbxml_out"), [(".xml", False), (".wbxml", False), (".xml", True)])
def test_dm12_example(capsysbinary, stem: str, suffix: str, wbxml_out: bool):
    message = EXAMPLES / "dm12" / f"{stem}{suffix}"
    code, out, err = _respond(capsysbinary, "--message", str(message), *(["--wbxml"] if wbxml_out else []))
    assert code == 0, err
    reply = parse_message(out, codes.MEDIA_DM_WBXML if wbxml_out else codes.MEDIA_DM_XML)
    head, *rest = reply.commands
    assert isinstance(head, Status) and (head.cmd, head.code) == ("SyncHdr", 200)
    statuses = [s for s in rest if isinstance(s, Status)]
    assert [(s.cmd, s.cmd_ref, s.code) for s in statuses] == [(c, r, code) for c, r, code, _ in DM12[stem]]
    results = {r.cmd_ref: [i.data for i in r.items] for r in rest if isinstance(r, Results)}
    for (cmd, ref, _, items), status in zip(DM12[stem], statuses, strict=True):
        if items is not None:
            assert (results[ref] if cmd == "Get" else [i.data for i in status.items]) == items


@pytest.mark.parametrize("stem", sorted(DM2))
def test_dm2_example(capsysbinary, stem: str):
    code, out, err = _respond(capsysbinary, "--message", str(EXAMPLES / "dm2" / f"{stem}.json"))
    assert code == 0, err
    if DM2[stem] is None:
        assert out == b"" and "nothing to answer" in err
        return
    statuses = json.loads(out)["Status"]
    assert [s["sc"] for s in statuses] == DM2[stem]
    failed = [sc for sc in DM2[stem] if sc >= 400]
    assert err.count("note:") >= len(failed)  # every refusal says why on stderr


def test_dm2_get_returns_the_profile_values(capsysbinary):
    _, out, _ = _respond(capsysbinary, "--message", str(EXAMPLES / "dm2" / "get.json"))
    first = json.loads(out)["Status"][0]
    assert first["MOS"][0]["MOData"] == {"FwV": "X5P-BL-2.14.07"}


def test_dm2_package_as_a_user_runs_it():
    """The crash users saw (`respond() missing 1 required positional argument`), as a subprocess."""
    out = subprocess.run([sys.executable, "-m", "emulator", "respond", "--profile", "smartphone", "--message",
                          str(EXAMPLES / "dm2" / "show.json")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"Status": [{"sc": 200}, {"sc": 200}]}
    assert "SHOW http://127.0.0.1:8700/ui/wifi: not opened" in out.stderr


def test_dm2_package_to_a_profile_without_dm2(capsysbinary):
    code = main(["respond", "--profile", "nbiot-sensor", "--message", str(EXAMPLES / "dm2" / "get.json")])
    captured = capsysbinary.readouterr()
    assert code == 1 and captured.out == b""
    assert b"does not speak DM 2.0" in captured.err


def test_dm2_package_that_is_not_json(tmp_path, capsysbinary):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"CMD": [["GET"')
    code = main(["respond", "--profile", "smartphone", "--message", str(bad)])
    captured = capsysbinary.readouterr()
    assert code == 1 and captured.out == b""
    assert f"respond: {bad}: unreadable Package#2: Package#2: invalid JSON".encode() in captured.err
