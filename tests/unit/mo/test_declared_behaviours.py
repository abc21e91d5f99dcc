"""A profile's declared behaviours ([[behaviours]] with [[behaviours.steps]]): the step list at its
edges (p = 0, p = 1, synchronous, asynchronous, a trigger node's Replace) and its file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.device.profile import find_profile, load_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import FileFormatError
from emulator.mo.behaviours import MAX_STEPS, MAX_WAIT_S


def _device(profile_with, behaviours: str, index: int = 0) -> VirtualDevice:
    return VirtualDevice(find_profile(str(profile_with(behaviours))), index, server="http://dm.test")


def _fail(p: float, status: int = 410) -> str:
    return f'''
[[behaviours]]
node = "./Vendor/Acme/Reset"
[[behaviours.steps]]
set = {{ "./Vendor/Acme/State" = "resetting" }}
[[behaviours.steps]]
fail = {p}
status = {status}
[[behaviours.steps]]
set = {{ "./Vendor/Acme/State" = "reset" }}
[[behaviours.steps]]
status = 201
[[behaviours.steps]]
alert = {{ type = "Reversed-Domain-Name: com.acme.reset", data = "result={{result}} data={{data}}" }}
'''


def test_synchronous_behaviour_answers_its_status_and_queues_its_alert(profile_with):
    dev = _device(profile_with, _fail(0.0))
    assert dev.tree.exec("./Vendor/Acme/Reset", "now", by="demo-dm12", correlator="c1") == 201
    assert dev.tree.value("./Vendor/Acme/State") == "reset"
    (job,) = dev.behaviours.take_jobs()
    assert job.wait is None and job.server_id == "demo-dm12"
    (alert,) = job.run.alerts
    assert (alert.type, alert.data, alert.source, alert.correlator) == (
        "Reversed-Domain-Name: com.acme.reset", "result=201 data=now", "./Vendor/Acme/Reset", "c1")


def test_fail_with_probability_one_always_fails_and_skips_all_but_the_alert(profile_with):
    dev = _device(profile_with, _fail(1.0))
    for _ in range(5):
        assert dev.tree.exec("./Vendor/Acme/Reset", by="demo-dm12") == 410
        assert dev.tree.value("./Vendor/Acme/State") == "resetting"  # the set after the failure did not run
    assert [j.run.alerts[0].data for j in dev.behaviours.take_jobs()] == ["result=410 data="] * 5


def test_fail_with_probability_zero_never_fails(profile_with):
    dev = _device(profile_with, _fail(0.0))
    seen = set()
    for _ in range(200):
        seen.add(dev.tree.exec("./Vendor/Acme/Reset", by="demo-dm12"))
        dev.behaviours.take_jobs()  # the driver's part: the alerts go
    assert seen == {201}


def test_failures_are_seeded_per_device(profile_with):
    path = profile_with(_fail(0.5))
    prof = find_profile(str(path))

    def outcomes(index: int) -> list[int]:
        dev = VirtualDevice(prof, index, server="http://dm.test")
        return [dev.tree.exec("./Vendor/Acme/Reset", by="demo-dm12") for _ in range(40)]

    assert outcomes(3) == outcomes(3)  # the same device fails the same way from run to run
    assert outcomes(3) != outcomes(4)
    assert {410, 201} == set(outcomes(3))


ASYNC = '''
[[behaviours]]
node = "./Vendor/Acme/Update"
[[behaviours.steps]]
set = { "./Vendor/Acme/State" = "downloading" }
[[behaviours.steps]]
wait = 30
[[behaviours.steps]]
set = { "./Vendor/Acme/State" = "updated", "./Vendor/Acme/Version" = "2.0" }
[[behaviours.steps]]
alert = { type = "Reversed-Domain-Name: com.acme.update", mark = "informational" }
'''


def test_asynchronous_behaviour_answers_202_and_goes_on_when_driven(profile_with):
    dev = _device(profile_with, ASYNC)
    assert dev.tree.exists("./Vendor/Acme/Update")  # the profile need not build the node itself
    assert dev.tree.exec("./Vendor/Acme/Update", by="demo-dm12", correlator="c9") == 202
    assert dev.tree.value("./Vendor/Acme/State") == "downloading"
    (job,) = dev.behaviours.take_jobs()
    assert job.wait == 30 and not job.run.alerts
    assert job.run.advance(dev.tree) is None  # the clock is the driver's: here, at once
    assert dev.tree.value("./Vendor/Acme/State") == "updated" and dev.tree.value("./Vendor/Acme/Version") == "2.0"
    assert job.run.alerts[0].data == "200" and job.run.alerts[0].mark == "informational"


def test_replace_on_a_trigger_node_runs_its_behaviour_only_for_servers(profile_with):
    dev = _device(profile_with, '''
[[behaviours]]
node = "./Vendor/Acme/Trigger"
on = "replace"
[[behaviours.steps]]
set = { "./Vendor/Acme/State" = "triggered by {server} with {data}" }
''')
    dev.tree.set_node("./Vendor/Acme/Trigger", "0")
    dev.tree.replace("./Vendor/Acme/Trigger", "1")  # the device itself: no trigger
    assert not dev.tree.exists("./Vendor/Acme/State")
    dev.tree.replace("./Vendor/Acme/Trigger", "go", by="demo-dm12")
    assert dev.tree.value("./Vendor/Acme/State") == "triggered by demo-dm12 with go"


def test_a_node_without_a_behaviour_still_answers_405(profile_with):
    dev = _device(profile_with, ASYNC)
    dev.tree.set_node("./Vendor/Acme/Other", "")
    with pytest.raises(Exception) as err:
        dev.tree.exec("./Vendor/Acme/Other", by="demo-dm12")
    assert getattr(err.value, "status", None) == 405


# --- the profile file: every mistake names its line ---------------------------------------------

def _line_of(path: Path, needle: str) -> int:
    """The last line holding ``needle`` (the behaviours come after the whole shipped profile)."""
    return max(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(needle))


@pytest.mark.parametrize(("step", "words"), [
    ("reboot = true", "unknown key 'reboot'"),
    ("wait = -1", "must be between 0"),
    (f"wait = {MAX_WAIT_S + 0.5}", "must be between 0"),
    ("fail = 1.5", "must be between 0 and 1"),
    ("status = 99", "must be between 100 and 599"),
    ("wait = 1\nstatus = 200", "exactly one of"),
    ('set = { "Vendor/X" = "1" }', "must be an absolute DM URI"),
    ('alert = { data = "x" }', "type"),
])
def test_step_mistakes_name_file_and_line(profile_with, step, words):
    path = profile_with(f'[[behaviours]]\nnode = "./Vendor/X"\n[[behaviours.steps]]\n{step}\n')
    with pytest.raises(FileFormatError) as err:
        load_profile(path)
    first = step.split("\n")[0].split(" ")[0]
    assert words in str(err.value)
    assert f"{path}:{_line_of(path, first) if words != 'exactly one of' else _line_of(path, '[[behaviours.steps]]')}" \
        in str(err.value)


def test_step_count_limit_is_exact(profile_with):
    many = "".join("[[behaviours.steps]]\nstatus = 200\n" for _ in range(MAX_STEPS))
    ok = profile_with(f'[[behaviours]]\nnode = "./Vendor/X"\n{many}', name="at-limit")
    assert len(load_profile(ok).behaviours[-1].steps) == MAX_STEPS
    over = profile_with(f'[[behaviours]]\nnode = "./Vendor/X"\n{many}[[behaviours.steps]]\nstatus = 1\n',
                        name="over-limit")
    with pytest.raises(FileFormatError, match=f"at most {MAX_STEPS}"):
        load_profile(over)


def test_wait_at_its_limit_is_accepted(profile_with):
    path = profile_with(f'[[behaviours]]\nnode = "./Vendor/X"\n[[behaviours.steps]]\nwait = {MAX_WAIT_S}\n')
    assert load_profile(path).behaviours[-1].steps[0].seconds == MAX_WAIT_S


def test_pending_runs_are_bounded_exactly(profile_with):
    from emulator.mo.behaviours import MAX_PENDING_JOBS

    dev = _device(profile_with, ASYNC)
    codes = [dev.tree.exec("./Vendor/Acme/Update", by="demo-dm12") for _ in range(MAX_PENDING_JOBS + 1)]
    assert codes[:MAX_PENDING_JOBS] == [202] * MAX_PENDING_JOBS
    assert codes[MAX_PENDING_JOBS] == 500  # refused, nothing started: the state was not touched again
    assert len(dev.behaviours.take_jobs()) == MAX_PENDING_JOBS
    assert dev.tree.exec("./Vendor/Acme/Update", by="demo-dm12") == 202  # taken by the driver: room again
