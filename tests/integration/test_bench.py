"""`dm-emulator bench --json` as a user runs it: a server process, a few devices, every figure there."""

from __future__ import annotations

import json
import subprocess
import sys

KEYS = (
    "sessions_per_s", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "messages_per_s", "cpu_s_per_session",
    "peak_memory_bytes", "memory_per_device_bytes", "loopback_ceiling_per_s", "ratio_to_ceiling",
)  # fmt: skip


def test_bench_json_has_every_figure_as_a_positive_number():
    proc = subprocess.run([sys.executable, "-m", "emulator", "bench", "--devices", "4", "--json"],
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


def test_bench_table_names_the_figures():
    proc = subprocess.run([sys.executable, "-m", "emulator", "bench", "--devices", "2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for words in ("sessions per second", "session latency", "memory per device", "ratio to ceiling"):
        assert words in proc.stdout
