"""`dm-emulator respond` on the AOSP DM 1.2 server packages (shared/vectors/aosp-dm12).

Expected statuses are what a careful reader of the DM 1.2 text gets for a fresh smartphone device
that trusts the sending server (PROTOCOL.md 2.4-2.7), with the headless UI policy of
useralerts.default_answer (DR default if given, else yes / accept / first choice):

- Get of an existing leaf: 200 + Results with its value; Get of ./DevInfo/DevId returns the message's
  Target, which `respond` makes the device's identity.
- Add of a new node (implicit interior ancestors) 200; Delete of a node that does not exist 404.
- Exec on "." : the root exists but has no executable behaviour: 405 (not 404).
- UI alerts: DISPLAY 200; CONFIRM with DR=1 200 (yes); TEXT INPUT 200 + the DR text ('+' is a space in
  URL-encoded options); SINGLE CHOICE 200 + "2"; MULTIPLE CHOICE DR=1-3,6 -> choices 1, 3 and 6.
- Atomic [confirm with a malformed option string, Replace of ./DevDetail/Bearer/GSM]: no DR can be
  read ("MAXDT=15DR=1" is one option MAXDT), so the confirm is "yes" (200); the Replace targets a
  bearer this device does not have: 404; so the Atomic fails 507, the executed confirm is rolled
  back 216, the Replace keeps its 404, and the tree is unchanged.
- testreplace.wbxml is a client's Package 1 (Alert 1201 + Replace of DevInfo by Source only) sent to a
  device: 1201 is a client-to-server alert, unsupported here: 406; Replace items without Target are
  incomplete: 412 (one Status for the command, all items share the code).
- SyncHdr: 212 when the server sent Cred (the server is trusted), 200 when it did not.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from shared_vectors import AOSP_DM12 as VECTORS
from shared_vectors import needs_aosp_dm12

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Results, Status
from emulator.protocol.syncml.message import parse_message, walk

pytestmark = needs_aosp_dm12

# vector -> (SyncHdr status, [(Cmd, CmdRef, code, result items or None)])
EXPECTED: dict[str, tuple[int, list[tuple[str, str, int, list[str] | None]]]] = {
    "testget.wbxml": (212, [("Get", "4", 200, ["0"])]),
    "testadd.wbxml": (212, [("Add", "4", 200, None)]),
    "testdelete.wbxml": (212, [("Delete", "4", 404, None), ("Delete", "5", 404, None)]),
    "testreplace.wbxml": (212, [("Alert", "1", 406, None), ("Replace", "2", 412, None)]),
    "testgetscript.xml": (200, [("Get", "1", 200, ["SampleClient"])]),
    "testexecscript.xml": (200, [("Exec", "1", 405, None)]),
    "testexecscript2.xml": (200, [("Exec", "1", 405, None)]),
    "testalertdisplay.xml": (200, [("Alert", "1", 200, [])]),
    "testalertconfirm.xml": (200, [("Alert", "2", 200, [])]),
    "testalerttextinput.xml": (200, [("Alert", "1", 200, ["hello andy!"])]),
    "testalertsinglechoice.xml": (200, [("Alert", "1", 200, ["2"])]),
    "testalertmultiplechoice.xml": (200, [("Alert", "1", 200, ["1", "3", "6"])]),
    "testalertconfirmatomic.xml": (200, [("Atomic", "1", 507, None), ("Alert", "2", 216, None),
                                         ("Replace", "3", 404, None)]),
    "testnewdatatype.xml": (212, [
        ("Add", "1", 200, None), ("Add", "2", 200, None), ("Add", "3", 200, None), ("Add", "4", 200, None),
        ("Replace", "5", 200, None), ("Replace", "6", 200, None), ("Replace", "7", 200, None),
        ("Get", "8", 200, ["1.2345"]), ("Get", "9", 200, ["2005-345"]), ("Get", "10", 200, ["11:20:35+01:20"]),
        ("Delete", "11", 200, None), ("Delete", "12", 200, None), ("Delete", "13", 200, None),
        ("Delete", "14", 200, None),
    ]),
}


def _respond(name: str, *, wbxml: bool = False, profile: str = "smartphone"):
    from emulator.commands.respond import respond_dm12

    data = (VECTORS / name).read_bytes()
    media = codes.MEDIA_DM_WBXML if name.endswith(".wbxml") else codes.MEDIA_DM_XML
    device = VirtualDevice(find_profile(profile), 0, server="http://127.0.0.1")
    body, done = respond_dm12(device, data, media, wbxml=wbxml)
    assert body is not None, done
    reply = parse_message(body, codes.MEDIA_DM_WBXML if wbxml else codes.MEDIA_DM_XML)
    return parse_message(data, media), reply, device


def test_every_vector_has_an_expectation():
    assert sorted(p.name for p in VECTORS.iterdir() if p.suffix in (".xml", ".wbxml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vector_statuses(name: str):
    request, reply, _ = _respond(name)
    header_code, expected = EXPECTED[name]
    assert reply.final
    assert reply.header.session_id == request.header.session_id
    assert reply.header.source == request.header.target  # the device answers as the Target it was sent to
    first = reply.commands[0]
    assert isinstance(first, Status) and first.cmd == "SyncHdr" and first.cmd_ref == "0"
    assert first.code == header_code and first.msg_ref == request.header.msg_id
    statuses = [c for c in reply.commands[1:] if isinstance(c, Status)]
    # one Status per command of the server (statuses from the server need none)
    asked = [c for c in walk(request.commands) if not isinstance(c, Status | Results)]
    assert sorted(s.cmd_ref for s in statuses) == sorted(c.cmd_id for c in asked)
    got = {(s.cmd, s.cmd_ref): s for s in statuses}
    results = {r.cmd_ref: r for r in reply.commands if isinstance(r, Results)}
    for cmd, ref, code, items in expected:
        status = got[(cmd, ref)]
        assert status.code == code, (cmd, ref, status)
        if cmd == "Get" and items is not None:
            assert [i.data for i in results[ref].items] == items
        elif cmd == "Alert" and items is not None:
            assert [i.data for i in status.items] == items
    # CmdIDs of the reply are unique
    ids = [c.cmd_id for c in reply.commands]
    assert len(ids) == len(set(ids))


def _values(device: VirtualDevice) -> list[tuple[str, object]]:
    return [(i.path, i.value) for i in device.tree.walk(".")
            if not i.path.startswith("./DMAcc") and i.path != "./DevInfo/DevId"]


def test_rolled_back_atomic_leaves_the_tree_unchanged():
    from emulator.commands.respond import respond_dm12

    device = VirtualDevice(find_profile("smartphone"), 0, server="http://127.0.0.1")
    before = _values(device)
    body, _ = respond_dm12(device, (VECTORS / "testalertconfirmatomic.xml").read_bytes(), codes.MEDIA_DM_XML)
    assert body is not None
    assert _values(device) == before
    assert not device.tree.exists("./DevDetail/Bearer/GSM")


def test_newdatatype_leaves_nothing_behind_but_the_implicit_parent():
    _, _, device = _respond("testnewdatatype.xml")
    assert device.tree.exists("./Test") and not device.tree.exists("./Test/MyApp")


def test_wbxml_answer_round_trips():
    _, reply, _ = _respond("testget.wbxml", wbxml=True)
    results = [c for c in reply.commands if isinstance(c, Results)]
    assert [i.data for i in results[0].items] == ["0"]


def test_command_line_prints_xml_and_fails_cleanly_on_bad_xml(tmp_path):
    out = subprocess.run([sys.executable, "-m", "emulator", "respond", "--profile", "smartphone",
                          "--message", str(VECTORS / "testgetscript.xml")], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    reply = parse_message(out.stdout, codes.MEDIA_DM_XML)
    assert any(isinstance(c, Results) and c.items[0].data == "SampleClient" for c in reply.commands)
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<SyncML><SyncHdr>")
    out = subprocess.run([sys.executable, "-m", "emulator", "respond", "--profile", "smartphone",
                          "--message", str(bad)], capture_output=True, timeout=60)
    assert out.returncode == 1 and b"malformed XML" in out.stderr and not out.stdout
