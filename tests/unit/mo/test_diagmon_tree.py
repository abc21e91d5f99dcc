"""DiagMon on the device tree, without HTTP: readings that move plausibly and the same from run to
run, the checks of what a server writes (exact limits), traps, the log's bounds, the DDF."""

from __future__ import annotations

import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.mo import diagmon
from emulator.mo.check import check_subtree
from emulator.tree import TreeError
from emulator.tree.tree import ExecRequest

T0 = 1_800_000_000.0


def _device(index: int = 0) -> VirtualDevice:
    return VirtualDevice(find_profile("smartphone"), index, server="http://127.0.0.1:1")


def test_readings_move_plausibly_and_repeat_per_seed() -> None:
    a, b = _device(), _device()
    levels, frees, signals = [], [], []
    for hour in range(0, 48):
        a.sample_diagnostics(T0 + hour * 3600)
        b.sample_diagnostics(T0 + hour * 3600)
        levels.append(int(a.tree.value("./DiagMon/Battery/Level") or 0))
        frees.append(int(a.tree.value("./DiagMon/Memory/Free") or 0))
        signals.append(int(a.tree.value("./DiagMon/Radio/lte0/Signal") or 0))
        assert a.tree.value("./DiagMon/Battery/Level") == b.tree.value("./DiagMon/Battery/Level")
        assert a.tree.value("./DM2/DiagMon/Radio/nr0/Signal") == b.tree.value("./DM2/DiagMon/Radio/nr0/Signal")
    assert all(15 <= x <= 100 for x in levels)
    assert all(abs(x - y) <= 40 for x, y in zip(levels, levels[1:], strict=False))  # an hour moves a little
    assert min(levels) == 15 and max(levels) > 60  # drained to 15 %, then charged again
    total = int(a.tree.value("./DiagMon/Memory/Total") or 0)
    assert all(0.15 * total < f < 0.55 * total for f in frees) and len(set(frees)) > 10
    assert all(-125 < s < -60 for s in signals) and len(set(signals)) > 5
    assert a.tree.value("./DiagMon/Radio/wlan0/Up") == "false"


@pytest.mark.parametrize("value,ok", [("999999999999", True), ("-999999999999", True), ("1000000000000", False),
                                      ("-1000000000000", False), ("12.5", False), ("", False), ("20%", False)])
def test_threshold_limit_is_exact(value: str, ok: bool) -> None:
    dev = _device()
    path = "./DiagMon/Trap/Battery/Threshold"
    if ok:
        assert dev.tree.replace(path, value, by="demo-dm12") == 200
        assert dev.tree.value(path) == value
    else:
        with pytest.raises(TreeError) as err:
            dev.tree.replace(path, value, by="demo-dm12")
        assert err.value.status == 400 and dev.tree.value(path) == "15"


@pytest.mark.parametrize("value,ok", [("1", True), ("86400", True), ("0", False), ("86401", False), ("x", False)])
def test_sample_interval_limit_is_exact(value: str, ok: bool) -> None:
    dev = _device()
    if ok:
        dev.tree.replace("./DiagMon/SampIntrvl", value, by="demo-dm12")
        dev.tree.replace("./DM2/DiagMon/SampIntrvl", value, by="demo-dm2")
        assert dev.diagnostics.interval(dev.tree) == float(value)  # (the shortest of the two objects)
    else:
        with pytest.raises(TreeError):
            dev.tree.replace("./DiagMon/SampIntrvl", value, by="demo-dm12")
        assert dev.tree.value("./DiagMon/SampIntrvl") == "60"


@pytest.mark.parametrize("measure,ok", [("Battery/Level", True), ("Radio/wlan0/Signal", True), ("Memory/Free", True),
                                        ("Battery/Status", False), ("ErrorLog/Entries", False), ("Radio/eth9/Signal", False),
                                        ("../DevInfo/DevId", False), ("", False)])
def test_measure_must_name_a_reading(measure: str, ok: bool) -> None:
    dev = _device()
    path = "./DiagMon/Trap/Signal/Measure"
    if ok:
        dev.tree.replace(path, measure, by="demo-dm12")
    else:
        with pytest.raises(TreeError):
            dev.tree.replace(path, measure, by="demo-dm12")
        assert dev.tree.value(path) == "Radio/lte0/Signal"


def test_device_side_writes_are_not_checked() -> None:
    dev = _device()
    dev.tree.replace("./DiagMon/Trap/Battery/Threshold", "not checked")  # the device itself (by None)
    assert dev.tree.value("./DiagMon/Trap/Battery/Threshold") == "not checked"


def test_a_new_trap_added_by_a_server_fires_to_it() -> None:
    dev = _device()
    t = dev.tree
    t.add("./DiagMon/Trap/Hot", format="node", by="demo-dm12")
    for leaf, value in (("Measure", "Memory/Free"), ("Condition", "above"), ("Threshold", "0"), ("Enabled", "true")):
        t.add(f"./DiagMon/Trap/Hot/{leaf}", value, by="demo-dm12")
    with pytest.raises(TreeError):
        t.add("./DiagMon/Trap/Hot2/Condition", "sideways", by="demo-dm12")
    dev.diagnostics.note_server_write(t, "./DiagMon/Trap/Hot/Enabled", "demo-dm12")
    fired = dev.sample_diagnostics(T0)
    assert [(f.source, f.server_id, f.protocol, f.condition) for f in fired] == [
        ("./DiagMon/Trap/Hot", "demo-dm12", "dm12", "above")]
    assert dev.sample_diagnostics(T0 + 60) == []  # still true: no second alert


def test_a_down_radio_does_not_fire_its_trap() -> None:
    dev = _device()
    dev.tree.replace("./DiagMon/Trap/Signal/Measure", "Radio/wlan0/Signal", by="demo-dm12")
    dev.tree.replace("./DiagMon/Trap/Signal/Threshold", "0", by="demo-dm12")
    dev.tree.replace("./DiagMon/Trap/Signal/Enabled", "true", by="demo-dm12")
    dev.diagnostics.note_server_write(dev.tree, "./DiagMon/Trap/Signal/Enabled", "demo-dm12")
    assert dev.sample_diagnostics(T0) == []  # wlan0 is down: no reading to judge
    dev.set_bearer("wlan0", up=True, make_current=False)
    assert len(dev.sample_diagnostics(T0)) == 1


def test_error_log_keeps_the_newest_lines_each_bounded() -> None:
    dev = _device()
    for n in range(diagmon.LOG_MAX_ENTRIES + 5):
        dev.diagnostics.log(dev.tree, T0, f"event {n} " + "x" * 400)
    lines = dev.diagnostics.log_text().splitlines()
    assert len(lines) == diagmon.LOG_MAX_ENTRIES
    assert lines[0].split()[2] == "5" and all(len(line) == diagmon.LOG_LINE_MAX for line in lines)
    assert dev.tree.value("./DiagMon/ErrorLog/Entries") == str(diagmon.LOG_MAX_ENTRIES)


@pytest.mark.parametrize("data,status", [("http://127.0.0.1:9/x", 202), ("url=https%3A%2F%2Fh.example%2Fu", 202),
                                         ("ftp://h/x", 400), ("http://", 400), ("http://h:99999999/", 400),
                                         ("http://h/" + "a" * diagmon.URL_MAX, 400), ("", 400)])
def test_upload_exec_needs_an_http_url(data: str, status: int) -> None:
    dev = _device()
    assert dev.tree.exec("./DiagMon/ErrorLog/Upload", data, by="demo-dm12") == status
    assert len(dev.behaviours.take_jobs()) == (1 if status == 202 else 0)


def test_upload_url_leaf_is_used_when_the_exec_has_none() -> None:
    dev = _device()
    dev.tree.replace("./DM2/DiagMon/ErrorLog/UploadURL", "https://logs.example/u/1", by="demo-dm2")
    status = dev.diagnostics.exec_upload(dev.tree, ExecRequest("./DM2/DiagMon/ErrorLog/Upload", None, "demo-dm2", None),
                                         protocol="dm2", base="./DM2/DiagMon")
    (job,) = dev.behaviours.take_jobs()
    action = job.run.next()
    assert status == 202 and action.url == "https://logs.example/u/1" and action.method == "POST"
    with pytest.raises(TreeError):
        dev.tree.replace("./DM2/DiagMon/ErrorLog/UploadURL", "javascript:alert(1)", by="demo-dm2")


@pytest.mark.parametrize("base", ["./DiagMon", "./DM2/DiagMon", "./ConnMO", "./DM2/ConnMO"])
def test_live_subtrees_match_their_ddf(base: str) -> None:
    dev = _device()
    dev.sample_diagnostics(T0)
    dev.diagnostics.log(dev.tree, T0, "a line")
    dev.set_bearer("wlan0", up=True)
    assert check_subtree(dev.tree, base) == []
