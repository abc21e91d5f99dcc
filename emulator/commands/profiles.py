"""`dm-emulator profiles`: the device profiles a user can build devices from."""

from __future__ import annotations

import argparse
import sys

from emulator.device.profile import list_profiles


def run(args: argparse.Namespace) -> int:
    summaries = list_profiles()
    width = max((len(s.name) for s in summaries), default=4)
    broken = 0
    for s in summaries:
        if s.error:
            broken += 1
            print(f"{s.name:<{width}}  BROKEN: {s.error}", file=sys.stderr)
            continue
        print(f"{s.name:<{width}}  {'+'.join(s.protocols):<9} {s.title}")
    return 1 if broken else 0
