"""configure_account: pointing a device's DMAcc at another server, as the device itself."""

from __future__ import annotations

import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError, UnsupportedError
from emulator.mo.accounts import configure_account, find_account, read_accounts
from emulator.transport.http import TlsConfig
from emulator.tree.acl import Acl


@pytest.fixture
def phone() -> VirtualDevice:
    return VirtualDevice(find_profile("smartphone"), 0, server="http://127.0.0.1:9")


def test_dm12_account_takes_url_credentials_and_scheme(phone):
    tree = phone.tree
    changes = []
    tree.subscribe(changes.append)
    acc = phone.account("demo-dm12")
    new = configure_account(tree, acc, server_uri="https://dm.example.com/oma", auth="hmac",
                            client_user="alice", client_secret="s3cret", server_secret="srv")
    assert (new.server_uri, new.auth, new.client_user, new.client_secret, new.server_secret) == (
        "https://dm.example.com/oma", "hmac", "alice", "s3cret", "srv")
    base = acc.path
    # the DM 1.2 DMAcc layout (OMA-TS-DM_StdObj 1.2): AppAddr/<x>/Addr, AppAuth/<x>/AAuthType
    assert tree.value(f"{base}/AppAddr/1/Addr") == "https://dm.example.com/oma"
    assert tree.value(f"{base}/AppAddr/1/AddrType") == "URI"
    assert tree.value(f"{base}/AAuthPref") == "HMAC"
    assert tree.value(f"{base}/AppAuth/CLCRED/AAuthType") == "HMAC"
    assert tree.info(f"{base}/AppAuth/CLCRED/AAuthName").format == "chr"
    assert {c.path for c in changes} >= {f"{base}/AppAddr/1/Addr", f"{base}/AppAuth/CLCRED/AAuthSecret"}
    assert all(c.by is None for c in changes)  # the device itself
    # what was not given stays as it was
    assert new.server_id == acc.server_id and new.client_nonce == acc.client_nonce


def test_new_server_id_takes_over_the_old_ones_grants(phone):
    tree = phone.tree
    acc = phone.account("demo-dm12")
    assert Acl.parse(tree.info("./DevDetail").acl).allows("Replace", "demo-dm12")
    new = configure_account(tree, acc, server_id="acme-dm")
    assert new.server_id == "acme-dm" and new.server_user == "acme-dm"
    assert find_account(tree, "demo-dm12", "dm12") is None
    for path in (".", "./DevDetail", acc.path):
        acl = Acl.parse(tree.info(path).acl)
        assert acl.allows("Replace", "acme-dm") and not acl.allows("Replace", "demo-dm12"), path
    # the DM 2.0 server's own grants are left alone
    assert Acl.parse(tree.info("./DM2").acl).allows("Get", "demo-dm2")
    assert phone.account("acme-dm", "dm12").path == acc.path


def test_dm2_account_and_tls_settings(phone):
    acc = phone.account("demo-dm2")
    new = configure_account(phone.tree, acc, server_uri="https://dm2.example.com/dm", server_id="op-dm2",
                            auth="none", client_user="u", client_secret="p", verify=False,
                            ca_file="/etc/ca.pem", client_cert="/etc/dev.p12", client_cert_password="pw")
    assert (new.server_uri, new.server_id, new.auth, new.client_user, new.client_secret) == (
        "https://dm2.example.com/dm", "op-dm2", "none", "u", "p")
    assert phone.tree.value(f"{acc.path}/SrvURI") == "https://dm2.example.com/dm"
    assert phone.tree.value(f"{acc.path}/Ext/HTTPAuth/Type") == "none"
    tls = TlsConfig.for_account(new)
    assert tls.verify is False and tls.warning and tls.client_cert == "/etc/dev.p12"
    on = configure_account(phone.tree, new, verify=True)
    assert TlsConfig.for_account(on).verify == "/etc/ca.pem"  # verification back on, against the CA file


@pytest.mark.parametrize(("protocol", "kw", "error"), [
    ("dm2", {"auth": "md5"}, UnsupportedError),
    ("dm12", {"auth": "digest"}, UnsupportedError),
    ("dm12", {"server_uri": "ftp://dm.example.com/"}, EmulatorError),
    ("dm12", {"server_uri": "https:///nohost"}, EmulatorError),
    ("dm12", {"server_uri": "http://host:port/"}, EmulatorError),
    ("dm2", {"server_id": "a&b"}, EmulatorError),
    ("dm2", {"server_id": "  "}, EmulatorError),
])
def test_bad_values_are_refused_and_change_nothing(phone, protocol, kw, error):
    before = read_accounts(phone.tree)
    acc = phone.account(protocol=protocol)
    with pytest.raises(error):
        configure_account(phone.tree, acc, client_user="changed", **kw)
    assert read_accounts(phone.tree) == before


def test_server_id_of_another_account_is_refused(phone):
    tree = phone.tree
    acc = phone.account("demo-dm12")
    configure_account(tree, acc, server_id="second")  # free id: fine
    tree.set_node("./DMAcc/other/ServerID", "other")
    with pytest.raises(EmulatorError) as info:
        configure_account(tree, phone.account("second"), server_id="other", client_user="x")
    assert info.value.status == 418
    assert phone.account("second").client_user != "x"
