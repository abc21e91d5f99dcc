"""What a bearer does to traffic, as delays every transport applies with its own sleep.

The arithmetic is here once, so the pooled asyncio client and the blocking client (Locust) shape
alike: latency and jitter before each request, loss as TCP retransmission delay (or, on a bearer
that loses everything, a failed request), bandwidth as the time a body spends on the link.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Shaping:
    """What a bearer does to traffic: latency and jitter before each request, loss as retransmission
    delay (or a dropped request), bandwidth as the time a body takes on the link (0 = unlimited)."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    bandwidth_kbps: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.latency_ms or self.jitter_ms or self.loss or self.bandwidth_kbps)

    def transfer_ms(self, size: int) -> float:
        """Milliseconds ``size`` bytes spend on the link: serialization delay, 8 bits per byte."""
        if self.bandwidth_kbps <= 0 or size <= 0:
            return 0.0
        return size * 8 / self.bandwidth_kbps  # kbit/s = bit/ms

    def before(self, method: str, url: str, size: int, rng: random.Random | None) -> tuple[float, str]:
        """(milliseconds to wait before sending ``size`` bytes, "") or (0, why the request is lost)."""
        if not self.active:
            return 0.0, ""
        rng = rng or random.Random()
        delay = self.latency_ms + (rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0)
        # TCP hides loss as retransmission delay; only a bearer that loses everything fails the request
        retries = 0
        while self.loss and rng.random() < self.loss:
            retries += 1
            if retries > MAX_RETRANSMISSIONS:
                return 0.0, (f"{method} {url}: no answer over the bearer after {MAX_RETRANSMISSIONS} "
                             f"retransmissions (simulated loss {self.loss:.1%})")
            delay += max(RTO_MS, 2 * self.latency_ms) * retries
        return max(0.0, delay + self.transfer_ms(size)), ""


NO_SHAPING = Shaping()
RTO_MS = 200.0  # TCP's minimum retransmission timeout
MAX_RETRANSMISSIONS = 5
