"""The bench's profile: what a missed target prints, and that its areas account for all of the CPU."""

from __future__ import annotations

import json
import time

import pytest

from emulator.commands.bench import PROFILED_BY, Targets, check_targets, missed_profiles
from emulator.commands.bench_profile import AREAS, Sampler, area_label, func_name, profile_lines, with_ms
from emulator.tree.uri import UriLimits, check_limits  # of an area ("tree") the sampler must place

FIGURES = {"devices": 10_000, "sessions": 20_000, "sessions_failed": 0, "sessions_per_s": 500.0,
           "emulator_cpu_ms_per_session": 1.8, "server_cpu_ms_per_session": 0.3, "messages_share_of_ceiling": 0.2,
           "messages_per_s": 2_000.0, "loopback_ceiling_per_s": 10_000.0, "ratio_to_ceiling": 0.1,
           "idle_devices": 100_000, "idle_memory_per_device_bytes": 22 * 1024}


def test_each_missed_target_names_its_gap_and_profile():
    targets = {t["target"]: t for t in check_targets(FIGURES)}
    assert targets["server CPU per session"]["met"] is True and "profile" not in targets["server CPU per session"]
    assert targets["emulator CPU per session"]["gap"] == "4.5x the wanted figure"
    assert targets["sessions per second"]["gap"] == "25% of the wanted figure"
    assert targets["memory per idle device"]["profile"] == ["memory"]
    assert missed_profiles(list(targets.values())) == {"emulator", "server", "memory"}
    assert set(PROFILED_BY) == set(targets)


def test_targets_set_on_the_command_line_judge_the_same_figures():
    lenient = Targets(sessions_per_s=400, cpu_ms=2, ceiling_percent=20, idle_kib=22)  # each exactly at or past it
    assert all(t["met"] is True for t in check_targets(FIGURES, lenient))
    assert missed_profiles(check_targets(FIGURES, lenient)) == set()


SEGMENTS, LIMITS = ("segment",) * 2000, UriLimits(max_seg_len=100)


def _spin(seconds: float) -> int:
    end, n = time.process_time() + seconds, 0
    while time.process_time() < end:
        for _ in range(20):
            check_limits(SEGMENTS, LIMITS, "./x")
            n += 1
    return n


@pytest.mark.skipif(not Sampler.available(), reason="no ITIMER_PROF on this platform")
def test_the_sampler_sees_cpu_by_area_and_not_waiting():
    sampler = Sampler()
    sampler.start()
    try:
        _spin(0.4)
        busy = sampler.samples
        time.sleep(0.3)  # waiting: no CPU, so no samples
    finally:
        sampler.stop()
    summary = sampler.summary()
    # one a millisecond of CPU, or one a clock tick where the kernel checks CPU timers only then (250 Hz: 100)
    assert busy >= 40 and summary["samples"] <= busy + 2, (busy, summary["samples"])
    assert abs(sum(summary["areas"].values()) - 1) < 0.01
    assert summary["areas"]["tree"] > 0.3  # split_path and the builtins it calls
    assert any("uri.py" in t["function"] for t in summary["top"][:3])
    json.dumps(summary)  # it crosses from the server process as JSON


def test_ms_per_session_are_shares_of_the_measured_cpu():
    summary = {"samples": 8, "profiled_cpu_s": 0.01, "areas": dict.fromkeys(AREAS, 0.0) | {"tree": 0.75, "codec": 0.25},
               "top": [{"function": "f", "share": 0.5}]}
    out = with_ms(summary, 2.0)
    assert out["areas_ms_per_session"]["tree"] == 1.5 and out["top"][0]["ms_per_session"] == 1.0
    lines = profile_lines("server", out)
    assert "75.0%  tree and managed objects  1.500 ms/session" in "\n".join(lines)
    assert "HTTP server" in area_label("http", "server") and "HTTP client" in area_label("http", "emulator")


def test_function_names_start_at_the_package():
    assert func_name(("/srv/.venv/lib/python3.11/site-packages/aiohttp/web.py", 3, "f")) == "aiohttp/web.py:3(f)"
    assert func_name(("/srv/dm-emulator/emulator/tree/tree.py", 9, "g")) == "emulator/tree/tree.py:9(g)"
    assert func_name(("/usr/lib/python3.11/asyncio/events.py", 1, "h")) == "asyncio/events.py:1(h)"
    assert func_name(("~", 0, "<built-in method len>")) == "<built-in method len>"


@pytest.mark.skipif(not Sampler.available(), reason="no ITIMER_PROF on this platform")
def test_a_dataclasss_generated_methods_are_named_for_their_class():
    from emulator.tree.uri import Query

    sampler = Sampler()
    sampler.start()
    try:
        end = time.process_time() + 0.3
        while time.process_time() < end:
            for _ in range(500):
                Query("./a", "b", "c")
    finally:
        sampler.stop()
    names = [t["function"] for t in sampler.summary()["top"]]
    assert "emulator.tree.uri.Query.__init__" in names, names
