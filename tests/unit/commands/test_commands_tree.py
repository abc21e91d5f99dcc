"""`dm-emulator profiles` and `tree export|import` as a user runs them (real subprocesses, real files)."""

from __future__ import annotations

import subprocess
import sys

from lxml import etree

from emulator.store import Workspace
from emulator.tree import Tree
from emulator.tree.tnds import import_tnds


def dm(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator", *args], capture_output=True, cwd=cwd, timeout=60)


def test_profiles_lists_every_shipped_profile():
    out = dm("profiles")
    assert out.returncode == 0, out.stderr
    names = {line.split()[0] for line in out.stdout.decode().splitlines()}
    assert {"smartphone", "home-gateway", "nbiot-sensor", "tablet-dual-env", "vehicle-telematics",
            "windows-laptop"} <= names


def test_tree_export_is_valid_tnds_with_every_standard_object():
    out = dm("tree", "export", "--profile", "smartphone")
    assert out.returncode == 0, out.stderr
    root = etree.fromstring(out.stdout)
    assert etree.QName(root).localname == "MgmtTree"
    top = [n.findtext("{*}NodeName") for n in root.findall("{*}Node")]
    for name in ("DevInfo", "DevDetail", "DMAcc", "Inbox", "DM2"):
        assert name in top
    types = {t.text for t in root.iter("{*}DDFName")}
    for moid in ("urn:oma:mo:oma-dm-devinfo:1.0", "urn:oma:mo:oma-dm-devdetail:1.0",
                 "urn:oma:mo:oma-dm-devinfo:1.2", "urn:oma:mo:oma-dm-dmacc:1.2"):
        assert moid in types
    tree = Tree()
    import_tnds(tree, out.stdout, by=None, replace=True)
    assert tree.value("./DevInfo/DevId").startswith("IMEI:")


def test_tree_import_creates_a_workspace_device_with_that_tree(tmp_path):
    exported = tmp_path / "gw.xml"
    assert dm("tree", "export", "--profile", "home-gateway", "--out", str(exported)).returncode == 0
    original = exported.read_bytes()
    assert b"<Value>Kestrel Networks</Value>" in original
    exported.write_bytes(original.replace(b"<Value>Kestrel Networks</Value>", b"<Value>Edited</Value>"))
    out = dm("tree", "import", str(exported), "--workspace", str(tmp_path / "ws"), "--profile", "home-gateway")
    assert out.returncode == 0, out.stderr
    with Workspace.open(tmp_path / "ws") as ws:
        (record,) = ws.list_devices()
        tree = ws.load_tree(record.id)
    assert record.profile == "home-gateway"
    assert tree.value("./DevInfo/DevId") == record.id
    assert tree.value("./DevInfo/Man") == "Edited"
    assert tree.value("./DM2/DevInfo/Man") == "Edited"


def test_tree_import_of_a_broken_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<MgmtTree>\n<VerDTD>1.2</VerDTD>\n<Node>\n")
    out = dm("tree", "import", str(bad), "--workspace", str(tmp_path / "ws"))
    assert out.returncode == 1
    err = out.stderr.decode()
    assert f"{bad}:" in err and "not well-formed" in err
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.list_devices() == []  # nothing half-imported
