"""Account keys for outside servers: server_auth (DM 1.x), ui_resume and auth = "digest" (DM 2.0),
read into the tree and back, and refused where they do not apply, with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.device.profile import load_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import FileFormatError

SHIPPED = Path(__file__).resolve().parents[3] / "profiles" / "smartphone.toml"
DM12_KEY = 'auth = "md5"'
DM2_KEY = 'auth = "basic"'


def _profile(tmp_path, old: str, new: str) -> Path:
    text = SHIPPED.read_text()
    assert old in text
    path = tmp_path / "phone.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_keys_reach_the_accounts(tmp_path):
    path = _profile(tmp_path, DM12_KEY, DM12_KEY + '\nserver_auth = "transport"')
    path.write_text(path.read_text().replace(DM2_KEY, 'auth = "digest"\nui_resume = "client"', 1))
    dev = VirtualDevice(load_profile(path), 0, server="http://dm.test")
    assert dev.account(protocol="dm12").server_auth == "transport"
    dm2 = dev.account(protocol="dm2")
    assert (dm2.auth, dm2.ui_resume) == ("digest", "client")
    shipped = VirtualDevice(load_profile(SHIPPED), 0, server="http://dm.test")
    assert shipped.account(protocol="dm12").server_auth == "dm" and shipped.account(protocol="dm2").ui_resume == "held"


@pytest.mark.parametrize(("old", "new", "words"), [
    (DM12_KEY, DM12_KEY + '\nserver_auth = "tls"', "is not one of dm, transport, none"),
    (DM2_KEY, DM2_KEY + '\nserver_auth = "none"', "server_auth applies to dm12 accounts"),
    (DM12_KEY, DM12_KEY + '\nui_resume = "client"', "ui_resume applies to dm2 accounts"),
    (DM12_KEY, 'auth = "digest"', "dm12 accounts take auth basic, md5, hmac, none"),
    (DM2_KEY, 'auth = "hmac"', "dm2 accounts take auth basic, digest, none"),
])
def test_misplaced_keys_name_file_and_line(tmp_path, old, new, words):
    path = _profile(tmp_path, old, new)
    with pytest.raises(FileFormatError) as err:
        load_profile(path)
    assert words in str(err.value) and str(path) + ":" in str(err.value)


def test_strict_account_key_reaches_the_engine(tmp_path):
    from emulator.protocol.syncml.client import SyncMLClient

    path = _profile(tmp_path, DM12_KEY, DM12_KEY + "\nstrict = true")
    dev = VirtualDevice(load_profile(path), 0, server="http://dm.test")
    account = dev.account(protocol="dm12")
    assert account.strict
    assert SyncMLClient(dev.tree, account, dev_id=dev.id, session_id="1").strict
    with pytest.raises(FileFormatError, match="strict applies to dm12 accounts"):
        load_profile(_profile(tmp_path, DM2_KEY, DM2_KEY + "\nstrict = true"))
