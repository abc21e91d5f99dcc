"""Campaigns inside sessions: one driver per session hands the campaign machine
(:mod:`emulator.server.campaigns`) the device's statuses and takes its next package, for DM 1.2
(:func:`dm12_steps`, the session's steps) and DM 2.0 (:func:`dm2_driver`, asked by the session
when its own steps are spent).

The driver is the same for both protocols; only how a step becomes commands differs
(:func:`emulator.server.campaign_steps.dm12_commands`, :func:`~emulator.server.campaign_steps.dm2_commands`).
A step may take several packages (a DM 1.2 diagnostics read lists the radios, then reads their
signals; a consent step asks first): the statuses of all of them decide it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.protocol.syncml import codes
from emulator.server.campaign_steps import Step, dm2_commands, dm12_commands, dm12_consent
from emulator.server.campaigns import Campaign, Campaigns, DeviceRun

Build = Callable[[Campaign, DeviceRun, Step, int, list[tuple[str, int]]], list[Any]]
MAX_PACKAGES = 64
"""Packages one DM 1.2 session gives the campaigns at most (each step takes one to three)."""
STEP_NAME = "campaign"


class StepDriver:
    """One session's side of the campaign machine: the device's answers in, the next package out."""

    def __init__(self, campaigns: Campaigns, dev_id: str, protocol: str, build: Build) -> None:
        self.campaigns = campaigns
        self.dev_id = dev_id
        self.protocol = protocol
        self.build = build
        self.current: tuple[Campaign, DeviceRun, int] | None = None  # the step sent, and its package
        self.answers: list[tuple[str, int]] = []

    def next(self, answers: list[tuple[str, int]]) -> list[Any]:
        """The next package ([]: nothing more for this session), ``answers`` being the statuses of
        the previous one ((command, status) in order)."""
        if self.current is not None:
            campaign, run, package = self.current
            self.answers += answers
            more = self.build(campaign, run, campaign.steps[run.step], package + 1, self.answers) \
                if run.state == "sent" else []
            if more:
                self.current = (campaign, run, package + 1)
                return more
            self.current = None
            self.campaigns.answered(campaign, run, self.answers)
            self.answers = []
        for _ in range(MAX_PACKAGES):
            found = self.campaigns.engaged(self.dev_id, self.protocol)
            if found is None or found[1].state != "pending":
                return []
            campaign, run = found
            self.campaigns.sending(run, self.protocol)
            commands = self.build(campaign, run, campaign.steps[run.step], 0, [])
            if commands:
                self.current = (campaign, run, 0)
                return commands
            self.campaigns.answered(campaign, run, [])
        return []


# ------------------------------------------------------------------ DM 1.2


def dm12_steps(state: Any, dev_id: str) -> list[tuple[str, Callable[[Any], list[Any]]]] | None:
    """The steps of a DM 1.2 session of ``dev_id`` a campaign is engaged with (None: none is)."""
    if state.campaigns.engaged(dev_id, "dm12") is None:
        return None
    seen = [0]

    def build(campaign: Campaign, run: DeviceRun, step: Step, package: int, answers: list[tuple[str, int]]) -> list[Any]:
        if step.mo == "fumo" and step.consent:
            if package == 0:
                return dm12_consent(step)
            if package == 1:
                if [code for name, code in answers if name == "Alert"][-1:] != [codes.OK]:
                    state.campaigns.decline(run)
                    return []
                return dm12_commands(step, campaign.correlator(run.step), 0, session[0])
            return []
        upload = _upload_url(session[0]) if step.kind == "diag.upload" and package == 0 else ""
        return dm12_commands(step, campaign.correlator(run.step), package, session[0], upload)

    driver = StepDriver(state.campaigns, dev_id, "dm12", build)
    session: list[Any] = [None]

    def step(s: Any) -> list[Any]:
        session[0] = s
        mine = [r for r in s.statuses if r.step == STEP_NAME and not r.chunk]
        seen[0] = min(seen[0], len(mine))
        answers = [(r.cmd, r.code) for r in mine[seen[0]:]]
        seen[0] = len(mine)
        return driver.next(answers)

    return [(STEP_NAME, step)] * MAX_PACKAGES


def _upload_url(session: Any) -> str:
    """A one-time URL of this server where the device may upload its log (at the origin it addressed)."""
    from urllib.parse import urlsplit

    from emulator.server.diag import new_upload_url

    parts = urlsplit(session.source)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme else ""
    return new_upload_url(session.server.state, session.dev_id, origin)


# ------------------------------------------------------------------ DM 2.0


def dm2_driver(state: Any, dev_id: str, base: str) -> Callable[[Any], list[list[str]]] | None:
    """What a DM 2.0 session of ``dev_id`` asks for its next package once its own steps are spent
    (None: no campaign is engaged with the device). ``base``: the server's origin for the
    repository URLs."""
    if state.campaigns.engaged(dev_id, "dm2") is None:
        return None

    def build(campaign: Campaign, run: DeviceRun, step: Step, package: int, answers: list[tuple[str, int]]) -> list[Any]:
        if package > 0:  # one package a step (a consent page's answer brings the FUMO commands itself)
            return []
        return dm2_commands(step, campaign.repo_key(dev_id, run.step), state, dev_id, base)

    driver = StepDriver(state.campaigns, dev_id, "dm2", build)

    def more(session: Any) -> list[list[str]]:
        answers = [(cmd[0].upper() if cmd else "", status.sc) for cmd, status in session.answered]
        session.answered = []
        return driver.next(answers)

    return more
