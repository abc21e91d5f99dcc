"""Where a bench process's CPU goes, grouped by the part of the stack that spends it.

`dm-emulator bench` prints this for a missed target so the figure comes with what is left to cut.
The figures are never measured while profiling: the profile comes from a separate, shorter run of
new devices, sampled in both processes (:class:`Sampler`, one sample per millisecond of CPU), and
only its *shares* are used; milliseconds per session are those shares times the CPU per session
of the unprofiled run.
"""

from __future__ import annotations

import signal
import time
import tracemalloc
from collections import Counter
from types import FrameType
from typing import Any

HTTP = "http"
AREAS = {
    HTTP: "HTTP",  # the process's side: "HTTP client" or "HTTP server (aiohttp)", see area_label
    "codec": "XML/WBXML/JSON encode and decode",
    "engine": "DM engine (sessions, commands, scripts)",
    "tree": "tree and managed objects",
    "auth": "auth and crypto (digest, HMAC, nonces)",
    "events": "events and traffic records",
    "loop": "asyncio loop and sockets",
    "other": "other (startup, the bench's own bookkeeping)",
}
"""Area keys and the words printed for them."""

_RULES: tuple[tuple[str, str], ...] = (
    # (a piece of the code's file path or builtin's name, area): first match wins
    ("emulator/transport/", HTTP), ("emulator/server/fault_middleware", HTTP), ("emulator/server/limits", HTTP),
    ("emulator/server/lean_http", HTTP), ("/aiohttp/", HTTP), ("/multidict/", HTTP), ("/yarl/", HTTP),
    ("/httptools/", HTTP), ("/h11/", HTTP), ("/propcache/", HTTP), ("/frozenlist/", HTTP), ("/aiosignal/", HTTP),
    ("/http/", HTTP), ("/email/", HTTP), ("httptools", HTTP), ("multidict", HTTP), ("yarl", HTTP),
    ("aiohttp", HTTP),
    ("emulator/util/xmlsafe", "codec"), ("emulator/protocol/syncml/wbxml", "codec"),
    ("emulator/protocol/syncml/message", "codec"), ("emulator/protocol/syncml/packer", "codec"),
    ("emulator/protocol/dm2/jsonsafe", "codec"), ("emulator/protocol/dm2/messages", "codec"),
    ("/xml/", "codec"), ("/defusedxml/", "codec"), ("/json/", "codec"), ("pyexpat", "codec"), ("_elementtree", "codec"),
    ("_json", "codec"), ("lxml", "codec"),
    ("emulator/protocol/syncml/auth", "auth"), ("emulator/protocol/dm2/digest", "auth"),
    ("emulator/server/dm2_auth", "auth"), ("emulator/server/accounts", "auth"), ("/hmac.py", "auth"),
    ("/hashlib.py", "auth"), ("/secrets.py", "auth"), ("/base64.py", "auth"), ("_hashlib", "auth"),
    ("_hmac", "auth"), ("binascii", "auth"), ("/ssl.py", "auth"), ("_ssl", "auth"),
    ("emulator/events", "events"), ("emulator/protocol/traffic", "events"), ("emulator/store/", "events"),
    ("emulator/tree/", "tree"), ("emulator/mo/", "tree"),
    ("emulator/protocol/", "engine"), ("emulator/server/", "engine"), ("emulator/fleet/", "engine"),
    ("emulator/device/", "engine"), ("emulator/scenarios/", "engine"),
    ("emulator/commands/", "other"),
    ("/asyncio/", "loop"), ("/selectors.py", "loop"), ("/socket.py", "loop"), ("/uvloop/", "loop"),
    ("uvloop", "loop"), ("_asyncio", "loop"), ("select.epoll", "loop"), ("_socket", "loop"),
    ("'poll' of", "loop"), ("run_until_complete", "loop"), ("_contextvars", "loop"),
)

Func = tuple[str, int, str]  # file, first line, function name
SAMPLE_INTERVAL_S = 0.001
"""One sample a millisecond of CPU (or a clock tick, where the kernel checks CPU timers only on
ticks: at 250 Hz, one per 4 ms): thousands over a profiled run."""


def area_label(area: str, side: str) -> str:
    """The printed words of an area; HTTP says which end of it this process is."""
    if area == HTTP:
        return "HTTP server (lean path, aiohttp, middleware)" if side == "server" else "HTTP client (transport, httptools, aiohttp)"
    return AREAS[area]


def _rule_area(func: Func) -> str | None:
    file, _, name = func
    text = (file if file != "~" else name).replace("\\", "/")
    for piece, area in _RULES:
        if piece in text:
            return area
    return None


def func_name(func: Func) -> str:
    """``module/path.py:line(name)`` from the package root on, or a builtin's own name."""
    file, line, name = func
    if file in ("~", "<generated>"):  # a builtin, or a function made at run time (a dataclass's __init__)
        return name
    path = file.replace("\\", "/")
    if "/site-packages/" in path:
        path = path.rsplit("/site-packages/", 1)[1]
    elif "/emulator/" in path:
        path = "emulator/" + path.rsplit("/emulator/", 1)[1]
    elif "/lib/python3" in path:
        path = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return f"{path}:{line}({name})"


class Sampler:
    """A sampling profiler of this process's CPU time: every ``interval`` seconds of CPU (user and
    system, ``ITIMER_PROF``) the kernel signals the process and the handler notes the Python frame
    that runs. A process that waits is not signalled, so waiting costs no samples; the handler's
    own cost (a few microseconds a millisecond) is why this barely slows what it watches.

    A signal that arrives in C code (a builtin, the parser, a socket call) is handled when control
    is back in Python, in the frame that called it: so a function's "own time" includes the builtins
    it calls, and an area is that of the innermost frame whose file a rule places."""

    def __init__(self, interval: float = SAMPLE_INTERVAL_S) -> None:
        self.interval = interval
        self.samples = 0
        self.leaves: Counter[Func] = Counter()
        self.areas: Counter[str] = Counter()
        self._file_area: dict[str, str | None] = {}
        self._previous: Any = None
        self._cpu0 = 0.0
        self.cpu_s = 0.0

    @staticmethod
    def available() -> bool:
        return hasattr(signal, "setitimer") and hasattr(signal, "SIGPROF")

    def start(self) -> None:
        self._previous = signal.signal(signal.SIGPROF, self._sample)
        self._cpu0 = time.process_time()
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        self.cpu_s = time.process_time() - self._cpu0
        signal.signal(signal.SIGPROF, self._previous or signal.SIG_DFL)

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        if frame is None:
            return
        self.samples += 1
        code = frame.f_code
        if code.co_filename == "<string>":  # a dataclass's generated __init__/__eq__/__hash__: name its class
            owner = frame.f_locals.get("self")
            name = f"{type(owner).__module__}.{type(owner).__qualname__}.{code.co_name}" if owner is not None \
                else code.co_qualname
            self.leaves[("<generated>", 0, name)] += 1
        else:
            self.leaves[(code.co_filename, code.co_firstlineno, code.co_qualname)] += 1
        cache = self._file_area
        area = None
        at: FrameType | None = frame
        while at is not None:
            file = at.f_code.co_filename
            if file not in cache:
                cache[file] = _rule_area((file, 0, ""))
            area = cache[file]
            if area is not None:
                break
            at = at.f_back
        self.areas[area or "other"] += 1

    def summary(self, top: int = 12) -> dict[str, Any]:
        """Shares of the samples by area (summing to 1) and the ``top`` functions by own samples."""
        n = self.samples
        return {
            "samples": n,
            "profiled_cpu_s": round(self.cpu_s, 3),
            "areas": {a: round(self.areas[a] / n, 4) if n else 0.0 for a in AREAS},
            "top": [{"function": func_name(f), "share": round(c / n, 4), "samples": c}
                    for f, c in self.leaves.most_common(top)],
        }


def with_ms(summary: dict[str, Any], cpu_ms_per_session: float | None) -> dict[str, Any]:
    """The summary with each share as milliseconds of the unprofiled run's CPU per session."""
    if cpu_ms_per_session is None:
        return summary
    out = dict(summary)
    out["cpu_ms_per_session"] = cpu_ms_per_session
    out["areas_ms_per_session"] = {a: round(s * cpu_ms_per_session, 3) for a, s in summary["areas"].items()}
    out["top"] = [{**t, "ms_per_session": round(t["share"] * cpu_ms_per_session, 4)} for t in summary["top"]]
    return out


def profile_lines(side: str, summary: dict[str, Any], areas_shown: int = 8, top_shown: int = 10) -> list[str]:
    """The printed breakdown of one process: areas (largest first), then functions by own time."""
    ms = summary.get("areas_ms_per_session", {})
    title = "emulator process" if side == "emulator" else "reference server process"
    per = summary.get("cpu_ms_per_session")
    lines = [f"  {title}: {summary['samples']:,} samples over {summary['profiled_cpu_s']:.2f} s of CPU"
             + (f"; {per:.3f} ms CPU per session in the measured run" if per is not None else "")]
    ranked = sorted(summary["areas"].items(), key=lambda kv: kv[1], reverse=True)
    for area, share in ranked[:areas_shown]:
        if share <= 0:
            continue
        extra = f"  {ms[area]:.3f} ms/session" if area in ms else ""
        lines.append(f"    {share:6.1%}  {area_label(area, side)}{extra}")
    lines.append("    top functions by own time (with the builtins they call):")
    for t in summary["top"][:top_shown]:
        extra = f"  {t['ms_per_session']:.4f} ms/session" if "ms_per_session" in t else ""
        lines.append(f"    {t['share']:6.1%}  {t['function']}{extra}")
    return lines


def allocation_summary(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, devices: int,
                       top: int = 12) -> dict[str, Any]:
    """What ``devices`` more idle devices allocated (tracemalloc), per device: by area of the file
    that allocated it, and the lines that allocated most."""
    def area_of(file: str) -> str:
        return _rule_area((file, 0, "")) or "other"

    by_file = after.compare_to(before, "filename")
    areas = dict.fromkeys(AREAS, 0.0)
    for stat in by_file:
        areas[area_of(stat.traceback[0].filename)] += stat.size_diff
    total = sum(areas.values())
    by_line = sorted(after.compare_to(before, "lineno"), key=lambda st: st.size_diff, reverse=True)[:top]
    return {
        "bytes_per_device": round(total / devices),
        "areas": {a: round(b / total, 4) if total else 0.0 for a, b in areas.items()},
        "areas_bytes_per_device": {a: round(b / devices) for a, b in areas.items()},
        "top": [{"line": func_name((st.traceback[0].filename, st.traceback[0].lineno, "")).removesuffix("()"),
                 "bytes_per_device": round(st.size_diff / devices),
                 "share": round(st.size_diff / total, 4) if total else 0.0} for st in by_line],
    }


def memory_lines(summary: dict[str, Any], top_shown: int = 10) -> list[str]:
    """The printed breakdown of an idle device's memory: areas, then the lines that allocate most."""
    lines = [f"  idle device memory ({summary['bytes_per_device'] / 1024:.1f} KiB each, traced over "
             f"{summary['devices']:,} devices)"]
    for area, share in sorted(summary["areas"].items(), key=lambda kv: kv[1], reverse=True):
        if share > 0:
            lines.append(f"    {share:6.1%}  {AREAS[area]}  {summary['areas_bytes_per_device'][area] / 1024:.2f} KiB")
    lines.append("    top lines by bytes allocated:")
    for t in summary["top"][:top_shown]:
        lines.append(f"    {t['share']:6.1%}  {t['line']}  {t['bytes_per_device']:,} bytes")
    return lines
