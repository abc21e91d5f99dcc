"""`dm-emulator bench --json` as a user runs it: a server process, a few devices, every figure there."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

KEYS = (
    "sessions_per_s", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "messages_per_s", "cpu_s_per_session",
    "peak_memory_bytes", "memory_per_device_bytes", "loopback_ceiling_per_s", "aiohttp_ceiling_per_s",
    "ratio_to_ceiling",
    "emulator_cpu_ms_per_session", "server_cpu_ms_per_session", "round_trips_per_s",
    "idle_memory_per_device_bytes", "messages_share_of_ceiling",
)  # fmt: skip


def test_bench_json_has_every_figure_as_a_positive_number():
    proc = subprocess.run([sys.executable, "-m", "emulator", "bench", "--devices", "4", "--idle-devices", "3",
                           "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    for key in KEYS:
        assert isinstance(figures[key], int | float) and not isinstance(figures[key], bool), key
        assert figures[key] > 0, (key, figures[key])
    # 4 devices x (one DM 1.2 + one DM 2.0 session), all of them complete
    assert figures["sessions_completed"] == 8 and figures["sessions_failed"] == 0
    assert figures["latency_p50_ms"] <= figures["latency_p95_ms"] <= figures["latency_p99_ms"]
    assert figures["messages"] >= 8 * 4  # at least two round trips per session
    # every target, judged or (at sizes below the targets') not, with the figure reached
    names = [t["target"] for t in figures["targets"]]
    assert names == ["sessions per second", "emulator CPU per session", "server CPU per session",
                     "DM messages/s vs the loopback ceiling", "memory per idle device"]
    assert figures["targets"][0]["met"] is None and figures["targets"][-1]["met"] is None  # 4 and 3 devices
    assert all(t["met"] in (True, False) for t in figures["targets"][1:4])


def test_bench_table_names_the_figures():
    proc = subprocess.run([sys.executable, "-m", "emulator", "bench", "--devices", "2", "--idle-devices", "2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for words in ("sessions per second", "session latency", "memory per device", "ratio to ceiling",
                  "reference server process", "target: emulator CPU per session", "idle fleet"):
        assert words in proc.stdout


def _bench(*args: str, devices: int = 4) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emulator", "bench", "--devices", str(devices), "--idle-devices", "3",
                           *args], capture_output=True, text=True, timeout=120)


def test_a_missed_target_comes_with_the_profile_of_both_processes():
    # no session costs 0 ms: both CPU targets missed; 30 devices: enough CPU for a few dozen samples
    proc = _bench("--json", "--target-cpu-ms", "0", devices=30)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    missed = {t["target"]: t for t in figures["targets"] if t["met"] is False}
    assert missed["emulator CPU per session"]["profile"] == ["emulator"]
    assert missed["server CPU per session"]["profile"] == ["server"]
    assert missed["emulator CPU per session"]["gap"] == "above the wanted 0"
    profile = figures["profile"]
    assert profile["devices"] == 30 and profile["sessions"] == 60  # new devices, a run of its own
    for side in ("emulator", "server"):
        summary = profile[side]
        assert summary["samples"] > 0, side
        assert abs(sum(summary["areas"].values()) - 1) < 0.01, (side, summary["areas"])
        assert summary["top"] and all(t["share"] > 0 for t in summary["top"])
        # milliseconds from the measured run's CPU, not the profiled one's
        cpu = figures[f"{side}_cpu_ms_per_session"]
        assert summary["cpu_ms_per_session"] == cpu
        assert abs(sum(summary["areas_ms_per_session"].values()) - cpu) < 0.01 * cpu + 0.005
    # the DM sessions' own work shows up on both sides, not only the loop and the bench
    assert profile["server"]["areas"]["codec"] + profile["server"]["areas"]["engine"] > 0


def test_the_table_prints_the_profile_under_the_missed_targets():
    proc = _bench("--target-cpu-ms", "0")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "MISSED" in out and "closest reached" in out
    assert out.index("target: emulator CPU per session") < out.index("profile of what is left")
    for words in ("emulator process", "reference server process", "top functions by own time", "ms/session"):
        assert words in out, words


def test_no_profile_when_every_judged_target_is_met():
    proc = _bench("--json", "--target-cpu-ms", "1000", "--target-ceiling-percent", "0")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert all(t["met"] in (True, None) for t in figures["targets"])
    assert "profile" not in figures
    table = _bench("--target-cpu-ms", "1000", "--target-ceiling-percent", "0")
    assert "profile of what is left" not in table.stdout and "MISSED" not in table.stdout


def test_profile_devices_0_turns_the_profile_off():
    proc = _bench("--json", "--target-cpu-ms", "0", "--profile-devices", "0")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert any(t["met"] is False for t in figures["targets"]) and "profile" not in figures


@pytest.mark.parametrize("option", ["--target-cpu-ms", "--target-sessions-per-s", "--target-ceiling-percent",
                                    "--target-idle-kib"])
@pytest.mark.parametrize("value", ["-1", "-0.001", "nan", "inf", "abc", ""])
def test_a_target_that_is_no_finite_number_0_or_more_is_refused(option, value):
    proc = subprocess.run([sys.executable, "-m", "emulator", "bench", option, value],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and option in proc.stderr and "Traceback" not in proc.stderr


def test_profile_devices_below_0_is_refused():
    proc = subprocess.run([sys.executable, "-m", "emulator", "bench", "--profile-devices", "-1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--profile-devices" in proc.stderr


def test_the_bench_servers_profiler_stops_only_once_started():
    from emulator.commands.bench import PROFILE_START_PATH, PROFILE_STOP_PATH, bench_get, server_process

    with server_process() as url:
        assert asyncio.run(bench_get(url, PROFILE_STOP_PATH)) is None  # 409: not profiling
        assert asyncio.run(bench_get(url, PROFILE_START_PATH)) == b"profiling"
        assert asyncio.run(bench_get(url, PROFILE_START_PATH)) == b"profiling"  # one profiler, not two
        summary = json.loads(asyncio.run(bench_get(url, PROFILE_STOP_PATH)) or b"null")
        assert set(summary) == {"samples", "profiled_cpu_s", "areas", "top"}
        assert asyncio.run(bench_get(url, PROFILE_STOP_PATH)) is None


def test_an_idle_devices_memory_profile_sums_to_its_bytes():
    from emulator.commands.bench import idle_memory_profile

    summary = idle_memory_profile(20)
    assert summary["devices"] == 20 and summary["bytes_per_device"] > 1024
    assert abs(sum(summary["areas"].values()) - 1) < 0.01
    assert abs(sum(summary["areas_bytes_per_device"].values()) - summary["bytes_per_device"]) <= len(summary["areas"])
    assert max(summary["areas"], key=summary["areas"].get) == "tree"  # an idle device is mostly its tree
    assert summary["top"][0]["bytes_per_device"] > 0
