"""When each device of a fleet opens its sessions: ramp-up, periodic rules, jitter.

A real fleet never starts in the same millisecond: phones wake over minutes, meters report on
timers that drift. A load test that starts 10,000 devices at once measures the server's accept
queue, not its sessions. These functions turn a scenario's rules into start times per device;
they are pure (the random source is passed in) so a seed gives the same run twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from emulator.protocol.values import DmProtocol
from emulator.scenarios.model import SessionRule


@dataclass(frozen=True, slots=True)
class PlannedSession:
    at: float  # seconds from the start of the run
    protocol: DmProtocol | None  # None: the device group's protocol
    line: int | None = None  # the [[sessions]] rule it comes from


def ramp_offset(position: int, total: int, ramp_up: float) -> float:
    """The start of device ``position`` of ``total`` when starts are spread evenly over ``ramp_up``."""
    if total <= 1 or ramp_up <= 0:
        return 0.0
    return ramp_up * position / total


def jittered(seconds: float, jitter: float, rng: random.Random) -> float:
    """``seconds`` varied by up to ±``jitter`` (a fraction), never below 0."""
    if jitter <= 0 or seconds <= 0:
        return seconds
    return max(0.0, seconds * (1.0 + rng.uniform(-jitter, jitter)))


def plan_sessions(rules: list[SessionRule], offset: float, duration: float | None, jitter: float,
                  rng: random.Random) -> list[PlannedSession]:  # fmt: skip
    """Timed sessions of one device (notification rules are not timed), sorted by start.

    ``offset`` is the device's ramp-up slot: every rule starts that much later for it, so a
    periodic rule keeps the devices spread out. Periods are jittered one by one; a periodic rule
    without ``count`` runs until ``duration``.
    """
    out: list[PlannedSession] = []
    for rule in rules:
        if rule.on_notification:
            continue
        t = offset + rule.at
        if rule.every is None:
            if duration is None or t <= duration:
                out.append(PlannedSession(t, rule.protocol, rule.line))
            continue
        n = 0
        while (rule.count is None or n < rule.count) and (duration is None or t <= duration):
            out.append(PlannedSession(t, rule.protocol, rule.line))
            n += 1
            t += jittered(rule.every, jitter, rng)
            if rule.count is None and duration is None:  # the reader refuses this; never loop forever
                break
    out.sort(key=lambda p: p.at)
    return out
