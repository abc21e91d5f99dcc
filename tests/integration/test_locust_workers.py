"""`dm-emulator locust` beyond one worker: a real master and two workers on loopback.

Each worker numbers its devices inside its own share of the profile's identity space
(emulator.device.identity.share), so the devices the reference server sees are distinct and valid;
a user that cannot start (no identity left, a bad profile) is a failure in Locust's statistics, not
a silent absence. Locust runs only in child processes (it patches its process for gevent).
"""

from __future__ import annotations

import csv
import importlib.util
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from emulator.commands.bench import server_process
from emulator.device.identity import is_valid_imei

HAS_LOCUST = importlib.util.find_spec("locust") is not None  # never import it: that patches for gevent
pytestmark = pytest.mark.skipif(not HAS_LOCUST, reason="locust is not installed (pip install -e '.[test]')")
TOKEN = "locust-workers-test"
LOCUST = [sys.executable, "-m", "emulator", "locust", "--loglevel", "WARNING"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stats(prefix: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def _run_master_and_workers(url: str, prefix: Path, *extra: str, users: int = 20, workers: int = 2,
                            run_time: str = "10s") -> tuple[subprocess.CompletedProcess[str], list[str]]:
    port = _free_port()
    master = subprocess.Popen(
        [*LOCUST, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
         "--expect-workers", str(workers), "--expect-workers-max-wait", "60", "--headless", "-u", str(users),
         "-r", "10", "--run-time", run_time, "--host", url, "--csv", str(prefix), "--only-summary",
         "--stop-timeout", "30", *extra],  # users end the session they are in: its requests are counted
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs = [subprocess.Popen([*LOCUST, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(workers)]
    try:
        out, err = master.communicate(timeout=120)
    finally:
        logs = []
        for p in procs:
            try:
                logs.append(p.communicate(timeout=30)[1])
            except subprocess.TimeoutExpired:
                p.kill()
                logs.append(p.communicate()[1])
    return subprocess.CompletedProcess(master.args, master.returncode, out, err), logs


def test_master_and_two_workers_give_distinct_devices(tmp_path):
    prefix = tmp_path / "run"
    with server_process(admin_token=TOKEN) as url:
        master, worker_logs = _run_master_and_workers(url, prefix)
        seen = httpx.get(url + "/admin/devices", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()
    assert master.returncode == 0, master.stderr[-3000:] + "\n".join(log[-1500:] for log in worker_logs)
    devices = seen["devices"]
    assert len(devices) == 20 == len(set(devices)), devices  # 20 users, 20 distinct devices
    imeis = [d.removeprefix("IMEI:") for d in devices]
    assert all(is_valid_imei(i) for i in imeis), imeis
    # two shares of the 6-digit serial space: worker 0 from serial 0, worker 1 from serial 500,000
    serials = sorted(int(i[8:14]) for i in imeis)
    assert serials[0] < 500_000 <= serials[-1], serials
    stats = _stats(prefix)
    aggregated = stats[("", "Aggregated")]
    assert int(aggregated["Request Count"]) > 0 and int(aggregated["Failure Count"]) == 0, aggregated
    assert ("DM device", "start") not in stats


def test_more_workers_than_identities_is_a_clear_error_at_start(tmp_path):
    """A profile with 10 identities (serial width 1) cannot be shared by 11 workers: the master says so."""
    profile = tmp_path / "tiny.toml"
    profile.write_text((Path(__file__).resolve().parents[2] / "profiles" / "smartphone.toml").read_text()
                       .replace("width = 7", "width = 1").replace('scheme = "IMEI"', 'scheme = "SN"'))
    port = _free_port()
    proc = subprocess.run(
        [*LOCUST, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
         "--expect-workers", "11", "--headless", "-u", "1", "-r", "1", "--run-time", "1s",
         "--host", "http://127.0.0.1:9", "--dm-profile", str(profile)],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "11 workers cannot share the identities" in proc.stderr


def test_a_user_that_cannot_start_is_a_failure(tmp_path):
    """One local process, a profile with 3 identities, 5 users: 3 run, 2 fail to start, and say why."""
    # Locust counts --run-time from before its ~1.5 s of imports; 8 s leaves a loaded machine room to
    # spawn all five users before the run ends.
    profile = tmp_path / "three.toml"
    profile.write_text((Path(__file__).resolve().parents[2] / "profiles" / "smartphone.toml").read_text()
                       .replace("width = 7", "width = 1").replace('scheme = "IMEI"', 'scheme = "SN"')
                       .replace("[identity]", "[identity]\nstart = 7"))
    prefix = tmp_path / "run"
    with server_process() as url:
        proc = subprocess.run(
            [*LOCUST, "--headless", "-u", "5", "-r", "5", "--run-time", "8s", "--host", url, "--csv", str(prefix),
             "--only-summary", "--dm-profile", str(profile), "--dm-protocols", "dm12"],
            capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]  # Locust's exit code when any request failed
    start = _stats(prefix)[("DM device", "start")]
    assert (int(start["Request Count"]), int(start["Failure Count"])) == (2, 2), start
    failures = Path(f"{prefix}_failures.csv").read_text()
    assert "identities" in failures and "used up" in failures, failures
