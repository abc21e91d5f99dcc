"""`dm-emulator run`: a headless fleet (or a scenario), live progress, JSON and JUnit reports for CI.

Without ``--scenario`` the fleet is ``--count`` devices of ``--profile``, one session each, and the
run passes when every session completes. With one, the scenario's timeline runs and its
expectations decide the exit code (1 when any failed, with what and where on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

from emulator.errors import EmulatorError
from emulator.scenarios.model import Scenario, default_scenario, find_scenario, load_scenario
from emulator.scenarios.runner import RunResult, ScenarioRunner


def build_scenario(args: argparse.Namespace) -> Scenario:
    """The scenario to run: ``--scenario`` (with the command line's devices when it has none) or the default."""
    if args.scenario:
        scenario = load_scenario(find_scenario(args.scenario), profile=args.profile, count=args.count,
                                 protocol=args.protocol)
        if args.profile and all(g.line is not None for g in scenario.groups):
            print(f"dm-emulator run: {scenario.source} lists its own [[devices]]; --profile/--count/--protocol "
                  "are not used", file=sys.stderr)
        return scenario
    if not args.profile:
        raise EmulatorError("give --profile NAME (and --count N), or a --scenario FILE that lists its devices",
                            status=400)
    return default_scenario(args.profile, args.count, args.protocol)


async def run_scenario(scenario: Scenario, server: str, *, progress: bool = True,
                       session_options: dict[str, object] | None = None,
                       request_deadline: float | None = None) -> RunResult:
    return await ScenarioRunner(scenario, server, progress=_progress if progress else None,
                                session_options=session_options, request_deadline=request_deadline).run()


def session_options(args: argparse.Namespace) -> dict[str, object]:
    """What the command line sets for every session, over the profiles' and the scenario's settings."""
    out: dict[str, object] = {}
    if getattr(args, "server_auth", None):
        out["server_auth"] = args.server_auth
    if getattr(args, "strict", False):
        out["strict"] = True
    return out


def _progress(runner: ScenarioRunner, elapsed: float) -> None:
    fleet = runner.fleet
    if fleet is None:
        return
    failed = sum(1 for s in runner.sessions if s.outcome and s.outcome != "completed")
    print(f"[{elapsed:6.1f}s] {len(runner.devices_up)}/{runner.scenario.device_count} devices up, "
          f"{fleet.stats.running} in session, {runner.sessions_per_second():.0f} sessions/s, "
          f"{sum(1 for s in runner.sessions if s.outcome == 'completed')} completed, {failed} errors",
          file=sys.stderr, flush=True)


def write_junit(result: RunResult, path: str) -> None:
    """A JUnit file for CI: one test case per expectation (named by its scenario line) and per problem;
    a run without expectations (no scenario) has one test case per device instead."""
    report = result.report()
    name = report["scenario"]
    suite = ET.Element("testsuite", name=f"dm-emulator {name}", time=str(report["duration_s"]))
    props = ET.SubElement(suite, "properties")
    for key in ("server", "devices", "sessions_started", "sessions_completed", "sessions_failed",
                "sessions_with_warnings"):
        ET.SubElement(props, "property", name=key, value=str(report[key]))
    for who, text in server_warnings(report)[:MAX_LISTED]:
        ET.SubElement(props, "property", name="server_warning", value=f"{who}: {text}")
    cases: list[tuple[str, str, str | None, float]] = []  # classname, name, failure, time
    warned: dict[str, list[str]] = {}  # per-device test case -> its sessions' warnings
    if result.scenario.expectations:
        where = result.scenario.source
        for e in report["expectations"]:
            label = f"{where}:{e['line']}: {e['expect']}" if where and e["line"] else e["expect"]
            cases.append((f"{name}.expect", label, None if e["passed"] else e["detail"], 0.0))
    else:
        per_device: dict[str, list[dict]] = {}
        for r in report["results"]:
            per_device.setdefault(r["device"], []).append(r)
        for dev_id, runs in per_device.items():
            bad = [f"{r['outcome']}: {r['detail']}" for r in runs if r["outcome"] != "completed"]
            cases.append((f"{name}.{runs[0]['protocol']}", dev_id, "; ".join(bad) or None,
                          sum(r["duration_s"] for r in runs)))
            warned[dev_id] = [w for r in runs for w in r.get("warnings", ())]
    for i, p in enumerate(report["problems"], 1):
        cases.append((f"{name}.problem", f"problem {i}", p, 0.0))
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c[2] is not None)))
    for classname, label, failure, took in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=label, time=f"{took:.3f}")
        if warned.get(label):
            case_props = ET.SubElement(case, "properties")
            for text in warned[label][:MAX_LISTED]:
                ET.SubElement(case_props, "property", name="server_warning", value=text)
        if failure is not None:
            ET.SubElement(case, "failure", message=failure).text = failure
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


MAX_LISTED = 20
"""Failed sessions and server warnings listed one by one on stderr and in JUnit; the rest are counted."""


def server_warnings(report: dict) -> list[tuple[str, str]]:
    """(device, warning) of every session, in session order."""
    return [(r["device"], w) for r in report["results"] for w in r.get("warnings", ())]


def latency_text(report: dict) -> str:
    """', latency p50 .. ms / p95 .. / p99 ..' when sessions completed; nothing otherwise."""
    if "latency_p50_ms" not in report:
        return ", no session completed: no latency"
    return (f", latency p50 {report['latency_p50_ms']} ms / p95 {report['latency_p95_ms']} ms / "
            f"p99 {report['latency_p99_ms']} ms")


def print_summary(result: RunResult) -> None:
    report = result.report()
    warnings = server_warnings(report)
    for who, text in warnings[:MAX_LISTED]:
        print(f"  warning: {who}: {text}", file=sys.stderr)
    if len(warnings) > MAX_LISTED:
        print(f"  ... and {len(warnings) - MAX_LISTED} more server warnings (see --report)", file=sys.stderr)
    failed = [r for r in report["results"] if r["outcome"] != "completed"]
    for r in failed[:MAX_LISTED]:
        print(f"  {r['device']}: {r['outcome']}: {r['detail']}", file=sys.stderr)
    if len(failed) > MAX_LISTED:
        print(f"  ... and {len(failed) - MAX_LISTED} more sessions that did not complete", file=sys.stderr)
    for p in report["problems"]:
        print(f"  problem: {p}", file=sys.stderr)
    print(f"{report['scenario']}: {report['sessions_completed']}/{report['sessions_started']} sessions completed, "
          f"{report['sessions_failed']} failed, {report['devices']} devices ({report['protocol']}) against "
          f"{report['server']} in {report['duration_s']} s ({report['sessions_per_s']} sessions/s, "
          f"{report['messages']} messages" + latency_text(report) + ")")
    where = result.scenario.source
    for e in report["expectations"]:
        mark = "ok  " if e["passed"] else "FAIL"
        at = f"{where}:{e['line']}: " if where and e["line"] else ""
        print(f"  {mark} {at}{e['expect']}" + (f" -- {e['detail']}" if e["detail"] else ""))


def run(args: argparse.Namespace) -> int:
    scenario = build_scenario(args)
    options = session_options(args)
    if options.get("server_auth") == "none":
        from emulator.fleet.fleet import SERVER_AUTH_NONE_WARNING

        print(f"dm-emulator run: warning: {SERVER_AUTH_NONE_WARNING}", file=sys.stderr)
    result = asyncio.run(run_scenario(scenario, args.server, session_options=options,
                                      request_deadline=getattr(args, "request_deadline", None)))
    print_summary(result)
    if args.report:
        Path(args.report).write_text(json.dumps(result.report(), indent=2))
    if args.junit:
        write_junit(result, args.junit)
    if not result.passed:
        broken = sum(1 for e in result.expectations if not e.passed) + len(result.problems)
        print(f"dm-emulator run: {broken} expectation(s) or problem(s) failed", file=sys.stderr)
        return 1
    return 0
