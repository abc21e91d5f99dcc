"""What a run leaves behind for people and CI: the summary lines, the JSON report, the JUnit file.

JUnit (one ``<testsuites>`` root, one ``<testsuite>`` per run) is read by GitLab, Jenkins, GitHub
Actions reporters and junitparser alike, which agree on little beyond this:

- a test case is known by ``classname`` + ``name``; GitLab shows ``classname`` as the suite and
  keeps only the first of two cases with the same pair, so names are unique and stable: an
  expectation is named by what it checks (not by its file:line, which moves when the scenario is
  edited), a device by its ID, its class is ``<scenario>.<group>``;
- ``time`` is seconds: a device's from the start of its first session to the end of its last, the
  suite's (and the root's) the wall time of the run, not the sum of devices that ran side by side;
- a broken expectation or a device whose session did not complete is a ``<failure type=...>``
  (type: expectation, failed, aborted, unfinished) listing every device or session concerned; a
  problem of the run itself (a notification the server refused, an interrupted run) an
  ``<error>``; a device whose planned sessions never started a ``<skipped>``;
- the server's protocol deviations a session tolerated (its warnings) are ``server_warning``
  properties of its device's case, the first few also of the suite;
- a failing device's traffic file (``--traffic-dir``) is named in the failure text and as
  ``[[ATTACHMENT|path]]`` alone on a line of ``<system-out>``, the form both GitLab and Jenkins'
  attachments plugin link.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

if TYPE_CHECKING:
    from emulator.scenarios.runner import RunResult, SessionRecord

SHOWN_FAILURES = 20
"""Failed sessions and server warnings listed one by one on stderr (and warnings in the JUnit suite's
properties); the JSON and JUnit files list every failure."""


def server_warnings(result: RunResult) -> list[tuple[str, str]]:
    """(device, warning) of every session, in session order."""
    return [(s.device, w) for s in result.sessions for w in s.warnings]


def write_json(result: RunResult, path: str, traffic: dict[str, Path] | None = None) -> None:
    report = result.report()
    if traffic:
        report["traffic"] = {dev: str(p) for dev, p in traffic.items()}
    Path(path).write_text(json.dumps(report, indent=2))


def _iso(ts: float) -> str:
    """ISO 8601 without a zone (the pattern Jenkins' schema accepts), UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts or time.time()))


def _unique(name: str, seen: Counter[str]) -> str:
    seen[name] += 1
    return name if seen[name] == 1 else f"{name} ({seen[name]})"


def junit_tree(result: RunResult, traffic: dict[str, Path] | None = None) -> ET.ElementTree:
    """The JUnit document of a run (see the module doc)."""
    traffic = traffic or {}
    report = result.report()
    # a scenario file by its name; a fleet from the command line by a name its --count cannot change
    scenario = report["scenario"] if result.scenario.source else "fleet"
    suite_name = f"dm-emulator {report['scenario']}"
    cases: list[ET.Element] = []
    counts = Counter[str]()
    names: dict[str, Counter[str]] = {}

    def case(classname: str, name: str, seconds: float = 0.0) -> ET.Element:
        el = ET.Element("testcase", classname=classname,
                        name=_unique(name, names.setdefault(classname, Counter())), time=f"{seconds:.3f}")
        cases.append(el)
        counts["tests"] += 1
        return el

    def fail(el: ET.Element, tag: str, kind: str, message: str, text: str) -> None:
        ET.SubElement(el, tag, type=kind, message=message).text = text
        counts["failures" if tag == "failure" else "errors"] += 1

    for r in result.expectations:
        el = case(f"{scenario}.expect", r.expectation.describe())
        if not r.passed:
            fail(el, "failure", "expectation", r.detail, "\n".join(r.broken) or r.detail)
        if r.expectation.line and result.scenario.source:
            ET.SubElement(el, "system-out").text = f"{result.scenario.source}:{r.expectation.line}"

    by_device: dict[str, list[SessionRecord]] = {}
    for s in result.sessions:
        by_device.setdefault(s.device, []).append(s)
    not_run = result.not_run_by_device
    for g in result.scenario.groups:
        for dev_id in result.members.get(g.name, ()):
            runs = by_device.get(dev_id, [])
            span = (max(s.end for s in runs) - min(s.start for s in runs)) if runs else 0.0
            el = case(f"{scenario}.{g.name}", dev_id, max(0.0, span))
            warned = [w for s in runs for w in s.warnings]
            if warned:
                case_props = ET.SubElement(el, "properties")
                for text in warned:
                    ET.SubElement(case_props, "property", name="server_warning", value=text)
            bad = [s for s in runs if s.final and s.outcome != "completed"]
            out: list[str] = [f"{s.start:8.3f}s {s.reason}: {s.status}" + (f": {s.detail}" if s.detail else "")
                              for s in runs]
            if bad:
                first = bad[0]
                lines = [f"{s.reason} at {s.start:.3f} s: {s.outcome or 'unfinished'}: {s.detail}" for s in bad]
                if dev_id in traffic:
                    lines.append(f"traffic: {traffic[dev_id]}")
                fail(el, "failure", first.outcome or "unfinished",
                     f"{len(bad)} session(s) did not complete: {first.detail or first.outcome}", "\n".join(lines))
            elif not runs and not_run.get(dev_id):
                why = f"interrupted ({result.interrupted})" if result.interrupted else "the run stopped first"
                ET.SubElement(el, "skipped", message=f"not run: {not_run[dev_id]} planned session(s); {why}")
                counts["skipped"] += 1
            if dev_id in traffic:
                out.append(f"[[ATTACHMENT|{traffic[dev_id]}]]")
            if out:
                ET.SubElement(el, "system-out").text = "\n".join(out)

    if result.problems:
        el = case(f"{scenario}.run", "problems")
        fail(el, "error", "problem", f"{len(result.problems)} problem(s): {result.problems[0]}",
             "\n".join(result.problems))
    if result.interrupted:
        el = case(f"{scenario}.run", "interrupted")
        fail(el, "error", "interrupted", f"the run was interrupted by {result.interrupted}",
             f"interrupted by {result.interrupted} after {result.elapsed:.1f} s; "
             f"{report['sessions_not_run']} planned session(s) not run")

    attrs = {"name": suite_name, "tests": str(counts["tests"]), "failures": str(counts["failures"]),
             "errors": str(counts["errors"]), "skipped": str(counts["skipped"]), "time": f"{result.elapsed:.3f}"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", {**attrs, "timestamp": _iso(result.started_at),
                                              "hostname": socket.gethostname() or "localhost", "id": "0",
                                              "package": "dm-emulator"})
    props = ET.SubElement(suite, "properties")
    for key in ("server", "source", "devices", "sessions_started", "sessions_completed", "sessions_recovered",
                "sessions_failed", "sessions_not_run", "attempts", "sessions_with_warnings"):
        ET.SubElement(props, "property", name=key, value=str(report[key]))
    for g in report["groups"]:
        ET.SubElement(props, "property", name=f"server.{g['name']}", value=g["server"])
    for w in result.warnings:
        ET.SubElement(props, "property", name="warning", value=w)
    for who, text in server_warnings(result)[:SHOWN_FAILURES]:
        ET.SubElement(props, "property", name="server_warning", value=f"{who}: {text}")
    suite.extend(cases)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(result: RunResult, path: str, traffic: dict[str, Path] | None = None) -> None:
    junit_tree(result, traffic).write(path, encoding="utf-8", xml_declaration=True)


def operation_lines(operations: dict[str, Any]) -> list[str]:
    """What the devices' managed objects did, for the end of a run: the result codes (with their
    meaning) and the mean time of each state that took any."""
    from emulator.mo.behaviours import mo_kinds

    out = []
    for kind, op in operations.items():
        if kind == "downloads":
            out.append(f"  downloads: {op['count']}, {op['bytes']} bytes, {op['failed']} failed, {op['resumed']} "
                       f"resumed after a cut ({op['resumptions']} resumptions)")
            continue
        words = mo_kinds()[kind].results if kind in mo_kinds() else {}
        codes = ", ".join(f"{c} {words.get(int(c), '')} x{n}".replace("  ", " ") for c, n in op["results"].items())
        out.append(f"  {kind}: {op['started']} operations: {codes or 'none ended'}"
                   + (f"; {op['unfinished']} unfinished" if op["unfinished"] else ""))
        times = ", ".join(f"{s} {t['mean_s']:g} s (p90 {t['p90_s']:g})" for s, t in op["states"].items()
                          if t["mean_s"] >= 0.001)
        if times:
            out.append(f"    mean time per state: {times}")
    return out


def summary_lines(result: RunResult, traffic: dict[str, Path] | None = None) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) of the end of a run: totals with only the figures that mean
    something, each group's server, expectations; on stderr the first failures and the problems."""
    traffic = traffic or {}
    report = result.report()
    err: list[str] = []
    warned = server_warnings(result)
    err.extend(f"  warning: {who}: {text}" for who, text in warned[:SHOWN_FAILURES])
    if len(warned) > SHOWN_FAILURES:
        err.append(f"  ... {len(warned) - SHOWN_FAILURES} more server warnings: every one is in the --report file")
    failed = [s for s in result.sessions if s.final and s.outcome != "completed"]
    for s in failed[:SHOWN_FAILURES]:
        where = f" (traffic: {traffic[s.device]})" if s.device in traffic else ""
        err.append(f"  {s.device}: {s.outcome or 'unfinished'}: {s.detail}{where}")
    if len(failed) > SHOWN_FAILURES:
        err.append(f"  ... {len(failed) - SHOWN_FAILURES} more sessions did not complete: every one is in the "
                   "--report and --junit files")
    err.extend(f"  problem: {p}" for p in result.problems)
    err.extend(f"  warning: {w}" for w in result.warnings)
    out: list[str] = []
    head = f"{report['scenario']}: "
    if result.interrupted:
        head += f"INTERRUPTED by {result.interrupted}: "
    head += f"{report['sessions_completed']}/{report['sessions_started']} sessions completed"
    if report["sessions_recovered"]:
        head += f" ({report['sessions_recovered']} recovered on retry)"
    head += f", {report['sessions_failed']} failed"
    if report["sessions_unfinished"]:
        head += f", {report['sessions_unfinished']} unfinished"
    if report["sessions_not_run"]:
        head += f", {report['sessions_not_run']} not run"
    head += f", {report['devices']} devices ({report['protocol']}) in {report['duration_s']} s"
    if "latency_p50_ms" in report:
        head += (f" ({report['sessions_per_s']} sessions/s, {report['messages']} messages, latency p50 "
                 f"{report['latency_p50_ms']} ms / p95 {report['latency_p95_ms']} ms / p99 "
                 f"{report['latency_p99_ms']} ms)")
    else:
        head += " (no session completed: no rate, no latency)"
    out.append(head)
    for g in report["groups"]:
        out.append(f"  {g['name']}: {g['count']} x {g['profile']} ({g['protocol']}) -> {g['server']}")
    out.extend(operation_lines(report.get("operations", {})))
    where = result.scenario.source
    for e in report["expectations"]:
        mark = "ok  " if e["passed"] else "FAIL"
        at = f"{where}:{e['line']}: " if where and e["line"] else ""
        out.append(f"  {mark} {at}{e['expect']}" + (f" -- {e['detail']}" if e["detail"] else ""))
    if traffic:
        folder = os.path.dirname(next(iter(traffic.values())))
        out.append(f"  traffic of {len(traffic)} device(s) in {folder or '.'}")
    return out, err
