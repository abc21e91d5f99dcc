"""Whether a fleet of N devices fits in this machine's memory, asked before a single device is built.

``run --count 100000000`` would otherwise allocate device after device until the kernel kills the
process (or the machine swaps to a halt), long after the mistake could have been named. The
estimate is deliberately simple: devices share their profile's template tree, so a fleet costs
about :data:`BYTES_PER_DEVICE` per device while it runs its sessions (measured: 27 KB per device
for 2,000 smartphones, one DM 2.0 session each, ``/usr/bin/time -f %M dm-emulator run ...
--count 2000`` minus ``--count 1``; rounded up to 40 KiB for peaks), and the run is refused when
that is more than :data:`MEMORY_SHARE` of the memory available now.
"""

from __future__ import annotations

import os

from emulator.errors import EmulatorError

BYTES_PER_DEVICE = 40 * 1024
MEMORY_SHARE = 0.8  # of MemAvailable: leave the rest to the server, the window and the system


def available_memory() -> int | None:
    """Bytes the kernel says a process can still get without swapping (MemAvailable); None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fleet_fits(devices: int, available: int | None = None) -> int:
    """The estimated bytes of a fleet of ``devices``; EmulatorError naming the figures when it cannot fit."""
    need = devices * BYTES_PER_DEVICE
    have = available_memory() if available is None else available
    if have is not None and need > have * MEMORY_SHARE:
        raise EmulatorError(
            f"{devices:,} devices need about {_mib(need)} (estimated {BYTES_PER_DEVICE // 1024} KiB each); "
            f"this machine has {_mib(have)} available, and a fleet may use {MEMORY_SHARE:.0%} of it: "
            f"at most about {int(have * MEMORY_SHARE) // BYTES_PER_DEVICE:,} devices here "
            "(run fewer, or spread them over Locust workers: dm-emulator locust)",
            status=400,
        )
    return need


def _mib(n: int) -> str:
    return f"{n / (1 << 30):,.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):,.0f} MiB"
