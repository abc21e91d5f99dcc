"""Declaring managed objects: what a profile and a scenario may say about FUMO, refused with the
reason at load; the FUMO subtree a profile gets matches the shipped DDF; the knobs' exact limits."""

from __future__ import annotations

import pytest

from emulator.device.profile import load_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import FileFormatError
from emulator.mo.behaviours import mo_kinds
from emulator.mo.check import check_subtree
from emulator.mo.dlota import BadDescriptor, Descriptor, build_descriptor, parse_descriptor
from emulator.mo.fumo import FUMO_MOID
from emulator.mo.instances import find_instances
from emulator.mo.operations import Fetch, Fetched, check_settings


def _declared(profile_with, body: str):
    return load_profile(profile_with(f'[[behaviours]]\nmo = "fumo"\nnode = "./Vendor/FU"\n{body}', name="fu"))


def test_the_shipped_smartphone_has_fumo_on_both_trees_and_they_match_the_ddf():
    from emulator.device.profile import find_profile

    dev = VirtualDevice(find_profile("smartphone"), 0, server="http://x")
    for root in ("./FwUpdate/fw", "./DM2/oma-fumo/fw"):
        assert dev.tree.info(root).type == FUMO_MOID
        assert check_subtree(dev.tree, root) == []
        assert dev.tree.value(f"{root}/State") == "10"
    assert list(find_instances(dev.tree, FUMO_MOID)) == ["fw"]


@pytest.mark.parametrize(("body", "says"), [
    ('[behaviours.settings]\ninstall = 5\n', "fumo has no setting 'install'"),
    ('[behaviours.settings]\ninstall_s = "5"\n', "expected float"),
    ('[behaviours.settings]\nconsent = "maybe"\n', "expected accept or decline"),
    ('[behaviours.settings]\nfail = { "200x" = 0.1 }\n', "is no FUMO failure result code"),
    ('[behaviours.settings]\nfail = { "402" = 0.7, "410" = 0.4 }\n', "more than 1"),
    ('[behaviours.settings]\nmin_battery = 101\n', "percentage"),
    ('[[behaviours.steps]]\nstatus = 200\n', "has no 'steps'"),
])
def test_bad_declarations_are_refused_with_the_reason(profile_with, body, says):
    with pytest.raises(FileFormatError) as e:
        _declared(profile_with, body)
    assert says in str(e.value)


def test_an_unknown_kind_is_refused(profile_with):
    with pytest.raises(FileFormatError) as e:
        load_profile(profile_with('[[behaviours]]\nmo = "teleport"\nnode = "./X"\n', name="tp"))
    assert "fumo" in str(e.value)


def test_knob_limits_are_exact():
    fumo = mo_kinds()["fumo"]
    assert dict(check_settings(fumo, {"fail": {"402": 0.5, "410": 0.5}}))["fail"] == {"402": 0.5, "410": 0.5}
    assert dict(check_settings(fumo, {"min_battery": 100, "install_s": 86400}))["min_battery"] == 100
    for bad in ({"install_s": 86400.5}, {"battery": -1}, {"fail": {"402": 1.01}}):
        with pytest.raises(ValueError):
            check_settings(fumo, bad)


def test_configure_changes_a_devices_knobs_and_checks_them_first(profile_with):
    dev = VirtualDevice(_declared(profile_with, ""), 0, server="http://x")
    assert dev.behaviours.configure("fumo", {"install_s": 0.5}) == 3  # the smartphone's two and ours
    with pytest.raises(ValueError):
        dev.behaviours.configure("fumo", {"install_s": -1})
    assert dev.behaviours.mo_state["./Vendor/FU"].settings["install_s"] == 0.5  # type: ignore[attr-defined]


def test_descriptors_round_trip_and_garbage_is_refused():
    d = Descriptor("http://h/fw", 123, name="fw", version="2", install_notify_uri="http://h/n", sha256="ab" * 32)
    assert parse_descriptor(build_descriptor(d)) == d
    for bad in (b"", b"not xml", b"<other/>", b"<media><size>1</size></media>",
                b"<media><objectURI>http://h</objectURI><size>-1</size></media>",
                b'<!DOCTYPE m [<!ENTITY e "x">]><media><objectURI>&e;</objectURI><size>1</size></media>',
                b"<media>" + b" " * 70_000 + b"</media>"):
        with pytest.raises(BadDescriptor):
            parse_descriptor(bad)


SCENARIO = """name = "s"
[[devices]]
profile = "smartphone"
count = 1
{extra}
"""


@pytest.mark.parametrize(("extra", "says"), [
    ('[mo.teleport]\nx = 1\n', "unknown managed object 'teleport'"),
    ('[mo.fumo]\ninstall = 1\n', "fumo has no setting 'install'"),
    ('[mo.fumo]\nfail = { "402" = 2 }\n', "from 0 to 1"),
    ('[campaign]\npackage = "fw"\nsize = 1\n', "version"),
    ('[campaign]\npackage = "../fw"\nsize = 1\nversion = "v"\n', "letters, digits"),
    ('[campaign]\npackage = "fw"\nsize = 268435457\nversion = "v"\n', "268435456"),
    ('[campaign]\npackage = "fw"\nsize = 1\nversion = "v"\noperation = "Update"\n', "DownloadAndUpdate"),
])
def test_a_scenarios_mo_and_campaign_tables_are_checked(tmp_path, extra, says):
    from emulator.scenarios.model import load_scenario

    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(extra=extra))
    with pytest.raises(FileFormatError) as e:
        load_scenario(path)
    assert says in str(e.value)


def test_a_scenario_group_sets_its_bearers_bandwidth(tmp_path):
    from emulator.scenarios.model import load_scenario

    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(extra="").replace("count = 1", "count = 1\nbearer_kbps = 2000") +
                    '[mo.fumo]\ninstall_s = 1\n[campaign]\npackage = "fw"\nsize = 268435456\nversion = "v"\n')
    s = load_scenario(path)
    assert s.groups[0].bearer_kbps == 2000.0
    assert s.mo == (("fumo", (("install_s", 1),)),)
    assert s.campaign is not None and s.campaign.size == 256 << 20


def test_an_instance_runs_one_operation_at_a_time():
    from emulator.device.profile import find_profile

    dev = VirtualDevice(find_profile("smartphone"), 0, server="http://x")
    node = "./FwUpdate/fw/DownloadAndUpdate"
    assert dev.tree.exec(node, by="demo-dm12", correlator="a") == 202
    assert dev.tree.exec(node, by="demo-dm12", correlator="b") == 500  # busy: nothing more starts
    assert dev.tree.exec("./DM2/oma-fumo/fw/Download", by="demo-dm2") == 202  # another instance is free
    (job, other) = dev.behaviours.take_jobs()
    answer = None  # drive the first run by hand, its empty PkgURL refused as the fleet's engine would
    while (action := job.run.next(answer)) is not None:
        answer = Fetched("bad url", error="no URL") if isinstance(action, Fetch) else None
    assert job.run.result == 411
    assert dev.tree.value("./FwUpdate/fw/State") == "20"
    assert dev.tree.exec(node, by="demo-dm12") == 202
