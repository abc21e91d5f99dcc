"""`dm-emulator run`: a headless fleet, one complete session per device, reports for CI."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from emulator.errors import EmulatorError
from emulator.fleet import Fleet
from emulator.profile import find_profile
from emulator.protocol.actions import SessionDone


def split_server(url: str) -> tuple[str, str | None]:
    """``http://h:1`` -> (base, None): the profile's own paths; ``http://h:1/omadm`` -> that exact endpoint."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EmulatorError(f"--server {url!r} is not an http:// or https:// URL", status=400)
    base = f"{parts.scheme}://{parts.netloc}"
    endpoint = url if parts.path not in ("", "/") else None
    return base, endpoint


async def run_fleet(server: str, profile_name: str, count: int, protocol: str | None, *,
                    concurrency: int = 256, progress=None) -> dict:
    base, endpoint = split_server(server)
    profile = find_profile(profile_name)
    protocol = protocol or profile.protocols[0]
    if protocol not in profile.protocols:
        raise EmulatorError(f"profile {profile.name} does not speak {protocol} (it speaks "
                            f"{', '.join(profile.protocols)})", status=400)
    fleet = Fleet(server=base)
    devices = fleet.add(profile, count)
    gate = asyncio.Semaphore(concurrency)
    results: dict[str, tuple[SessionDone, float]] = {}
    started = time.perf_counter()

    async def one(dev_id: str) -> None:
        async with gate:
            t0 = time.perf_counter()
            options = {"server_uri": endpoint} if endpoint else {}
            done = await fleet.run_session(dev_id, protocol, **options)
            results[dev_id] = (done, time.perf_counter() - t0)

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(1.0)
            if progress:
                progress(fleet, len(results), count, time.perf_counter() - started)

    ticker = asyncio.ensure_future(report_progress())
    try:
        await asyncio.gather(*(one(d.id) for d in devices))
    finally:
        ticker.cancel()
        await fleet.aclose()
    elapsed = time.perf_counter() - started
    completed = sum(1 for done, _ in results.values() if done.outcome == "completed")
    return {
        "server": server,
        "profile": profile.name,
        "protocol": protocol,
        "devices": count,
        "sessions_completed": completed,
        "sessions_failed": len(results) - completed,
        "duration_s": round(elapsed, 3),
        "sessions_per_s": round(len(results) / elapsed, 1) if elapsed else 0.0,
        "messages": fleet.stats.messages,
        "results": [
            {"device": dev_id, "outcome": done.outcome, "detail": done.detail, "duration_s": round(t, 4)}
            for dev_id, (done, t) in results.items()
        ],
    }


def _progress(fleet: Fleet, done: int, total: int, elapsed: float) -> None:
    s = fleet.stats
    print(f"[{elapsed:6.1f}s] {done}/{total} devices done, {s.running} in session, "
          f"{done / elapsed if elapsed else 0:.0f} sessions/s, {s.sessions_failed} failed", file=sys.stderr)


def write_junit(report: dict, path: str) -> None:
    suite = ET.Element("testsuite", name=f"dm-emulator {report['profile']} {report['protocol']}",
                       tests=str(len(report["results"])), failures=str(report["sessions_failed"]),
                       time=str(report["duration_s"]))
    for r in report["results"]:
        case = ET.SubElement(suite, "testcase", classname=f"{report['profile']}.{report['protocol']}",
                             name=r["device"], time=str(r["duration_s"]))
        if r["outcome"] != "completed":
            failure = ET.SubElement(case, "failure", message=f"{r['outcome']}: {r['detail']}")
            failure.text = r["detail"]
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def run(args: argparse.Namespace) -> int:
    if args.scenario:
        print("dm-emulator run: --scenario is not built yet", file=sys.stderr)
        return 2
    report = asyncio.run(run_fleet(args.server, args.profile, args.count, args.protocol, progress=_progress))
    for r in report["results"]:
        if r["outcome"] != "completed":
            print(f"  {r['device']}: {r['outcome']}: {r['detail']}", file=sys.stderr)
    print(f"{report['sessions_completed']}/{report['devices']} sessions completed, "
          f"{report['sessions_failed']} failed, {report['protocol']} against {report['server']} "
          f"in {report['duration_s']} s ({report['sessions_per_s']} sessions/s, {report['messages']} messages)")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    if args.junit:
        write_junit(report, args.junit)
    return 0 if report["sessions_failed"] == 0 else 1
