"""``run --processes N``: one fleet cut into N worker processes, one merged result and one progress line.

Why: one Python process runs on one core, and a fleet's sessions are CPU-bound; a 2-core machine
carries about twice the sessions with two processes (the reference server, when it runs here too,
takes its share). Each worker runs the same scenario on its own slice of every device group (the
devices keep their identity indexes, so DevIds and credentials are those of a one-process run), with
its share of ``max_in_flight``; the parent merges their :class:`RunResult` objects into one, so the
summary, ``--report`` and ``--junit`` count every device once, and prints one progress line a
second that adds up the workers' figures.

What can be cut into slices: every expectation and session rule a scenario can have is checked
device by device or session by session over whole groups, so the merged verdict is the verdict of
one process. A scenario with timeline events, with selectors that pick some of a group (``limit``,
``percent``, ``state``), or a run with a workspace (one SQLite file) cannot: :func:`why_not_sharded`
says why, and the run stays in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable
from typing import Any

from emulator.scenarios.model import Scenario
from emulator.scenarios.runner import MAX_DEVICE_ALERTS, ExpectationResult, RunResult, ScenarioRunner

MIN_DEVICES_PER_PROCESS = 500
"""The default (one process per core) adds a process only for this many more devices: below it,
starting a worker (about half a second of imports) costs more than it saves."""
MAX_PROCESSES = 64


def default_processes(devices: int, cores: int | None = None) -> int:
    """One per core, but no more than one per :data:`MIN_DEVICES_PER_PROCESS` devices."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
    return max(1, min(cores, devices // MIN_DEVICES_PER_PROCESS, MAX_PROCESSES))


def why_not_sharded(scenario: Scenario, *, workspace: str | None = None) -> str | None:
    """Why this run cannot be cut into processes (see the module doc), or None."""
    if workspace:
        return "a workspace (--workspace) is one SQLite file that one process writes"
    if scenario.events:
        return "the scenario has timeline events, which pick devices across the whole fleet"
    if scenario.needs_store:
        return "the scenario restarts devices from a store"
    if getattr(scenario, "campaign", None) is not None:
        return "the scenario starts a campaign on the server, which one run asks for once"
    selectors = [r.devices for r in scenario.sessions] + [e.devices for e in scenario.expectations]
    if not all(s.everyone for s in selectors):
        return "the scenario picks some devices of a group (limit, percent or state)"
    return None


def shard(scenario: Scenario, k: int, n: int) -> Scenario:
    """Worker ``k`` of ``n``'s scenario: slice ``k`` of every group, its share of ``max_in_flight``."""
    groups = []
    for g in scenario.groups:
        lo, hi = g.count * k // n, g.count * (k + 1) // n
        if hi > lo:
            groups.append(dataclasses.replace(g, count=hi - lo, first_index=g.first_index + lo))
    in_flight = max(1, scenario.pacing.max_in_flight // n)
    return dataclasses.replace(scenario, groups=tuple(groups),
                               pacing=dataclasses.replace(scenario.pacing, max_in_flight=in_flight))


@dataclasses.dataclass(frozen=True, slots=True)
class Progress:
    """One worker's figures for the merged progress line."""

    worker: int
    devices_up: int
    running: int
    sessions_per_s: float
    completed: int
    errors: int


def _worker(k: int, n: int, scenario: Scenario, server: str, options: dict[str, Any],
            updates: Any, results: Any) -> None:  # fmt: skip
    """A worker process: its slice of the run; progress and then its RunResult go back by queue."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides: it sends SIGTERM to stop us

    def progress(runner: ScenarioRunner, elapsed: float) -> None:
        fleet = runner.fleet
        ended = [s for s in runner.sessions if s.outcome and s.final]
        completed = sum(1 for s in ended if s.outcome == "completed")
        with contextlib.suppress(Exception):
            updates.put_nowait(Progress(k, len(runner.devices_up), fleet.stats.running if fleet else 0,
                                        runner.sessions_per_second(), completed, len(ended) - completed))

    runner = ScenarioRunner(shard(scenario, k, n), server, progress=progress, **options)

    async def main() -> RunResult:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, runner.interrupt, "SIGTERM")
        return await runner.run()

    try:
        result = asyncio.run(main())
    except BaseException as exc:  # noqa: BLE001 - the parent reports it as the worker's problem
        results.put((k, None, f"worker {k + 1} of {n} failed: {type(exc).__name__}: {exc}"))
        return
    results.put((k, result, ""))


class ShardedRun:
    """Run ``scenario`` in ``processes`` workers; :meth:`run` gives the merged :class:`RunResult`.

    ``progress(line_figures, elapsed)`` gets the summed :class:`Progress` about once a second;
    :meth:`interrupt` (SIGINT/SIGTERM in the parent) stops every worker, which still report what ran.
    """

    def __init__(self, scenario: Scenario, server: str, processes: int, *,
                 progress: Callable[[Progress, float], None] | None = None, **options: Any) -> None:  # fmt: skip
        self.scenario = scenario
        self.server = server
        self.processes = processes
        self.progress = progress
        self.options = options
        self.interrupted = ""
        self._procs: list[multiprocessing.process.BaseProcess] = []

    def interrupt(self, why: str) -> None:
        self.interrupted = self.interrupted or why
        for p in self._procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)

    def run(self) -> RunResult:
        n = self.processes
        ctx = multiprocessing.get_context("spawn")  # no forked event loop or threads in the workers
        updates, results = ctx.Queue(), ctx.Queue()
        started, t0 = time.time(), time.monotonic()
        self._procs = [ctx.Process(target=_worker, args=(k, n, self.scenario, self.server, self.options, updates,
                                                         results), name=f"dm-emulator-run-{k + 1}", daemon=True)
                       for k in range(n)]
        for p in self._procs:
            p.start()
        latest: dict[int, Progress] = {}
        got: dict[int, tuple[RunResult | None, str]] = {}
        last_print = time.monotonic()
        while len(got) < n:
            try:
                k, result, problem = results.get(timeout=0.2)
                got[k] = (result, problem)
            except queue.Empty:
                if all(not p.is_alive() for p in self._procs) and results.empty():
                    for k, p in enumerate(self._procs):
                        got.setdefault(k, (None, f"worker {k + 1} of {n} ended (exit code {p.exitcode}) "
                                                 "without a result"))
            while True:
                try:
                    update = updates.get_nowait()
                except queue.Empty:
                    break
                latest[update.worker] = update
            if self.progress and time.monotonic() - last_print >= 1.0 and latest:
                last_print = time.monotonic()
                self.progress(_summed(latest.values()), time.monotonic() - t0)
        for p in self._procs:
            p.join(timeout=10)
        with contextlib.suppress(Exception):  # each worker's last figures, sent as it ended
            while True:
                update = updates.get(timeout=0.05)
                latest[update.worker] = update
        if self.progress and latest:
            self.progress(_summed(latest.values()), time.monotonic() - t0)
        merged = merge(self.scenario, self.server, [got[k] for k in range(n)], started_at=started)
        if self.interrupted and not merged.interrupted:
            merged.interrupted = self.interrupted
        return merged


def _summed(parts: Any) -> Progress:
    parts = list(parts)
    return Progress(-1, sum(p.devices_up for p in parts), sum(p.running for p in parts),
                    sum(p.sessions_per_s for p in parts), sum(p.completed for p in parts),
                    sum(p.errors for p in parts))


def merge(scenario: Scenario, server: str, parts: list[tuple[RunResult | None, str]], *,
          started_at: float) -> RunResult:  # fmt: skip
    """The workers' results as one run's: every session once (times from the common start), each
    expectation passed when it passed in every worker (the first failing worker's detail), totals
    added up, every device's own alerts (``device_alerts``, worker by worker, within the one cap)."""
    results = [r for r, _ in parts if r is not None]
    problems = [p for _, p in parts if p]
    sessions = []
    for r in results:
        shift = r.started_at - started_at
        for s in r.sessions:
            sessions.append(dataclasses.replace(s, start=s.start + shift, end=s.end + shift if s.end >= 0 else s.end))
    sessions.sort(key=lambda s: s.start)
    expectations: list[ExpectationResult] = []
    for i, template in enumerate(results[0].expectations if results else []):
        mine = [r.expectations[i] for r in results if i < len(r.expectations)]
        failed = [e for e in mine if not e.passed]
        expectations.append(ExpectationResult(template.expectation, not failed,
                                              failed[0].detail if failed else template.detail,
                                              [b for e in failed for b in e.broken]))
    members: dict[str, list[str]] = {}
    servers: dict[str, str] = {}
    not_run: dict[str, int] = {}
    for r in results:
        for group, ids in r.members.items():
            members.setdefault(group, []).extend(ids)
        servers.update(r.servers)
        not_run.update(r.not_run_by_device)
        problems.extend(r.problems)
    return RunResult(
        scenario, server,
        elapsed=max((r.elapsed + r.started_at - started_at for r in results), default=0.0),
        sessions=sessions, expectations=expectations, problems=problems,
        messages=sum(r.messages for r in results),
        stopped_at_limit=any(r.stopped_at_limit for r in results),
        warnings=list(dict.fromkeys(w for r in results for w in r.warnings)),
        servers=servers, interrupted=next((r.interrupted for r in results if r.interrupted), ""),
        not_run_by_device=not_run, members=members, started_at=started_at,
        events=[e for r in results for e in r.events],
        operations=merge_operations([r.operations for r in results]),
        device_alerts=[a for r in results for a in r.device_alerts][:MAX_DEVICE_ALERTS],
    )


def merge_operations(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' managed-object reports (``RunResult.operations``) as one: downloads, starts,
    unfinished operations and result codes added up; per state, counts added, the mean weighted by
    them, the longest the longest. The percentiles of a state's times are the workers' weighted by
    their counts: close to, not exactly, those of all the times together."""
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return dict(parts[0]) if parts else {}
    out: dict[str, Any] = {}
    downloads = [p["downloads"] for p in parts if "downloads" in p]
    if downloads:
        out["downloads"] = {k: sum(d.get(k, 0) for d in downloads) for k in downloads[0]}
    for kind in sorted({k for p in parts for k in p if k != "downloads"}):
        mine = [p[kind] for p in parts if kind in p]
        results: dict[str, int] = {}
        for m in mine:
            for code, n in m["results"].items():
                results[code] = results.get(code, 0) + n
        states: dict[str, dict[str, float]] = {}
        for state in sorted({st for m in mine for st in m["states"]}):
            figures = [m["states"][state] for m in mine if state in m["states"]]
            count = sum(f["count"] for f in figures)

            def weighted(key: str, figures: list[dict[str, float]] = figures, count: int = count) -> float:
                return round(sum(f[key] * f["count"] for f in figures) / count, 3) if count else 0.0

            states[state] = {"count": count, "mean_s": weighted("mean_s"), "p50_s": weighted("p50_s"),
                             "p90_s": weighted("p90_s"), "max_s": max(f["max_s"] for f in figures)}
        out[kind] = {"started": sum(m["started"] for m in mine), "unfinished": sum(m["unfinished"] for m in mine),
                     "results": dict(sorted(results.items(), key=lambda kv: int(kv[0]))), "states": states}
    return out
