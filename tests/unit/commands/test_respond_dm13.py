"""`dm-emulator respond` vectors for DM 1.3 (assets/examples/dm13/): a 1.3 profile answers in DM/1.3
from its feature discovery node; a 1.2 profile refuses the DM/1.3 package whole, and answers the same
Get in DM/1.2 with 404 (it has no such node)."""

from __future__ import annotations

from pathlib import Path

from emulator.cli import main
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Results, Status
from emulator.protocol.syncml.message import parse_message

MESSAGE = Path(__file__).resolve().parents[3] / "assets" / "examples" / "dm13" / "discovery.xml"


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
