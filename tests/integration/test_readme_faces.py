"""Every command line the README shows, run as a user runs it (issue 13, "Tests of the faces").

The README's ```sh blocks run line by line, exactly as written, in a scratch folder laid out like
a checkout (``.venv``, ``assets/``, ``examples/`` linked from the repository), with one change: the
README's fixed port 8700 becomes a free one (the README says so). A line ending in ``&`` and a
``dm-emulator server`` line start in the background and are waited for until the server prints its
admin-token line; the token it prints goes to ``$TOKEN`` for the lines after it. ``export NAME=value``
sets the environment of the lines after it, as in a shell. Each block starts afresh.

The command table's commands are run with concrete arguments by the tests :data:`COVERED` names
(here or in the command's own test module). :func:`test_every_readme_command_is_covered` fails when
the README shows a line or a command that no test runs, or names a test that does not exist.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DM_EMULATOR = Path(sys.prefix) / "bin" / "dm-emulator"
pytestmark = pytest.mark.skipif(not DM_EMULATOR.is_file(),
                                reason="dm-emulator is not installed in this environment (pip install -e .)")

THIS = "tests/integration/test_readme_faces.py"
CI_JOB = "tests/integration/test_run_ci.py::test_readme_use_in_ci_job_runs_as_written"
# README line (continuations joined) or command-table command -> the test that runs it.
COVERED: dict[str, str] = {
    # Set up
    "scripts/dev start": f"{THIS}::test_dev_start_without_a_display_says_what_to_do",
    # Your own profile
    ".venv/bin/dm-emulator profiles new my-phone --from smartphone": f"{THIS}::test_your_own_profile",
    ".venv/bin/dm-emulator respond --profile ./my-phone.toml --message assets/examples/dm2/get.json":
        f"{THIS}::test_your_own_profile",
    # Try it without the window
    "export DM_EMULATOR_ADMIN_TOKEN=try-it   # the server's admin token; the demo scenario asks it to notify devices":
        f"{THIS}::test_try_it_without_the_window",
    ".venv/bin/dm-emulator server --port 8700 &": f"{THIS}::test_try_it_without_the_window",
    ".venv/bin/dm-emulator run --server http://127.0.0.1:8700 --profile smartphone --count 20 --protocol dm12":
        f"{THIS}::test_try_it_without_the_window",
    ".venv/bin/dm-emulator run --server http://127.0.0.1:8700 --profile smartphone --count 20 --protocol dm2":
        f"{THIS}::test_try_it_without_the_window",
    ".venv/bin/dm-emulator run --server http://127.0.0.1:8700 --scenario demo --report run.json --junit run.xml":
        f"{THIS}::test_try_it_without_the_window",
    ".venv/bin/dm-emulator respond --profile smartphone --message assets/examples/dm12/get.xml":
        f"{THIS}::test_try_it_without_the_window",
    ".venv/bin/dm-emulator respond --profile smartphone --message assets/examples/dm12/get.wbxml":
        f"{THIS}::test_try_it_without_the_window",
    ".venv/bin/dm-emulator respond --profile smartphone --message assets/examples/dm2/get.json":
        f"{THIS}::test_try_it_without_the_window",
    # Accounts for clients the server did not ship
    ".venv/bin/dm-emulator server --port 8700 --accounts examples/accounts/libdmclient.toml":
        f"{THIS}::test_accounts_for_a_third_party_client",
    'curl -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d \'{"server_id": "funambol", '
    '"dev_id": "DMCtest", "client_user": "funambol", "client_secret": "funambol", "client_auth": "basic", '
    '"server_secret": "srvpwd", "server_auth": "md5", "server_nonce": ""}\' http://127.0.0.1:8700/admin/accounts':
        f"{THIS}::test_accounts_for_a_third_party_client",
    # Firmware campaigns
    "export DM_EMULATOR_ADMIN_TOKEN=campaign-token   # the run asks the server for the campaign with it":
        f"{THIS}::test_firmware_campaign",
    ".venv/bin/dm-emulator run --server http://127.0.0.1:8700 --scenario fumo-campaign --report campaign.json":
        f"{THIS}::test_firmware_campaign",
    # Campaign steps
    "export DM_EMULATOR_ADMIN_TOKEN=steps-token   # the curl lines send it": f"{THIS}::test_campaign_steps",
    'curl -H "Authorization: Bearer $DM_EMULATOR_ADMIN_TOKEN" -d \'{"id": "notes-2.4", "steps": [ {"kind": '
    '"scomo.install", "package": "notes.bin", "size": 65536, "version": "2.4.0", "name": "notes"}, {"kind": '
    '"scomo.activate", "name": "notes"}, {"kind": "scomo.remove", "name": "notes"}]}\' '
    'http://127.0.0.1:8700/admin/campaigns': f"{THIS}::test_campaign_steps",
    'curl -H "Authorization: Bearer $DM_EMULATOR_ADMIN_TOKEN" -d \'{"id": "lost-phones", "steps": [ {"kind": '
    '"lawmo.lock"}, {"kind": "lawmo.unlock"}, {"kind": "lawmo.wipe", "wipe": ["Contacts"]}]}\' '
    'http://127.0.0.1:8700/admin/campaigns': f"{THIS}::test_campaign_steps",
    ".venv/bin/dm-emulator run --server http://127.0.0.1:8700 --scenario examples/scenarios/phones-both.toml":
        f"{THIS}::test_campaign_steps",
    'curl -H "Authorization: Bearer $DM_EMULATOR_ADMIN_TOKEN" http://127.0.0.1:8700/admin/campaigns/lost-phones':
        f"{THIS}::test_campaign_steps",
    # Use in CI (the job runs as one bash script there, as a CI system runs it)
    "export DM_EMULATOR_ADMIN_TOKEN=ci-secret   # shared by the server and the run (the demo notifies devices)":
        CI_JOB,
    "sleep 2": CI_JOB,  # (the server line is the one "Try it without the window" runs too)
    ".venv/bin/dm-emulator run --server http://127.0.0.1:8700 --scenario demo --retry 2 --report fleet.json "
    "--junit fleet.xml --traffic-dir traffic": CI_JOB,
    # Screenshots
    'xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/dm-emulator gui --screenshot docs/screenshot-demo.png':
        f"{THIS}::test_gui_screenshot_under_xvfb",
    # The command table
    "dm-emulator": f"{THIS}::test_gui_screenshot_under_xvfb",  # the same demo default, then a picture
    "dm-emulator gui": f"{THIS}::test_gui_screenshot_under_xvfb",
    "scripts/screenshots docs": f"{THIS}::test_readme_screenshots_script_takes_its_five_pictures",
    "dm-emulator server": "tests/integration/test_server_command.py::test_server_command_prints_its_url_serves_and_stops_on_sigterm",
    "dm-emulator run": f"{THIS}::test_try_it_without_the_window",
    "dm-emulator respond": f"{THIS}::test_try_it_without_the_window",
    "dm-emulator tree export": f"{THIS}::test_tree_export_then_import",
    "dm-emulator tree import": f"{THIS}::test_tree_export_then_import",
    "dm-emulator profiles": f"{THIS}::test_profiles_list_and_reference",
    "dm-emulator profiles new": f"{THIS}::test_your_own_profile",
    "dm-emulator bench": "tests/integration/test_bench.py::test_bench_json_has_every_figure_as_a_positive_number",
    "dm-emulator locust": "tests/integration/test_locust_workers.py::test_master_and_two_workers_give_distinct_devices",
}
# README lines no test runs, and why; kept to what cannot run inside the suite.
NOT_RUN = {
    "scripts/dev test": "the test suite itself (it would run this test again); CI runs it (.ci/run)",
}
PORT = "8700"


# --------------------------------------------------------------------------- reading the README


def sh_blocks(text: str) -> list[list[str]]:
    """The command lines of each ```sh block; a line ending in a backslash goes on with the next."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    pending = ""
    for line in text.splitlines():
        if current is None:
            if line.strip() == "```sh":
                current = []
            continue
        if line.strip() == "```":
            blocks.append(current)
            current = None
            continue
        joined = (pending + " " + line.strip()) if pending else line.strip()
        if joined.endswith("\\"):
            pending = joined[:-1].strip()
            continue
        try:
            shlex.split(joined, comments=True)
        except ValueError:  # a quoted string goes on on the next line
            pending = joined
            continue
        pending = ""
        if joined:
            current.append(joined)
    return blocks


def table_commands(text: str) -> list[str]:
    """The command table's commands: the words before the first option or argument."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^\| `(dm-emulator[^`]*)` \|", line)
        if m:
            words = []
            for word in m.group(1).replace("\\|", "|").split():
                if word.startswith(("-", "[")) or word.isupper():
                    break
                words.append(word)
            out.append(" ".join(words))
    return out


def test_every_readme_command_is_covered():
    text = README.read_text()
    shown = [line for block in sh_blocks(text) for line in block] + table_commands(text)
    uncovered = [line for line in shown if line not in COVERED and line not in NOT_RUN]
    assert not uncovered, "README lines no test runs (add them to COVERED with the test that runs them):\n" + \
        "\n".join(uncovered)
    stale = [line for line in [*COVERED, *NOT_RUN] if line not in shown]
    assert not stale, "COVERED names lines the README no longer shows:\n" + "\n".join(stale)
    for test in set(COVERED.values()):
        path, _, name = test.partition("::")
        assert f"def {name}(" in (ROOT / path).read_text(), f"{test} does not exist"


def test_the_parsers_read_what_a_user_sees():
    text = ("a\n```sh\nx --a \\\n  --b\ny &\nc -d '{\"a\": 1,\n  \"b\": 2}' u\n```\n```toml\nz = 1\n```\n"
            "| `dm-emulator tree export --out FILE` | t |\n")
    assert sh_blocks(text) == [["x --a --b", "y &", "c -d '{\"a\": 1, \"b\": 2}' u"]]
    assert table_commands(text) == ["dm-emulator tree export"]
    assert table_commands("| `dm-emulator run --server URL --profile NAME\\|FILE` | x |") == ["dm-emulator run"]


# --------------------------------------------------------------------------- running it as written


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Shell:
    """A user at a terminal in a checkout: runs README lines as written, one after the other."""

    cwd: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    stack: ExitStack = field(default_factory=ExitStack)
    servers: list[tuple[str, list[str]]] = field(default_factory=list)  # (line, what it printed)

    def line(self, line: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        line = line.replace(PORT, str(self.port))
        if m := re.fullmatch(r"export (\w+)=(\S+)(\s+#.*)?", line):
            self.env[m.group(1)] = m.group(2)
            return subprocess.CompletedProcess(line, 0, "", "")
        if line.endswith("&") or re.search(r"\bdm-emulator server\b", line):
            printed = self.stack.enter_context(_background(line.rstrip("& "), self.cwd, self.env))
            self.servers.append((line, printed))
            token = next((m.group(1) for p in printed if (m := re.search(r"Bearer (\S+)$", p))), None)
            if token and not token.startswith("<"):
                self.env["TOKEN"] = token
            return subprocess.CompletedProcess(line, 0, "\n".join(printed), "")
        return subprocess.run(["bash", "-c", line], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def block(self, lines: list[str]) -> dict[str, subprocess.CompletedProcess[str]]:
        return {line: self.line(line) for line in lines}


@contextmanager
def _background(command: str, cwd: Path, env: dict[str, str]) -> Iterator[list[str]]:
    """Start a server line; yield what it printed up to its admin-token line; stop it with SIGTERM."""
    proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    printed: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"{command} ended: {''.join(printed)}{proc.stderr.read()}")
            printed.append(line.rstrip("\n"))
            if "admin API" in line or "Bearer" in line:
                break
        yield printed
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    """A scratch checkout: the repository's .venv, assets/ and examples/ linked, a user's environment."""
    for name in ("assets", "examples", "profiles"):
        if (ROOT / name).exists():
            (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DM_EMULATOR", "PYTEST"))}
    sh = Shell(tmp_path, env=env)
    with sh.stack:
        yield sh


def _block_with(first: str) -> list[str]:
    blocks = [b for b in sh_blocks(README.read_text()) if any(line.startswith(first) for line in b)]
    assert len(blocks) == 1, f"expected one README block with {first!r}"
    return blocks[0]


# --------------------------------------------------------------------------- the blocks


def test_dev_start_without_a_display_says_what_to_do():
    """`scripts/dev start` as written, on a machine without a display: exit 2 and the README's advice."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run(["bash", "-c", "scripts/dev start"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "xvfb-run -a" in proc.stderr and "dm-emulator run" in proc.stderr


def test_your_own_profile(shell: Shell):
    results = shell.block(_block_with(".venv/bin/dm-emulator profiles new"))
    new, respond = results.values()
    assert new.returncode == 0, new.stderr
    assert "wrote ./my-phone.toml" in new.stdout
    assert (shell.cwd / "my-phone.toml").read_text().startswith("# Device profile 'my-phone'")
    assert respond.returncode == 0, respond.stderr
    status = json.loads(respond.stdout)["Status"]
    assert status[0]["sc"] == 200 and status[0]["MOS"][0]["MOData"] == {"FwV": "X5P-BL-2.14.07"}


def test_try_it_without_the_window(shell: Shell):
    results = shell.block(_block_with("export DM_EMULATOR_ADMIN_TOKEN=try-it"))
    (server_line, printed), = shell.servers
    assert printed[0] == f"reference DM server on http://127.0.0.1:{shell.port}", printed
    for line, proc in results.items():
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    runs = {line.split("--protocol ")[-1] if "--protocol" in line else "scenario": proc
            for line, proc in results.items() if " run " in line}
    for protocol in ("dm12", "dm2"):
        assert f"20 devices ({protocol})" in runs[protocol].stdout and ", 0 failed," in runs[protocol].stdout
    report = json.loads((shell.cwd / "run.json").read_text())
    assert report and "problem" not in runs["scenario"].stdout
    junit = etree.parse(str(shell.cwd / "run.xml")).getroot()
    assert junit.iter("testcase") and not list(junit.iter("failure")) and not list(junit.iter("error"))
    answers = [proc.stdout for line, proc in results.items() if " respond " in line]
    xml, wbxml, dm2 = answers
    assert "<Data>Nordwave</Data>" in xml and "<Data>NW-X5 Pro</Data>" in xml
    assert xml == wbxml  # the same package in WBXML gets the same (XML) answer
    assert json.loads(dm2)["Status"][0]["sc"] == 200


def test_accounts_for_a_third_party_client(shell: Shell):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed here")
    shell.block(_block_with(".venv/bin/dm-emulator server --port 8700 --accounts"))
    results = shell.block(_block_with('curl -H "Authorization: Bearer $TOKEN"'))  # the next block: the same account through the admin API
    (_, printed), = shell.servers
    assert any(f"account: DMCtest as funambol (basic) at http://127.0.0.1:{shell.port}/dm12/funambol, "
               "server funambol (md5)" in p for p in printed), printed
    assert "TOKEN" in shell.env, printed
    (curl,) = [p for line, p in results.items() if line.startswith("curl")]
    assert curl.returncode == 0, curl.stderr
    assert json.loads(curl.stdout)["accounts"][0]["dev_id"] == "DMCtest", curl.stdout


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (filtered) scanlines of a PNG: enough to tell a blank picture."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    return size[0], size[1], zlib.decompress(idat)


def test_png_check_tells_a_blank_picture():
    raw = b"".join(b"\x00" + b"\xff\xff\xff" * 4 for _ in range(4))
    chunk = zlib.compress(raw)
    png = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
           + b"\0\0\0\0" + struct.pack(">I", len(chunk)) + b"IDAT" + chunk + b"\0\0\0\0")
    width, height, pixels = png_pixels(png)
    assert (width, height) == (4, 4) and len(set(pixels)) <= 2  # blank: what the test below refuses


def test_gui_screenshot_under_xvfb(shell: Shell):
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed here (Debian: apt-get install xvfb xauth)")
    (shell.cwd / "docs").mkdir()
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        shell.env.pop(name, None)
    (line,) = _block_with("xvfb-run")
    proc = shell.line(line, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    picture = shell.cwd / "docs" / "screenshot-demo.png"
    width, height, pixels = png_pixels(picture.read_bytes())
    assert width >= 800 and height >= 500
    assert len(set(pixels)) > 32, "the screenshot is blank"


def test_readme_screenshots_script_takes_its_five_pictures(tmp_path: Path):
    """`scripts/screenshots docs` as written, in a folder that holds the clone's scripts and venv (so the
    pictures land there, not over the repository's own docs/)."""
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed here (Debian: apt-get install xvfb xauth)")
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(["bash", "-c", "scripts/screenshots docs"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("waiting", "failed", "plots", "value-history", "campaign"):
        width, height, pixels = png_pixels((tmp_path / "docs" / f"screenshot-{name}.png").read_bytes())
        assert (width, height) == (1280, 780), name  # the README's pictures: a 1280x800 screen, title bar off
        assert len(set(pixels)) > 32, f"the {name} screenshot is blank"


def test_tree_export_then_import(shell: Shell):
    export = shell.line(".venv/bin/dm-emulator tree export --profile smartphone --out phone.xml")
    assert export.returncode == 0, export.stderr
    tree = etree.parse(str(shell.cwd / "phone.xml")).getroot()
    assert tree.tag.endswith("MgmtTree") and b"********" in etree.tostring(tree)  # secrets masked
    imported = shell.line(".venv/bin/dm-emulator tree import phone.xml --workspace ws")
    assert imported.returncode == 0, imported.stderr
    assert (shell.cwd / "ws").is_dir() and any((shell.cwd / "ws").iterdir())


def test_profiles_list_and_reference(shell: Shell):
    listed = shell.line(".venv/bin/dm-emulator profiles")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^smartphone\s+dm2\+dm12\s", listed.stdout, re.M)
    assert "path to a .toml file" in listed.stderr
    reference = shell.line(".venv/bin/dm-emulator profiles --reference")
    assert reference.returncode == 0 and reference.stdout == (ROOT / "docs" / "profiles.md").read_text()


CAMPAIGN_RUN = ".venv/bin/dm-emulator run --server http://127.0.0.1:8700 --scenario fumo-campaign --report campaign.json"


def test_firmware_campaign(shell: Shell):
    """The "Firmware campaigns" block, with one change: the run line's 1,000 devices become 40 (the
    scenario copied into the scratch folder and scaled, its knobs faster), so the suite stays quick;
    the README shows the full run's output."""
    lines = _block_with("export DM_EMULATOR_ADMIN_TOKEN=campaign-token")
    assert CAMPAIGN_RUN in lines
    text = (ROOT / "assets" / "scenarios" / "fumo-campaign.toml").read_text()
    for old, new in (("count = 500", "count = 20"), ('ramp_up = "20s"', 'ramp_up = "1s"'),
                     ("install_s = 2", "install_s = 0.05"), ("reboot_s = 1", "reboot_s = 0.05"),
                     ("bearer_kbps = 2000", "bearer_kbps = 50000")):
        assert old in text, old
        text = text.replace(old, new)
    (shell.cwd / "campaign-small.toml").write_text(text)
    results = shell.block([line.replace("--scenario fumo-campaign", "--scenario campaign-small.toml")
                           for line in lines])
    for line, proc in results.items():
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    run = next(proc for line, proc in results.items() if line.startswith(".venv/bin/dm-emulator run "))
    assert "fumo: 40 operations: 200 Successful x" in run.stdout, run.stdout
    assert "mean time per state: 30 " in run.stdout
    report = json.loads((shell.cwd / "campaign.json").read_text())
    assert sum(report["operations"]["fumo"]["results"].values()) == 40


def test_campaign_steps(shell: Shell):
    """The "Campaign steps" block as written: a SCOMO and a lock/wipe campaign posted with curl, ten
    phones (both protocols) run both, and the last curl shows every phone's three LAWMO results."""
    results = shell.block(_block_with("export DM_EMULATOR_ADMIN_TOKEN=steps-token"))
    for line, proc in results.items():
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    posted = [json.loads(proc.stdout) for line, proc in results.items() if " -d '" in line]
    assert [(p["id"], p["devices"], len(p["steps"])) for p in posted] == [("notes-2.4", "*", 3), ("lost-phones", "*", 3)]
    run = next(proc for line, proc in results.items() if " run " in line)
    assert "phones-both: 70/70 sessions completed, 0 failed" in run.stdout, run.stdout
    assert "lawmo: 30 operations: 1200 Operation Succeeded x30" in run.stdout, run.stdout
    assert "scomo: 30 operations: 1200 Request Succeeded x30" in run.stdout, run.stdout
    shown = json.loads(list(results.values())[-1].stdout)
    assert shown["states"]["reported"] == 10 and shown["results"] == {"1200": 30}
    assert {r["protocol"] for r in shown["runs"]} == {"dm2", "dm12"}
    assert all(r["results"] == [["lawmo.lock", 1200], ["lawmo.unlock", 1200], ["lawmo.wipe", 1200]]
               for r in shown["runs"])
