"""The safe XML parser is reused per thread and encoding: what one document did to it must not
reach the next (a refused, malformed or foreign-encoded document, another thread's parse)."""

from __future__ import annotations

import threading

import pytest

from emulator.errors import DecodeError
from emulator.util import xmlsafe

GOOD = b"<SyncML><SyncHdr><MsgID>1</MsgID></SyncHdr></SyncML>"


def test_a_malformed_or_refused_document_leaves_the_parser_as_it_was():
    for bad in (b"<SyncML><SyncHdr>", b"", b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', b"<x>&undeclared;</x>"):
        with pytest.raises(DecodeError):
            xmlsafe.parse(bad)
        root = xmlsafe.parse(GOOD)
        assert root.tag == "SyncML" and root.findtext("SyncHdr/MsgID") == "1"


def test_a_repaired_ampersand_does_not_stay_repaired():
    assert xmlsafe.parse(b"<a>x & y</a>", repair_ampersands=True).text == "x & y"
    with pytest.raises(DecodeError):
        xmlsafe.parse(b"<a>x & y</a>")  # the strict parse still fails without the repair


def test_each_encoding_has_its_own_parser_and_one_thread_does_not_see_anothers():
    latin = "<a>caf\u00e9</a>".encode("latin-1")
    assert xmlsafe.parse(latin, encoding="iso-8859-1").text == "caf\u00e9"
    assert xmlsafe.parse("<a>caf\u00e9</a>".encode()).text == "caf\u00e9"  # utf-8 again, not latin-1
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(xmlsafe.parser()))
    worker.start()
    worker.join()
    assert seen and seen[0] is not xmlsafe.parser() and xmlsafe.parser() is xmlsafe.parser()


def test_an_unknown_charset_is_refused_each_time():
    for _ in range(2):
        with pytest.raises(Exception, match="unknown charset"):
            xmlsafe.parse(GOOD, encoding="no-such-charset")
