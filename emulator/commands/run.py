"""`dm-emulator run`: a headless fleet (or a scenario), live progress, JSON and JUnit reports for CI.

Without ``--scenario`` the fleet is ``--count`` devices of ``--profile``, one session each, and the
run passes when every session completes. With one, the scenario's timeline runs and its
expectations decide the exit code.

Exit codes: 0 passed; 1 an expectation or a session failed; 2 the run could not start (a mistake
in the scenario, an unknown profile, a missing file, a ``--server`` that is not a URL, an output
path that cannot be written): everything is checked before the first session. SIGTERM and SIGINT
stop the run, write the partial report, JUnit file and summary (sessions not run are marked so),
and exit 143 and 130 as a shell expects of a process ended by that signal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from pathlib import Path
from typing import Any

from emulator.errors import EmulatorError, FileFormatError
from emulator.scenarios.model import MAX_RETRY, Scenario, default_scenario, find_scenario, load_scenario
from emulator.scenarios.reports import summary_lines, write_json, write_junit

__all__ = ["build_scenario", "check_outputs", "print_summary", "run", "session_options", "write_junit"]
from emulator.scenarios.runner import RunResult, ScenarioRunner, split_server

CANNOT_START = 2
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def build_scenario(args: argparse.Namespace) -> Scenario:
    """The scenario to run: ``--scenario`` (with the command line's devices when it has none) or the
    default; ``--retry``/``--retry-backoff`` replace the scenario's ``[pacing]`` ones."""
    if args.scenario:
        scenario = load_scenario(find_scenario(args.scenario), profile=args.profile, count=args.count,
                                 protocol=args.protocol)
        if args.profile and all(g.line is not None for g in scenario.groups):
            print(f"dm-emulator run: {scenario.source} lists its own [[devices]]; --profile/--count/--protocol "
                  "are not used", file=sys.stderr)
    elif not args.profile:
        raise EmulatorError("give --profile NAME (and --count N), or a --scenario FILE that lists its devices",
                            status=400)
    else:
        scenario = default_scenario(args.profile, args.count, args.protocol)
    retry = getattr(args, "retry", None)
    backoff = getattr(args, "retry_backoff", None)
    if backoff is not None and retry is None and not scenario.pacing.retry:
        raise EmulatorError("--retry-backoff goes with --retry N (how many times)", status=400)
    if retry is not None and not 0 <= retry <= MAX_RETRY:
        raise EmulatorError(f"--retry {retry}: give 0 to {MAX_RETRY} more attempts", status=400)
    if retry is not None or backoff is not None:
        pacing = scenario.pacing
        scenario = dataclasses.replace(scenario, pacing=dataclasses.replace(
            pacing, retry=pacing.retry if retry is None else retry,
            retry_backoff=pacing.retry_backoff if backoff is None else backoff))
    return scenario


def session_options(args: argparse.Namespace) -> dict[str, object]:
    """What the command line sets for every session, over the profiles' and the scenario's settings."""
    out: dict[str, object] = {}
    if getattr(args, "server_auth", None):
        out["server_auth"] = args.server_auth
    if getattr(args, "strict", False):
        out["strict"] = True
    return out


def print_summary(result: RunResult, traffic: dict[str, Path] | None = None) -> None:
    """The end of a run: totals and expectations on stdout; failures, problems and warnings on stderr."""
    out, err = summary_lines(result, traffic)
    for line in err:
        print(line, file=sys.stderr)
    for line in out:
        print(line)
    sys.stdout.flush()


def check_outputs(args: argparse.Namespace) -> None:
    """Every file and folder the run will write, checked before it starts (FileFormatError naming it)."""
    from emulator.store.traffic_files import check_output_dir

    for option, path in (("--report", args.report), ("--junit", args.junit)):
        if not path:
            continue
        p = Path(path)
        if p.is_dir():
            raise FileFormatError(path, None, f"{option} names a folder; give a file name")
        try:
            existed = p.exists()
            with open(p, "a", encoding="utf-8"):
                pass
            if not existed:
                p.unlink()
        except OSError as exc:
            raise FileFormatError(path, None, f"{option}: cannot write there: {exc.strerror or exc}") from None
    if getattr(args, "traffic_dir", None):
        check_output_dir(args.traffic_dir, "traffic files (--traffic-dir)")
    if getattr(args, "traffic_all", False) and not getattr(args, "traffic_dir", None):
        raise EmulatorError("--traffic-all needs --traffic-dir DIR (where to write the traffic)", status=400)
    if getattr(args, "workspace", None):
        check_output_dir(args.workspace, "workspace (--workspace)")


def _progress(runner: ScenarioRunner, elapsed: float) -> None:
    fleet = runner.fleet
    if fleet is None:
        return
    ended = [s for s in runner.sessions if s.outcome and s.final]
    completed = sum(1 for s in ended if s.outcome == "completed")
    print(f"[{elapsed:6.1f}s] {len(runner.devices_up)}/{runner.scenario.device_count} devices up, "
          f"{fleet.stats.running} in session, {runner.sessions_per_second():.0f} sessions/s, "
          f"{completed} completed, {len(ended) - completed} errors",
          file=sys.stderr, flush=True)


def choose_processes(scenario: Scenario, args: argparse.Namespace) -> int:
    """How many worker processes the run takes (``--processes``, else one per core: see
    :mod:`emulator.scenarios.shards`); EmulatorError when more than one was asked for and the run
    cannot be cut."""
    from emulator.scenarios.shards import default_processes, why_not_sharded

    asked = getattr(args, "processes", None)
    why = why_not_sharded(scenario, workspace=getattr(args, "workspace", None))
    if asked is None:
        return 1 if why else default_processes(scenario.device_count)
    if asked > 1 and why:
        raise EmulatorError(f"--processes {asked}: this run cannot be cut into processes: {why}", status=400)
    return max(1, min(asked, scenario.device_count))


def _run_sharded(scenario: Scenario, server: str, processes: int, options: dict[str, Any]) -> RunResult:
    """The run in worker processes, one merged progress line a second; SIGINT/SIGTERM stop them all."""
    from emulator.fleet.capacity import check_fleet_fits
    from emulator.scenarios.shards import Progress, ShardedRun

    def progress(p: Progress, elapsed: float) -> None:
        print(f"[{elapsed:6.1f}s] {p.devices_up}/{scenario.device_count} devices up, {p.running} in session, "
              f"{p.sessions_per_s:.0f} sessions/s, {p.completed} completed, {p.errors} errors "
              f"({processes} processes)", file=sys.stderr, flush=True)

    check_fleet_fits(scenario.device_count)  # the whole fleet, on this machine, before a worker starts
    sharded = ShardedRun(scenario, server, processes, progress=progress, **options)
    previous = {sig: signal.signal(sig, lambda signum, _frame: sharded.interrupt(signal.Signals(signum).name))
                for sig in SIGNAL_EXIT}
    try:
        return sharded.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _run(runner: ScenarioRunner) -> RunResult:
    """The run, stopped cleanly by SIGINT or SIGTERM (the partial result comes back)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in SIGNAL_EXIT:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            loop.add_signal_handler(sig, runner.interrupt, sig.name)
            installed.append(sig)
    try:
        return await runner.run()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def run(args: argparse.Namespace) -> int:
    try:
        scenario = build_scenario(args)
        split_server(args.server)
        check_outputs(args)
    except EmulatorError as exc:
        print(f"dm-emulator run: {exc}", file=sys.stderr)
        return CANNOT_START
    options = session_options(args)
    if options.get("server_auth") == "none":
        from emulator.fleet.fleet import SERVER_AUTH_NONE_WARNING

        print(f"dm-emulator run: warning: {SERVER_AUTH_NONE_WARNING}", file=sys.stderr)
    try:
        processes = choose_processes(scenario, args)
    except EmulatorError as exc:
        print(f"dm-emulator run: {exc}", file=sys.stderr)
        return CANNOT_START
    runner_options: dict[str, Any] = {"session_options": options, "request_deadline": getattr(args, "request_deadline", None),
                      "traffic_dir": getattr(args, "traffic_dir", None),
                      "traffic_all": getattr(args, "traffic_all", False)}
    traffic: dict[str, Path] = {}
    if processes > 1:
        result = _run_sharded(scenario, args.server, processes, runner_options)
        if runner_options["traffic_dir"]:
            traffic = {p.stem: p for p in Path(runner_options["traffic_dir"]).glob("*.jsonl")}
    else:
        runner = ScenarioRunner(scenario, args.server, progress=_progress,
                                workspace=getattr(args, "workspace", None), **runner_options)
        result = asyncio.run(_run(runner))
        traffic = runner.traffic.files if runner.traffic is not None else {}
    print_summary(result, traffic)
    if args.report:
        write_json(result, args.report, traffic)
    if args.junit:
        write_junit(result, args.junit, traffic)
    if result.interrupted:
        print(f"dm-emulator run: interrupted by {result.interrupted}; partial results written", file=sys.stderr)
        return SIGNAL_EXIT[signal.Signals[result.interrupted]]
    if not result.passed:
        broken = sum(1 for e in result.expectations if not e.passed) + len(result.problems)
        print(f"dm-emulator run: {broken} expectation(s) or problem(s) failed", file=sys.stderr)
        return 1
    return 0

