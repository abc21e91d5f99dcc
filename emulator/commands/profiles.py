"""`dm-emulator profiles [--reference]` and `dm-emulator profiles new NAME --from PROFILE [--out FILE]`.

The list names the shipped profiles; every `--profile` also takes the path to a file of one's own,
and `profiles new` is how a user gets one: a copy of a working profile with each key explained in
comments (the sentences of docs/profiles.md), checked by the loader before this command says done.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from emulator.device.profile import find_profile, list_profiles, load_profile
from emulator.errors import EmulatorError, FileFormatError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "profiles_action", None) == "new":
        return new(args.name, args.source, args.out)
    if getattr(args, "reference", False):
        from emulator.device.profile_reference import reference_markdown

        sys.stdout.write(reference_markdown())
        return 0
    summaries = list_profiles()
    width = max((len(s.name) for s in summaries), default=4)
    broken = 0
    for s in summaries:
        if s.error:
            broken += 1
            print(f"{s.name:<{width}}  BROKEN: {s.error}", file=sys.stderr)
            continue
        print(f"{s.name:<{width}}  {'+'.join(s.protocols):<9} {s.title}")
    print("(a --profile also takes the path to a .toml file; `dm-emulator profiles new NAME --from smartphone` "
          "writes one to edit)", file=sys.stderr)
    return 1 if broken else 0


def new(name: str, source: str, out: str | None) -> int:
    """Write the commented copy; refuse a bad name, an existing file, or a copy the loader would refuse."""
    from emulator.device.profile_reference import commented_copy

    if not NAME.fullmatch(name):
        raise EmulatorError(f"{name!r} cannot be a profile name: use letters, digits, '.', '_' and '-' "
                            "(at most 64), starting with a letter or digit")
    profile = find_profile(source)
    target = Path(out) if out else Path(f"{name}.toml")
    if target.exists():
        raise EmulatorError(f"{target} exists already; remove it or choose another file with --out")
    text = commented_copy(Path(profile.source).read_text(encoding="utf-8"), name=name, source=profile.name)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise EmulatorError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        load_profile(target)
    except FileFormatError:
        target.unlink()
        raise
    shown = str(target) if target.is_absolute() or str(target).startswith(".") else f"./{target}"
    print(f"wrote {shown} (a copy of {profile.name}, every key explained in comments)")
    print(f"use it with: dm-emulator run --server URL --profile {shown}")
    return 0
