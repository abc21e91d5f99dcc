"""`dm-emulator run` as a CI job sees it (issue 14): exit codes, output paths checked first, signals,
retries and recovered sessions, traffic of failing devices, and a JUnit file GitLab and Jenkins read.

The reference server runs as `dm-emulator server --port 0` in a child process (with ``--fault`` to
make one device's session fail once), and the runs are real subprocesses where a signal or an exit
code is what is tested.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from emulator.cli import main
from emulator.commands.bench import reference_server_process as reference_server
from emulator.device.identity import make_identity
from emulator.device.profile import find_profile
from emulator.store.traffic_files import read_json_lines
from emulator.util.masking import MASK

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = [sys.executable, "-m", "emulator"]


def dev_id(index: int, profile: str = "smartphone") -> str:
    return make_identity(find_profile(profile).identity, index).dev_id


@pytest.fixture(scope="module")
def server():
    with reference_server() as url:
        yield url


# ------------------------------------------------------------------------------------ exit codes


@pytest.mark.parametrize("argv, says", [
    (["--profile", "no-such-profile"], "no-such-profile"),
    (["--scenario", "no-such-scenario"], "no such scenario file"),
    (["--profile", "smartphone", "--retry", "11"], "--retry 11"),
    (["--profile", "smartphone", "--retry-backoff", "2"], "--retry-backoff goes with --retry"),
    (["--profile", "smartphone", "--traffic-all"], "--traffic-all needs --traffic-dir"),
])
def test_every_mistake_before_the_first_session_exits_2(argv, says, capsys):
    code = main(["run", "--server", "http://127.0.0.1:9", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert says in err and "cannot connect" not in err


def test_server_without_a_scheme_exits_2(capsys):
    code = main(["run", "--server", "127.0.0.1:8700", "--profile", "smartphone"])
    err = capsys.readouterr().err
    assert code == 2 and "is not an http:// or https:// URL" in err


def test_scenario_typo_exits_2_naming_file_and_line(tmp_path, capsys):
    path = tmp_path / "typo.toml"
    path.write_text('[[devices]]\nprofile = "smartphone"\n\n[pacing]\nmax_in_fligth = 3\n')
    code = main(["run", "--server", "http://127.0.0.1:9", "--scenario", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and f"{path}:5:" in err and "did you mean 'max_in_flight'" in err


@pytest.mark.parametrize("option", ["--report", "--junit"])
def test_unwritable_report_paths_are_refused_before_the_run(option, tmp_path, capsys):
    missing = tmp_path / "nonexistent" / "x.out"
    code = main(["run", "--server", "http://127.0.0.1:9", "--profile", "smartphone", option, str(missing)])
    err = capsys.readouterr().err
    assert code == 2 and str(missing) in err and option in err
    assert "cannot connect" not in err  # refused before any session
    code = main(["run", "--server", "http://127.0.0.1:9", "--profile", "smartphone", option, str(tmp_path)])
    assert code == 2 and "names a folder" in capsys.readouterr().err


def test_unwritable_traffic_dir_is_refused_before_the_run(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["run", "--server", "http://127.0.0.1:9", "--profile", "smartphone",
                 "--traffic-dir", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert code == 2 and "traffic" in err and "cannot connect" not in err


# ------------------------------------------------------------------------------ nothing completed


def test_a_run_where_nothing_completed_prints_no_meaningless_figures(tmp_path, capsys):
    report = tmp_path / "r.json"
    code = main(["run", "--server", "http://127.0.0.1:9", "--profile", "smartphone", "--count", "2",
                 "--protocol", "dm12", "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "latency p50" not in out and "sessions/s" not in out and "no session completed" in out
    assert "ssl:default" not in err and "Connect call failed" not in err
    assert "cannot connect (connection refused: 127.0.0.1:9)" in err
    data = json.loads(report.read_text())
    assert not any(key.startswith("latency") for key in data) and data["sessions_per_s"] is None


# ------------------------------------------------------------------- retries, traffic, JUnit


def test_a_session_that_fails_once_is_recovered_by_retry_and_counted_apart(tmp_path):
    broken = dev_id(1)
    with reference_server("--fault", f"http_500:{broken}") as url:
        report, junit, traffic = tmp_path / "r.json", tmp_path / "j.xml", tmp_path / "traffic"
        proc = subprocess.run([*EMULATOR, "run", "--server", url, "--profile", "smartphone", "--count", "3",
                               "--protocol", "dm12", "--retry", "2", "--retry-backoff", "0.1",
                               "--report", str(report), "--junit", str(junit), "--traffic-dir", str(traffic)],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    assert data["sessions_completed"] == 3 and data["sessions_recovered"] == 1 and data["sessions_failed"] == 0
    assert data["attempts"] == 4
    mine = [r for r in data["results"] if r["device"] == broken]
    assert [(r["outcome"], r["attempt"]) for r in mine] == [("retried", 1), ("recovered", 2)]
    assert "1 recovered on retry" in proc.stdout and ", 0 failed" in proc.stdout
    # the failed attempt's traffic is kept: it explains the retry
    (written,) = traffic.iterdir()
    assert {m.device_id for m in read_json_lines(written)} == {broken}
    suite = ET.parse(junit).getroot()[0]
    assert suite.get("failures") == "0"


def test_failing_devices_leave_masked_traffic_named_by_junit_and_every_one_listed(tmp_path):
    broken = [dev_id(i) for i in (0, 2)]
    faults = [a for d in broken for a in ("--fault", f"http_500:{d}")]
    with reference_server(*faults) as url:
        junit, traffic = tmp_path / "j.xml", tmp_path / "traffic"
        proc = subprocess.run([*EMULATOR, "run", "--server", url, "--profile", "smartphone", "--count", "3",
                               "--protocol", "dm12", "--junit", str(junit), "--traffic-dir", str(traffic)],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1, proc.stderr
    files = {p.name: p for p in traffic.iterdir()}
    assert len(files) == 2  # only the failing devices
    for path in files.values():
        messages = read_json_lines(path)
        assert messages and {m.direction for m in messages} == {"out", "in"}
        outgoing = b"".join(m.body for m in messages if m.direction == "out")
        assert b"<Cred>" in outgoing and MASK.encode() in outgoing  # the device's credentials, masked
        assert find_profile("smartphone").accounts[0].client_secret.encode() not in outgoing \
            or not find_profile("smartphone").accounts[0].client_secret
    root = ET.parse(junit).getroot()
    failing = {c.get("name"): c for c in root.iter("testcase") if c.find("failure") is not None
               and c.get("classname") == "fleet.devices"}
    assert set(failing) == set(broken)
    for dev, case in failing.items():
        (path,) = [p for p in files.values() if p.name.startswith(dev.replace(":", "_"))]
        assert str(path) in case.find("failure").text
        assert f"[[ATTACHMENT|{path}]]" in case.find("system-out").text.splitlines()
        assert case.find("failure").get("type") == "failed"


def test_traffic_all_and_workspace_keep_every_device(tmp_path, server):
    traffic, ws = tmp_path / "traffic", tmp_path / "ws"
    code = main(["run", "--server", server, "--profile", "smartphone", "--count", "2", "--protocol", "dm12",
                 "--traffic-dir", str(traffic), "--traffic-all", "--workspace", str(ws)])
    assert code == 0
    assert len(list(traffic.iterdir())) == 2
    from emulator.store import Workspace

    with Workspace.open(ws) as w:
        devices = w.list_devices()
        assert len(devices) == 2
        for d in devices:
            (session,) = w.sessions(d.id)
            assert session.outcome == "completed"
            assert w.has_tree(d.id)


# --------------------------------------------------------------------------------------- JUnit


FAILING_SCENARIO = """\
name = "ci-check"

[[devices]]
name = "phones"
profile = "smartphone"
count = 3
protocol = "dm12"

[[sessions]]
devices = "phones"

[[sessions]]
devices = "phones"
at = "{late}"

[[expect]]
status = "completed"

[[expect]]
devices = "phones"
node = "./DevDetail/FwV"
equals = "not what it is"

[[expect]]
devices = "phones"
node = "./DevDetail/FwV"
equals = "not what it is"
"""


def test_junit_is_what_junitparser_gitlab_and_jenkins_read(tmp_path, server):
    junitparser = pytest.importorskip("junitparser")
    path = tmp_path / "s.toml"
    path.write_text(FAILING_SCENARIO.format(late="0.2s"))
    junit = tmp_path / "j.xml"
    started = time.time()
    code = main(["run", "--server", server, "--scenario", str(path), "--junit", str(junit)])
    wall = time.time() - started
    assert code == 1
    xml = junitparser.JUnitXml.fromfile(str(junit))
    assert isinstance(xml, junitparser.JUnitXml)  # a <testsuites> root
    (suite,) = list(xml)
    cases = list(suite)
    assert suite.tests == len(cases) == 6  # three expectations and three devices
    assert suite.failures == 2 and suite.errors == 0 and suite.skipped == 0
    assert suite.timestamp and suite.hostname
    assert 0 < suite.time <= wall  # the wall time of the run, not a sum over devices
    # GitLab keys a case by classname + name and drops duplicates: every pair is unique and stable
    keys = [(c.classname, c.name) for c in cases]
    assert len(set(keys)) == len(keys)
    assert ("ci-check.expect", "phones: ./DevDetail/FwV == 'not what it is' (2)") in keys
    assert not any(str(path) in name for _, name in keys)
    devices = [c for c in cases if c.classname == "ci-check.phones"]
    assert len(devices) == 3 and all(c.time > 0 for c in devices)  # each device's real time
    assert sum(c.time for c in devices) > 0
    broken = [c for c in cases if not c.is_passed]
    assert all(r._tag == "failure" and r.type == "expectation" for c in broken for r in c.result)
    # Jenkins (junit-4 schema): testsuite has name and tests; failure/error take type and message
    root = ET.parse(junit).getroot()
    for s in root.iter("testsuite"):
        assert {"name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname"} <= set(s.attrib)
        assert time.strptime(s.get("timestamp"), "%Y-%m-%dT%H:%M:%S")
    for tag in ("failure", "error"):
        for el in root.iter(tag):
            assert el.get("type") and el.get("message") is not None


# ------------------------------------------------------------------------------------- signals


LONG_SCENARIO = """\
name = "long"
duration = "60s"

[[devices]]
name = "early"
profile = "smartphone"
count = 2
protocol = "dm12"

[[devices]]
name = "late"
profile = "smartphone"
count = 2
protocol = "dm12"

[[sessions]]
devices = "early"
every = "0.3s"

[[sessions]]
devices = "late"
at = "50s"
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_writes_the_partial_reports_and_exits_128_plus_signal(sig, code, tmp_path, server):
    path = tmp_path / "long.toml"
    path.write_text(LONG_SCENARIO)
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    proc = subprocess.Popen([*EMULATOR, "run", "--server", server, "--scenario", str(path), "--report", str(report),
                             "--junit", str(junit)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        for _ in range(200):  # progress lines: wait until sessions have completed
            line = proc.stderr.readline() if proc.stderr else ""
            if not line or " 0 completed" not in line and "completed" in line:
                break
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert f"INTERRUPTED by {sig.name}" in out and "not run" in out
    data = json.loads(report.read_text())
    assert data["interrupted"] == sig.name and not data["passed"]
    assert data["sessions_completed"] >= 1 and data["sessions_not_run"] >= 2
    root = ET.parse(junit).getroot()
    skipped = [c for c in root.iter("testcase") if c.find("skipped") is not None]
    assert {c.get("classname") for c in skipped} == {"long.late"} and len(skipped) == 2
    (stop,) = [c for c in root.iter("testcase") if c.get("name") == "interrupted"]
    assert stop.find("error").get("type") == "interrupted"


# -------------------------------------------------------------------------------- README: Use in CI


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def _blocks(section: str, lang: str) -> list[str]:
    out, inside, current = [], False, []
    for line in section.splitlines():
        if not inside and line.strip() == f"```{lang}":
            inside, current = True, []
        elif inside and line.strip() == "```":
            inside = False
            out.append("\n".join(current))
        elif inside:
            current.append(line)
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_use_in_ci_job_runs_as_written(tmp_path):
    """The README's CI job, run by bash line for line (its port 8700 made a free one), leaves the
    report, the JUnit file and the traffic folder; the GitLab, GitHub and Jenkins snippets run the
    same commands."""
    section = _section((ROOT / "README.md").read_text(), "Use in CI")
    (job,) = _blocks(section, "sh")
    commands = [line for line in job.splitlines() if line.strip()]
    assert any(line.startswith(".venv/bin/dm-emulator run ") for line in commands)
    for lang in ("yaml", "groovy"):
        for snippet in _blocks(section, lang):
            for line in commands[1:]:  # the token is set the way each CI system sets variables
                assert line in snippet, (lang, line)
    (tmp_path / ".venv").symlink_to(sys.prefix)
    port = str(_free_port())
    script = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + job.replace("8700", port)
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "fleet.json").read_text())
    assert report["passed"] and report["scenario"] == "demo"
    assert ET.parse(tmp_path / "fleet.xml").getroot().tag == "testsuites"
    assert (tmp_path / "traffic").is_dir()
