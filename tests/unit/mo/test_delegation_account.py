"""A DM 1.3 delegation that brings its delegate's account (``account=`` in the Delegate request):
the device takes the account and the delegation in one step, or neither (README "DM 1.3")."""

from __future__ import annotations

import base64

import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError
from emulator.mo.delegation import MAX_ACCOUNT_DOCUMENT, parse_request
from emulator.server.authorities import SecretPair
from emulator.server.bootstrap import bootstrap_document

A, B = "demo-dm12", "partner-dm12"


def _device() -> VirtualDevice:
    return VirtualDevice(find_profile("smartphone-dm13"), 0, server="http://127.0.0.1:9")


def _account(server_id: str = B, dev_id: str = "IMEI:1") -> str:
    doc = bootstrap_document(server_id, server_id, "http://127.0.0.1:9/dm12/" + server_id, dev_id,
                             SecretPair("client-secret", "server-secret"))
    return base64.urlsafe_b64encode(doc).decode().rstrip("=")


def _exec(dev: VirtualDevice, data: str, by: str = A) -> int:
    return dev.tree.exec(f"./DMAcc/{A}/Ext/Delegate", data, by=by)


def test_the_delegate_account_and_the_delegation_come_together():
    dev = _device()
    assert _exec(dev, f"delegate={B}&scope=./DevDetail&kind=full&account={_account()}") == 200
    account = dev.account(B, "dm12")
    assert account.auth == "sha256" and account.client_secret == "client-secret"
    acl = dev.tree.get_prop("./DevDetail", "ACL")
    assert B in acl and A not in acl
    assert dev.tree.get_prop(f"./DMAcc/{B}", "ACL") == f"Delete={B}&Get={B}&Replace={B}"  # the device decided


@pytest.mark.parametrize(("data", "status"), [
    (f"delegate={B}&scope=./DMAcc&account={{account}}", 403),  # accounts cannot be delegated
    (f"delegate={B}&scope=./Nowhere&account={{account}}", 404),
    ("delegate=someone-else&scope=./DevDetail&account={account}", 400),  # the document is for another server
    (f"delegate={B}&scope=./DevDetail&account=%%%", 400),
])
def test_a_refused_delegation_leaves_no_account_behind(data, status):
    dev = _device()
    before = dev.tree.get_prop("./DevDetail", "ACL")
    with pytest.raises(EmulatorError) as refused:
        _exec(dev, data.format(account=_account()))
    assert refused.value.status == status
    assert [a.server_id for a in dev.accounts("dm12")] == [A]
    assert dev.tree.get_prop("./DevDetail", "ACL") == before


def test_only_the_account_s_own_server_may_bring_a_delegate():
    dev = _device()
    with pytest.raises(EmulatorError):
        _exec(dev, f"delegate={B}&scope=./DevDetail&account={_account()}", by=B)
    assert [a.server_id for a in dev.accounts("dm12")] == [A]


def test_account_document_limit_is_exact():
    at = base64.urlsafe_b64encode(b"x" * MAX_ACCOUNT_DOCUMENT).decode()
    over = base64.urlsafe_b64encode(b"x" * (MAX_ACCOUNT_DOCUMENT + 1)).decode()
    assert len(parse_request(f"delegate={B}&scope=./DevDetail&account={at}").account) == MAX_ACCOUNT_DOCUMENT
    with pytest.raises(EmulatorError, match="over the"):
        parse_request(f"delegate={B}&scope=./DevDetail&account={over}")
