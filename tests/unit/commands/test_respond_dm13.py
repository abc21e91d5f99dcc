"""`dm-emulator respond` vectors for DM 1.3 (assets/examples/dm13/): a 1.3 profile answers in DM/1.3
from its feature discovery node, through virtual (MOID-based) URIs and by placing what is added to
./Inbox; a 1.2 profile refuses a DM/1.3 package whole, and answers the same commands in DM/1.2 as a
DM 1.2 device always did (404 for a node it has not, virtual URIs read as tree paths, the Inbox keeps
what it is given). A sessionless command message is run by a 1.3 profile (its report printed)
and refused by a 1.2 one; a tampered one by both."""

from __future__ import annotations

from pathlib import Path

from emulator.cli import main
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Results, Status
from emulator.protocol.syncml.message import parse_message

VECTORS = Path(__file__).resolve().parents[3] / "assets" / "examples" / "dm13"
MESSAGE = VECTORS / "discovery.xml"
SESSIONLESS = VECTORS / "sessionless.bin"


def _respond(capsysbinary, profile: str, message: Path):
    code = main(["respond", "--profile", profile, "--message", str(message)])
    out = capsysbinary.readouterr().out
    assert code == 0
    reply = parse_message(out, codes.MEDIA_DM_XML)
    statuses = [(c.cmd, c.cmd_ref, c.code) for c in reply.commands if isinstance(c, Status)]
    results = {c.cmd_ref: c for c in reply.commands if isinstance(c, Results)}
    return reply, statuses, results


def test_dm13_profile_answers_feature_discovery_in_dm13(capsysbinary):
    reply, statuses, results = _respond(capsysbinary, "smartphone-dm13", MESSAGE)
    assert reply.header.ver_proto == "DM/1.3"
    assert statuses == [("SyncHdr", "0", 200), ("Get", "1", 200), ("Get", "2", 200)]
    listed = [i.source for i in results["1"].items]
    assert listed == ["./DevDetail/Ext/DMFeatures", "./DevDetail/Ext/DMFeatures/sha256-auth",
                      "./DevDetail/Ext/DMFeatures/session-bearer", "./DevDetail/Ext/DMFeatures/feature-discovery"]
    assert results["2"].items[0].data == "1.3"


def test_dm12_profile_refuses_the_dm13_package_whole(capsysbinary):
    reply, statuses, results = _respond(capsysbinary, "smartphone", MESSAGE)
    assert reply.header.ver_proto == "DM/1.2"
    assert statuses == [("SyncHdr", "0", 513), ("Get", "1", 215), ("Get", "2", 215)]
    assert not results


def test_dm12_profile_answers_the_discovery_get_in_dm12_with_404(capsysbinary, tmp_path):
    as12 = tmp_path / "discovery-dm12.xml"
    as12.write_text(MESSAGE.read_text().replace("DM/1.3", "DM/1.2"))
    _, statuses, results = _respond(capsysbinary, "smartphone", as12)
    assert statuses == [("SyncHdr", "0", 200), ("Get", "1", 404), ("Get", "2", 200)]
    assert results["2"].items[0].data == "1.2"


def _as_dm12(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text((VECTORS / name).read_text().replace("DM/1.3", "DM/1.2"))
    return path


def test_dm13_profile_answers_virtual_uris_with_the_nodes_they_name(capsysbinary):
    reply, statuses, results = _respond(capsysbinary, "smartphone-dm13", VECTORS / "virtual-uri.xml")
    assert reply.header.ver_proto == "DM/1.3"
    assert statuses == [("SyncHdr", "0", 200), ("Get", "1", 200), ("Get", "2", 200), ("Get", "3", 200),
                        ("Replace", "4", 200), ("Get", "5", 400), ("Get", "6", 404)]
    assert [i.source for i in results["1"].items] == ["./DMAcc/demo-dm12/Name"]
    assert [(i.source, i.data) for i in results["2"].items] == [("./FwUpdate/fw/State", "10")]
    assert [i.source for i in results["3"].items][:2] == ["./DevDetail/Ext/DMFeatures",
                                                          "./DevDetail/Ext/DMFeatures/sha256-auth"]


def test_dm12_profile_reads_the_same_uris_as_tree_paths(capsysbinary, tmp_path):
    _, statuses, results = _respond(capsysbinary, "smartphone", _as_dm12(tmp_path, "virtual-uri.xml"))
    # nv is no DM 1.2 query field (406), the others name no node (404) or have an empty segment (400)
    assert statuses == [("SyncHdr", "0", 200), ("Get", "1", 406), ("Get", "2", 404), ("Get", "3", 400),
                        ("Replace", "4", 404), ("Get", "5", 400), ("Get", "6", 404)]
    assert not results


def test_dm13_profile_places_what_the_inbox_is_given(capsysbinary):
    _, statuses, results = _respond(capsysbinary, "smartphone-dm13", VECTORS / "inbox.xml")
    # a FUMO instance placed beside ./FwUpdate/fw and read back by its MOID; an account the DMAcc ACL
    # does not let this server add (425); an MO the device does not keep (406); malformed TNDS (400)
    assert statuses == [("SyncHdr", "0", 200), ("Add", "1", 200), ("Get", "2", 200), ("Add", "3", 425),
                        ("Add", "4", 406), ("Add", "5", 400)]
    assert [(i.source, i.data) for i in results["2"].items] == [("./FwUpdate/modem/PkgName", "modem-fw")]


def test_dm12_profile_keeps_what_the_inbox_is_given(capsysbinary, tmp_path):
    _, statuses, results = _respond(capsysbinary, "smartphone", _as_dm12(tmp_path, "inbox.xml"))
    assert statuses == [("SyncHdr", "0", 200), ("Add", "1", 200), ("Get", "2", 404), ("Add", "3", 200),
                        ("Add", "4", 200), ("Add", "5", 400)]
    assert not results


# ---------------------------------------------------------------------------- server-initiated bootstrap

BOOTSTRAP = VECTORS / "bootstrap.wbxml"
BOOTSTRAP_TYPE = (VECTORS / "bootstrap.content-type").read_text().strip()


def _bootstrap(capsysbinary, profile: str, message: Path, ctype: str = BOOTSTRAP_TYPE, *extra: str):
    code = main(["respond", "--profile", profile, "--message", str(message), "--content-type", ctype, *extra])
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err.decode()


def test_a_fresh_dm13_device_takes_the_pushed_bootstrap_and_opens_its_first_session(capsysbinary):
    from emulator.protocol.syncml.commands import Alert, Replace

    code, out, err = _bootstrap(capsysbinary, "smartphone-dm13-fresh", BOOTSTRAP)
    assert code == 0 and "bootstrap taken: new DM server 'demo-dm12'" in err
    package1 = parse_message(out, codes.MEDIA_DM_XML)
    assert package1.header.ver_proto == "DM/1.3" and package1.header.target == "http://127.0.0.1:8700/dm12"
    assert package1.header.cred is not None and package1.header.cred.type == "syncml:auth-SHA256"
    alert, replace = package1.commands
    assert isinstance(alert, Alert) and alert.code == 1201 and isinstance(replace, Replace)
    code, out, _ = _bootstrap(capsysbinary, "smartphone-dm13-fresh", BOOTSTRAP, BOOTSTRAP_TYPE, "--wbxml")
    assert code == 0 and parse_message(out, codes.MEDIA_DM_WBXML).header.ver_proto == "DM/1.3"


def test_a_device_that_is_not_fresh_or_speaks_dm12_refuses_the_bootstrap(capsysbinary):
    code, out, err = _bootstrap(capsysbinary, "smartphone-dm13", BOOTSTRAP)
    assert (code, out) == (1, b"") and "not factory-fresh" in err
    code, out, err = _bootstrap(capsysbinary, "smartphone", BOOTSTRAP)
    assert (code, out) == (1, b"") and "DM 1.2 device" in err


def test_a_tampered_bootstrap_or_a_wrong_mac_is_refused(capsysbinary, tmp_path):
    tampered = tmp_path / "bootstrap.wbxml"
    data = bytearray(BOOTSTRAP.read_bytes())
    data[-20] ^= 0x01
    tampered.write_bytes(bytes(data))
    code, out, err = _bootstrap(capsysbinary, "smartphone-dm13-fresh", tampered)
    assert (code, out) == (1, b"") and "does not verify" in err
    wrong = BOOTSTRAP_TYPE[:-1] + ("0" if BOOTSTRAP_TYPE[-1] != "0" else "1")
    code, out, err = _bootstrap(capsysbinary, "smartphone-dm13-fresh", BOOTSTRAP, wrong)
    assert (code, out) == (1, b"") and "does not verify" in err


def test_dm13_profile_runs_a_sessionless_command_message_and_prints_its_report(capsysbinary):
    code = main(["respond", "--profile", "smartphone-dm13", "--message", str(SESSIONLESS)])
    captured = capsysbinary.readouterr()
    assert code == 0
    report = parse_message(captured.out, codes.MEDIA_DM_XML)
    assert report.header.ver_proto == "DM/1.3" and report.header.session_id == "5E55"
    assert report.header.source == "IMEI:354679130000007"
    statuses = [(c.cmd, c.cmd_ref, c.code) for c in report.commands if isinstance(c, Status)]
    assert statuses == [("SyncHdr", "0", 200), ("Get", "1", 200), ("Replace", "2", 405)]
    (results,) = [c for c in report.commands if isinstance(c, Results)]
    assert results.items[0].data == "X6-BL-3.01.02"
    assert b"/dm13/report/demo-dm12" in captured.err


def test_dm12_profile_refuses_the_sessionless_message(capsysbinary):
    code = main(["respond", "--profile", "smartphone", "--message", str(SESSIONLESS)])
    captured = capsysbinary.readouterr()
    assert code == 1 and captured.out == b""
    assert b"DM 1.2 device takes no sessionless command message" in captured.err


def test_a_tampered_sessionless_message_runs_nothing(capsysbinary, tmp_path):
    raw = bytearray(SESSIONLESS.read_bytes())
    raw[raw.index(b"./DevDetail/FwV") + 2] ^= 0x20  # one letter of the body changed after signing
    tampered = tmp_path / "tampered.bin"
    tampered.write_bytes(bytes(raw))
    code = main(["respond", "--profile", "smartphone-dm13", "--message", str(tampered)])
    captured = capsysbinary.readouterr()
    assert code == 1 and captured.out == b""
    assert b"does not verify" in captured.err
