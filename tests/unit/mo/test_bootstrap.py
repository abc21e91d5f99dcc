"""DM 1.3 bootstrap on the device: the BootConfig MO, the document it takes in, the rights it gives."""

from __future__ import annotations

import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError
from emulator.mo import bootstrap
from emulator.server.authorities import SecretPair
from emulator.server.bootstrap import bootstrap_document


def _fresh() -> VirtualDevice:
    return VirtualDevice(find_profile("smartphone-dm13-fresh"), 0, server="http://127.0.0.1:8700")


def _snapshot(tree) -> list[tuple[str, object, str]]:
    return [(i.path, i.value, i.acl) for i in tree.walk(".")]


def test_factory_bootconfig_points_at_the_bootstrap_server_with_a_per_device_secret():
    dev = _fresh()
    entry = bootstrap.pending(dev.tree)
    assert entry is not None and entry.server_uri == "http://127.0.0.1:8700/bootstrap"
    assert entry.secret == f"factory-{dev.id}" and entry.state == "pending"
    assert dev.tree.exists("./DevDetail/Ext/DMFeatures/client-bootstrap")


@pytest.mark.parametrize(("url", "ok"), [("https://boot.example/bootstrap", True), ("http://127.0.0.1:1/b", True),
                                         ("http://localhost/b", True), ("http://boot.example/bootstrap", False),
                                         ("ftp://boot.example/", False)])
def test_bootstrap_needs_https_except_to_loopback(url, ok):
    assert (bootstrap.url_problem(url) == "") is ok


def test_a_document_beyond_one_account_is_refused_whole():
    dev = _fresh()
    entry = bootstrap.pending(dev.tree)
    doc = bootstrap_document("demo-dm12", "x", "http://127.0.0.1/dm12", dev.id, SecretPair("c", "s"))
    extra = doc.replace(b"</MgmtTree>", b"<Node><NodeName>Evil</NodeName><Path>.</Path><RTProperties>"
                                        b"<Format><chr/></Format><Type><MIME>text/plain</MIME></Type>"
                                        b"</RTProperties><Value>1</Value></Node></MgmtTree>")
    before = _snapshot(dev.tree)
    with pytest.raises(EmulatorError) as err:
        bootstrap.apply_bootstrap(dev.tree, entry, extra)
    assert err.value.status == 400 and _snapshot(dev.tree) == before
    assert bootstrap.apply_bootstrap(dev.tree, entry, doc, ["./DevDetail"]) == "demo-dm12"
    with pytest.raises(EmulatorError) as again:  # one account per ServerID
        bootstrap.apply_bootstrap(dev.tree, entry, doc)
    assert again.value.status == 418


# ---------------------------------------------------------------------------- bootstrap server discovery


def _uri_list(url: str, size: int) -> bytes:
    """A text/uri-list of exactly ``size`` bytes naming ``url`` (comment lines pad it)."""
    body = f"{url}\r\n".encode()
    pad = size - len(body)
    return (b"#" + b"c" * (pad - 3) + b"\r\n" + body) if pad else body


def test_discovery_takes_the_first_uri_of_a_uri_list_at_the_exact_limit():
    url = "https://bootstrap.example.net/bootstrap"
    assert bootstrap.discovered_uri(_uri_list(url, bootstrap.MAX_DISCOVERY)) == url
    assert bootstrap.discovered_uri(b"# the operator's\r\nhttp://127.0.0.1:8700/bootstrap\r\nhttps://other/\r\n") == \
        "http://127.0.0.1:8700/bootstrap"
    with pytest.raises(EmulatorError, match="exceeds the limit of 2048"):
        bootstrap.discovered_uri(_uri_list(url, bootstrap.MAX_DISCOVERY + 1))


@pytest.mark.parametrize("answer, why", [
    (b"", "names no bootstrap server"),
    (b"# only a comment\r\n\r\n", "names no bootstrap server"),
    (b"\xff\xfe", "not UTF-8"),
    (b"https://a.example/boot strap", "not one URI"),
    (b"http://203.0.113.9/bootstrap", "https://"),
    (b"ftp://bootstrap.example/", "https://"),
    (b"javascript:alert(1)", "https://"),
])
def test_a_bad_discovery_answer_is_refused(answer, why):
    with pytest.raises(EmulatorError, match=why):
        bootstrap.discovered_uri(answer)


def test_an_entry_with_no_server_is_pending_discovery():
    dev = _fresh()
    dev.tree.set_node("./BootConfig/1/ServerURI", "", access=frozenset({"Get"}))
    entry = bootstrap.pending(dev.tree)
    assert entry is not None and entry.server_uri == ""
