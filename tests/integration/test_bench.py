"""`dm-emulator bench --json` as a user runs it: a server process, a few devices, every figure there."""

from __future__ import annotations

import json
import subprocess
import sys

KEYS = (
    "sessions_per_s", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "messages_per_s", "cpu_s_per_session",
    "peak_memory_bytes", "memory_per_device_bytes", "loopback_ceiling_per_s", "ratio_to_ceiling",
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
