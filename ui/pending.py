"""What servers wait for from the person at the window: one :class:`Pending` per web page or alert.

Why a registry: a fleet of web-UI sessions asks for dozens of pages at once and the window shows one
page at a time. Each request waits here until it is answered (in the page or dialog), answered with
defaults (the headless answerer, :class:`emulator.fleet.headless.HeadlessUi`, does the form fill as a
``run`` would: no second answerer), cancelled, or its session is stopped. The fleet list marks the
devices "waiting for you", the pending list and the progress bar count them, and the server page
follows the selected device. No widgets here: the dock, the dialogs and the fleet panel watch
``changed``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from PySide6.QtCore import QObject, Signal

from emulator.events import SessionEnded
from emulator.protocol.actions import AskUser, OpenBrowser, UserAnswer
from ui.signals import emit


class Defaults:
    """The answer "use the defaults": the request's flow goes on with the headless answerer."""

    def __repr__(self) -> str:
        return "DEFAULTS"


DEFAULTS = Defaults()
Answer = UserAnswer | Defaults
MAX_ENDED = 10_000
"""Ended sessions remembered (the newest) so a finished page can say how its session ended."""


@dataclass(eq=False)
class Pending:
    """One request waiting for the user; ``url`` is the page the user last saw (web)."""

    device_id: str
    session_id: str
    server: str
    kind: Literal["web", "alert"]
    action: AskUser | OpenBrowser
    future: asyncio.Future[Answer]
    since: float = field(default_factory=time.time)
    number: int = 0  # order of arrival
    url: str = ""

    @property
    def what(self) -> str:
        """One line for lists: what the server asks for."""
        if isinstance(self.action, OpenBrowser):
            return f"web page from {self.server}"
        text = " ".join(self.action.text.split())
        return f"{self.action.kind} alert from {self.server}" + (f": {text[:60]}" if text else "")

    @property
    def short(self) -> str:
        """A few words for a narrow list: "page from demo-dm2", "confirm from demo-dm12"."""
        kind = "page" if isinstance(self.action, OpenBrowser) else self.action.kind
        return f"{kind} from {self.server}" if self.server else kind

    def done(self) -> bool:
        return self.future.done()


class PendingRequests(QObject):
    """The open requests, oldest first; ``changed`` whenever one comes or goes."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.items: list[Pending] = []
        self.ended: dict[tuple[str, str], str] = {}  # (device, session) -> "completed" / "failed: why"
        self._numbers = itertools.count(1)

    # ------------------------------------------------------------------ requests come and go

    def add(self, session: object, action: AskUser | OpenBrowser) -> Pending:
        """Register a request of ``session`` (anything with device_id, session_id and server)."""
        kind: Literal["web", "alert"] = "web" if isinstance(action, OpenBrowser) else "alert"
        p = Pending(str(getattr(session, "device_id", "")), str(getattr(session, "session_id", "")),
                    str(getattr(session, "server", "")), kind, action,
                    asyncio.get_running_loop().create_future(), number=next(self._numbers),
                    url=action.url if isinstance(action, OpenBrowser) else "")
        self.items.append(p)
        emit(self.changed)
        return p

    async def wait(self, p: Pending) -> Answer:
        """The answer to ``p``; gone from the list however it ends (a stopped session cancels this)."""
        try:
            return await p.future
        finally:
            self._drop(p)

    def resolve(self, p: Pending, answer: Answer) -> bool:
        """Answer ``p`` (False when it was answered already)."""
        if p.future.done():
            return False
        p.future.set_result(answer)
        self._drop(p)
        return True

    def _drop(self, p: Pending) -> None:
        if p in self.items:
            self.items.remove(p)
            emit(self.changed)

    # ------------------------------------------------------------------ what the window asks

    def waiting(self, device_id: str) -> list[Pending]:
        return [p for p in self.items if p.device_id == device_id and not p.done()]

    def devices(self) -> list[str]:
        """Devices with an open request, in the order they first asked."""
        return list(dict.fromkeys(p.device_id for p in self.items if not p.done()))

    def count(self) -> int:
        """Sessions waiting for the user (a session with a page and an alert open counts once)."""
        return len({(p.device_id, p.session_id) for p in self.items if not p.done()})

    def answer_with_defaults(self, device_ids: Iterable[str] | None = None) -> int:
        """Let the headless answerer answer the requests of ``device_ids`` (None: all); how many."""
        wanted = None if device_ids is None else set(device_ids)
        chosen = [p for p in list(self.items) if wanted is None or p.device_id in wanted]
        return sum(self.resolve(p, DEFAULTS) for p in chosen)

    def cancel(self, device_id: str) -> int:
        """Answer the device's requests "cancelled" (its session was stopped); how many."""
        return sum(self.resolve(p, UserAnswer("cancelled")) for p in self.waiting(device_id))

    def cancel_all(self) -> int:
        """Answer every open request "cancelled" (the window closes); how many."""
        return sum(self.resolve(p, UserAnswer("cancelled")) for p in list(self.items))

    # ------------------------------------------------------------------ sessions ending

    def apply_events(self, events: Sequence[object]) -> None:
        """Remember how sessions ended, so a finished page does not say "the session goes on"."""
        for e in events:
            if isinstance(e, SessionEnded):
                self.ended[(e.device_id, e.session_id)] = e.outcome + (f": {e.detail}" if e.detail and
                                                                       e.outcome != "completed" else "")
                while len(self.ended) > MAX_ENDED:
                    self.ended.pop(next(iter(self.ended)))

    def session_end(self, device_id: str, session_id: str) -> str:
        """How the session ended ("" while it runs)."""
        return self.ended.get((device_id, session_id), "")
