"""The long fuzzing campaign over every decoder; prints the figures that docs/fuzzing.md records.

    .venv/bin/python tests/fuzz/run_campaign.py                      # hypothesis, 20,000 inputs each
    .venv/bin/python tests/fuzz/run_campaign.py --examples 2000 --only tnds profile
    .venv/bin/python tests/fuzz/run_campaign.py --atheris --seconds 120   # coverage-guided (needs atheris)

Hypothesis mode draws inputs mutated from real documents (see fuzz_targets.py) without stopping at
the first crash: every crash is recorded, grouped by exception type and the line it came from, and
printed with the smallest input that caused it. Atheris mode runs libFuzzer, guided by coverage, one
subprocess per decoder. The exit code is 1 when anything but an EmulatorError came out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fuzz_targets import TARGETS, Target, inputs  # noqa: E402


@dataclass
class Tally:
    name: str
    inputs: int = 0
    accepted: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    messages: set[str] = field(default_factory=set)  # distinct error texts, digits blanked: paths reached
    crashes: dict[str, tuple[int, bytes, str]] = field(default_factory=dict)  # where -> (count, input, trace)
    seconds: float = 0.0

    def record(self, target: Target, data: bytes) -> None:
        from emulator.errors import EmulatorError

        self.inputs += 1
        try:
            result = target.decode(data)
        except EmulatorError as exc:
            self.errors[type(exc).__name__] += 1
            if len(self.messages) < 100_000:
                self.messages.add(type(exc).__name__ + _DIGITS.sub("#", _QUOTED.sub("''", str(exc)))[:80])
            return
        except Exception as exc:  # noqa: BLE001 - a crash: record it and go on
            where = _where(exc)
            count, smallest, trace = self.crashes.get(where, (0, data, ""))
            if len(data) <= len(smallest) or not trace:
                smallest, trace = data, "".join(traceback.format_exception(exc)[-4:])
            self.crashes[where] = (count + 1, smallest, trace)
            return
        self.accepted += 1
        if hasattr(result, "outcome") and len(self.messages) < 100_000:  # an engine's SessionDone
            detail = _DIGITS.sub("#", _QUOTED.sub("''", str(getattr(result, "detail", ""))))[:80]
            self.messages.add(f"{result.outcome}: {detail}")

    def as_dict(self) -> dict:
        return {"name": self.name, "inputs": self.inputs, "accepted": self.accepted, "errors": dict(self.errors),
                "messages": sorted(self.messages),
                "crashes": {w: [c, d.hex(), t] for w, (c, d, t) in self.crashes.items()}, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict) -> Tally:
        t = cls(d["name"], d["inputs"], d["accepted"], Counter(d["errors"]), set(d["messages"]), seconds=d["seconds"])
        t.crashes = {w: (c, bytes.fromhex(h), tr) for w, (c, h, tr) in d["crashes"].items()}
        return t


_DIGITS = re.compile(r"\d+")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|<[^>]*>|/\S+")  # input text and file paths inside messages


def _where(exc: BaseException) -> str:
    """Exception type plus the innermost emulator line: one entry per distinct bug."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "/emulator/" in f.filename] or frames
    last = own[-1] if own else None
    at = f"{Path(last.filename).name}:{last.lineno}" if last else "?"
    return f"{type(exc).__name__} at {at}"


# ---------------------------------------------------------------------------------------------- hypothesis


def run_hypothesis(target: Target, examples: int, seed: int) -> Tally:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    tally = Tally(target.name)

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(inputs(target))
    def campaign(data: bytes) -> None:
        tally.record(target, data)

    start = time.perf_counter()
    campaign()
    tally.seconds = time.perf_counter() - start
    return tally


# ---------------------------------------------------------------------------------------------- atheris


def run_atheris_child(name: str, seconds: int, out: str) -> None:
    """Runs in its own process: libFuzzer never returns and exits without running atexit handlers, so
    the figures are written twice a second while it runs."""
    import atheris

    target = TARGETS[name]
    with atheris.instrument_imports(include=["emulator"]):
        import emulator.device.build  # noqa: F401
        import emulator.device.profile  # noqa: F401
        import emulator.protocol.dm2.messages  # noqa: F401
        import emulator.protocol.dm2.moser  # noqa: F401
        import emulator.protocol.dm2.notification  # noqa: F401
        import emulator.protocol.syncml.message  # noqa: F401
        import emulator.protocol.syncml.notification  # noqa: F401
        import emulator.protocol.syncml.wbxml  # noqa: F401
        import emulator.tree.clienturi  # noqa: F401
        import emulator.tree.ddf  # noqa: F401
        import emulator.tree.tnds  # noqa: F401
        import emulator.tree.uri  # noqa: F401
    tally = Tally(name)
    corpus = tempfile.mkdtemp(prefix=f"fuzz-{name}-")
    for i, seed in enumerate(target.seeds()):
        Path(corpus, f"seed{i}").write_bytes(seed)
    start = last = time.perf_counter()

    def one_input(data: bytes) -> None:
        nonlocal last
        tally.record(target, data)
        now = time.perf_counter()
        if now - last > 0.5:
            last = now
            tally.seconds = now - start
            Path(out).write_text(json.dumps(tally.as_dict()))

    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-rss_limit_mb=2048", "-max_len=16384",
                   "-print_final_stats=0", corpus], one_input)
    atheris.Fuzz()


def run_atheris(target: Target, seconds: int) -> Tally:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    subprocess.run([sys.executable, __file__, "--atheris-child", target.name, "--seconds", str(seconds),
                    "--out", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    try:
        return Tally.from_dict(json.loads(Path(out).read_text()))
    except (OSError, ValueError):
        return Tally(target.name)  # the child died before writing: reported as 0 inputs
    finally:
        os.unlink(out)


# ---------------------------------------------------------------------------------------------- report


def report(tallies: list[Tally]) -> int:
    print(f"\n{'decoder':<22}{'inputs':>10}{'accepted':>10}{'typed errors':>14}{'distinct':>10}{'crashes':>9}"
          f"{'inputs/s':>10}")
    for t in tallies:
        rate = t.inputs / t.seconds if t.seconds else 0
        print(f"{t.name:<22}{t.inputs:>10,}{t.accepted:>10,}{sum(t.errors.values()):>14,}{len(t.messages):>10,}"
              f"{sum(c for c, _, _ in t.crashes.values()):>9,}{rate:>10,.0f}")
    total = sum(t.inputs for t in tallies)
    print(f"{'total':<22}{total:>10,}")
    crashed = [(t, w, c) for t in tallies for w, c in t.crashes.items()]
    for t, where, (count, data, trace) in crashed:
        print(f"\nCRASH {t.name}: {where} ({count}x); smallest input {len(data)} bytes: {data[:300]!r}\n{trace}")
    for t in tallies:
        kinds = ", ".join(f"{k} {v:,}" for k, v in t.errors.most_common())
        print(f"  {t.name}: {kinds}")
    return 1 if crashed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=20_000, help="hypothesis inputs per decoder")
    p.add_argument("--seed", type=int, default=20240601, help="hypothesis seed (the run is reproducible)")
    p.add_argument("--only", nargs="*", choices=sorted(TARGETS), help="these decoders only")
    p.add_argument("--atheris", action="store_true", help="coverage-guided with atheris instead of hypothesis")
    p.add_argument("--seconds", type=int, default=60, help="atheris: seconds per decoder")
    p.add_argument("--atheris-child", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.atheris_child:
        run_atheris_child(args.atheris_child, args.seconds, args.out)
        return 0
    tallies = []
    for name in args.only or sorted(TARGETS):
        tally = run_atheris(TARGETS[name], args.seconds) if args.atheris else run_hypothesis(
            TARGETS[name], args.examples, args.seed)
        print(f"{name}: {tally.inputs:,} inputs in {tally.seconds:.1f} s, {len(tally.crashes)} distinct crashes",
              flush=True)
        tallies.append(tally)
    return report(tallies)


if __name__ == "__main__":
    sys.exit(main())
