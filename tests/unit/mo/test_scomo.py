"""SCOMO on a device, sans network: the server stages a Download node, Exec answers 202, the run
downloads (the test answers its download), installs, activates, deactivates and removes, reporting
SCOMO result codes; hostile inputs get the right code and leave the inventories consistent; each
component goes into one operating environment (DM-HLF-006)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.mo import scomo
from emulator.mo.check import check_subtree
from emulator.mo.operations import Fetch, Fetched
from emulator.tree import TreeError

SHIPPED = Path(__file__).resolve().parents[3] / "profiles" / "smartphone.toml"
DM2_ROOT = "./DM2/oma-scomo/SCOMO"
SCOMO_SETTINGS = ('[behaviours.settings]\ninstall_s = 0.5\ncomponents = [{ id = "com.nordwave.maps", '
                  'name = "Maps", version = "3.2.1" }]\n')
PKG = b"PK\x03\x04 emulated software package"
OK = Fetched("completed", 200, size=len(PKG), total=len(PKG), digest=hashlib.sha256(PKG).hexdigest())


def _device(tmp_path: Path | None = None, settings_toml: str = "", profile: str = "smartphone") -> VirtualDevice:
    if tmp_path is None:
        return VirtualDevice(find_profile(profile), 0, server="http://127.0.0.1:1")
    text = SHIPPED.read_text()
    assert text.count(SCOMO_SETTINGS) == 2
    path = tmp_path / "scomo-phone.toml"
    path.write_text(text.replace('name = "smartphone"', 'name = "scomo-phone"', 1)
                    .replace(SCOMO_SETTINGS, "[behaviours.settings]\n" + settings_toml))
    return VirtualDevice(find_profile(str(path)), 0, server="http://127.0.0.1:1")


def _finish(dev: VirtualDevice, answer: Fetched | None = OK) -> list:
    """Run the pending operations to their end (no clock), answering each download with ``answer``;
    the runs, with the URLs they fetched as ``fetched``."""
    runs = []
    for job in dev.behaviours.take_jobs():
        run, reply, urls = job.run, None, []
        while (action := run.next(reply)) is not None:
            reply = None
            if isinstance(action, Fetch):
                urls.append(action.url)
                reply = answer
        run.fetched = urls
        runs.append(run)
    return runs


def _stage(dev: VirtualDevice, root: str, server: str, name: str = "pkg1", url: str = "http://127.0.0.1:1/p.bin",
           **extra: str) -> str:
    base = f"{root}/Download/{name}"
    for key, value in {"PkgID": f"com.acme.{name}", "Name": "Acme Notes", "PkgURL": url, **extra}.items():
        dev.tree.add(f"{base}/{key}", value, by=server)
    return base


def _data(run) -> tuple[int, str | None]:
    (alert,) = run.alerts
    assert alert.type == scomo.ALERT_TYPE and alert.format == "xml"
    return run.result, alert.target


@pytest.mark.parametrize(("root", "server"), [("./SCOMO", "demo-dm12"), (DM2_ROOT, "demo-dm2")])
def test_install_activate_deactivate_remove(root, server):
    dev = _device()
    base = _stage(dev, root, server, InstallParams="version=2.0.1")
    assert dev.tree.value(f"{base}/Status") == "10"  # the device completed the node
    assert dev.tree.exec(f"{base}/Operations/DownloadInstallInactive", by=server, correlator="k1") == 202
    (run,) = _finish(dev)
    deployed = f"{root}/Inventory/Deployed/pkg1"
    assert _data(run) == (1200, deployed)
    assert run.alerts[0].data == "<ResultCode>1200</ResultCode><Identifier>com.acme.pkg1</Identifier>"
    assert run.alerts[0].correlator == "k1" and run.alerts[0].source == f"{base}/Operations/DownloadInstallInactive"
    assert dev.tree.value(f"{deployed}/State") == "10" and dev.tree.value(f"{deployed}/Version") == "2.0.1"
    assert dev.tree.value(f"{root}/Inventory/Delivered/pkg1/State") == "20"
    assert dev.tree.value(f"{root}/Inventory/Delivered/pkg1/Ext/Size") == str(len(PKG))
    assert run.fetched == ["http://127.0.0.1:1/p.bin"]
    assert check_subtree(dev.tree, root) == []
    dev.tree.exec(f"{deployed}/Operations/Activate", by=server)
    assert _data(_finish(dev)[0]) == (1200, deployed)
    assert dev.tree.value(f"{deployed}/State") == "20"
    dev.tree.exec(f"{deployed}/Operations/Deactivate", by=server)
    _finish(dev)
    assert dev.tree.value(f"{deployed}/State") == "10"
    dev.tree.exec(f"{deployed}/Operations/Remove", by=server)
    assert _finish(dev)[0].result == 1200
    assert not dev.tree.exists(deployed)
    assert dev.tree.value(f"{root}/Inventory/Delivered/pkg1/State") == "10"
    dev.tree.exec(f"{root}/Inventory/Delivered/pkg1/Operations/Install", by=server)
    assert _data(_finish(dev)[0]) == (1200, deployed)
    assert dev.tree.value(f"{deployed}/State") == "20"
    assert check_subtree(dev.tree, root) == []


def test_exec_on_a_missing_component_or_remove_while_not_deployed_is_404():
    dev = _device()
    for uri in ("./SCOMO/Inventory/Deployed/nothing/Operations/Remove",
                "./SCOMO/Inventory/Deployed/nothing/Operations/Activate",
                "./SCOMO/Download/nothing/Operations/DownloadInstall"):
        with pytest.raises(TreeError) as err:
            dev.tree.exec(uri, by="demo-dm12")
        assert err.value.status == 404
    assert dev.behaviours.take_jobs() == []
    # the component goes while a Remove waits for its turn: the late run reports a client error
    maps = "./SCOMO/Inventory/Deployed/com.nordwave.maps"
    dev.tree.exec(f"{maps}/Operations/Remove", by="demo-dm12")
    dev.tree.exec(f"{maps}/Operations/Remove", by="demo-dm12")
    assert [r.result for r in _finish(dev)] == [1200, 1400]
    assert not dev.tree.exists(maps)


@pytest.mark.parametrize(("answer", "code"), [
    (Fetched("bad url", error="not an http(s) URL"), 1402), (Fetched("network", error="connection refused"), 1501),
    (Fetched("http error", 404), 1500), (Fetched("http error", 503), 1501), (Fetched("http error", 401), 1403),
    (Fetched("too large"), 1404), (Fetched("bad answer"), 1402),
])
def test_download_failures_map_to_scomo_codes_and_deliver_nothing(answer, code):
    dev = _device()
    base = _stage(dev, "./SCOMO", "demo-dm12", url="not a url")
    dev.tree.exec(f"{base}/Operations/DownloadInstall", by="demo-dm12")
    (run,) = _finish(dev, answer)
    assert _data(run) == (code, None)
    assert dev.tree.value(f"{base}/Status") == "20"
    assert dev.tree.children("./SCOMO/Inventory/Delivered") == []
    assert dev.tree.children("./SCOMO/Inventory/Deployed") == ["com.nordwave.maps"]
    assert check_subtree(dev.tree, "./SCOMO") == []


def test_declared_install_failure_and_declined_consent(tmp_path):
    dev = _device(tmp_path, 'fail = { 1405 = 1.0 }\n')
    base = _stage(dev, DM2_ROOT, "demo-dm2")
    dev.tree.exec(f"{base}/Operations/DownloadInstall", by="demo-dm2")
    assert _data(_finish(dev)[0]) == (1405, None)
    assert dev.tree.value(f"{base}/Status") == "60"  # install failed, the package is kept
    assert dev.tree.children(f"{DM2_ROOT}/Inventory/Deployed") == []
    assert dev.tree.value(f"{DM2_ROOT}/Inventory/Delivered/pkg1/State") == "10"
    dev2 = _device(tmp_path, 'consent = "decline"\n')
    base = _stage(dev2, "./SCOMO", "demo-dm12")
    dev2.tree.exec(f"{base}/Operations/DownloadInstall", by="demo-dm12")
    assert _finish(dev2)[0].result == 1401
    assert dev2.tree.children("./SCOMO/Inventory/Deployed") == []


def test_components_go_into_the_environment_of_their_server():
    dev = _device(profile="tablet-dual-env")
    # the work environment's server (DM 1.2) installs into "work" without naming it
    base = _stage(dev, "./SCOMO", "work-mdm")
    dev.tree.exec(f"{base}/Operations/DownloadInstall", by="work-mdm")
    assert _finish(dev)[0].result == 1200
    assert dev.tree.value("./SCOMO/Inventory/Deployed/pkg1/EnvType") == "work"
    # the host's server may not install into the guest, and no environment "tv" exists
    for env in ("work", "tv"):
        base = _stage(dev, DM2_ROOT, "demo-dm2", name=f"to-{env}", EnvType=env)
        dev.tree.exec(f"{base}/Operations/DownloadInstall", by="demo-dm2")
        assert _finish(dev)[0].result == 1413
        assert dev.tree.value(f"{base}/Status") == "10"
    base = _stage(dev, DM2_ROOT, "demo-dm2", name="hosted", EnvType="host")
    dev.tree.exec(f"{base}/Operations/DownloadInstall", by="demo-dm2")
    assert _finish(dev)[0].result == 1200
    assert dev.tree.value(f"{DM2_ROOT}/Inventory/Deployed/hosted/EnvType") == "host"
    assert dev.tree.value(f"{DM2_ROOT}/Inventory/Deployed/com.acme.vpn/EnvType") == "work"


@pytest.mark.parametrize(("text", "error"), [
    ('fail = { 1200 = 0.5 }', "no SCOMO failure result code"),
    ('fail = { 1405 = 0.7, 1409 = 0.7 }', "more than 1"),
    ('consent = "later"', "accept or decline"),
    ('components = [{ id = "x" }]', "id and version"),
    ('components = [{ id = "a/b", version = "1" }]', "cannot be a component node name"),
    ('components = [{ id = "x", version = 2 }]', "version must be a str"),
    ('free_bytes = -1', "bytes >= 0"),
    ('wipe = {}', "no setting 'wipe'"),
])
def test_bad_settings_name_their_line(tmp_path, text, error):
    from emulator.errors import FileFormatError

    with pytest.raises(FileFormatError, match=error) as err:
        _device(tmp_path, f"{text}\n")
    assert err.value.line is not None


def test_dm2_exec_by_client_uri_and_a_missing_component_is_404():
    from emulator.errors import EmulatorError
    from emulator.protocol.dm2.executor import Actor, execute

    dev = _device()
    actor = Actor("demo-dm2", frozenset(dev.account("demo-dm2").perms))
    code, uri = execute(dev.tree, f"{scomo.MOID}/SCOMO/Inventory/Deployed/com.nordwave.maps/Operations/Deactivate",
                        actor)
    assert (code, uri) == (202, f"{scomo.MOID}/SCOMO/Inventory/Deployed/com.nordwave.maps/Operations/Deactivate")
    assert _finish(dev)[0].result == 1200
    assert dev.tree.value(f"{DM2_ROOT}/Inventory/Deployed/com.nordwave.maps/State") == "10"
    for missing in ("Inventory/Deployed/nothing/Operations/Remove", "Download/nothing/Operations/Download"):
        with pytest.raises(EmulatorError) as err:
            execute(dev.tree, f"{scomo.MOID}/SCOMO/{missing}", actor)
        assert err.value.status == 404
    assert dev.behaviours.take_jobs() == []


def test_traffic_says_what_lawmo_and_scomo_result_codes_mean():
    from emulator.mo import lawmo
    from emulator.mo.behaviours import mo_kinds
    from emulator.mo.operations import describe_result

    mo_kinds()
    assert describe_result(scomo.ALERT_TYPE, scomo.alert_data(1405, "com.acme.notes")) == "1405 Install Failed"
    assert describe_result(lawmo.ALERT_TYPE, "1406") == "1406 Wipe Operation Not Performed"
