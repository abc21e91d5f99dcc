"""`dm-emulator locust ARGS`: Locust with our virtual devices as its users.

Runs ``python -m locust -f <emulator/fleet/locust_user.py> ARGS`` in a child process: Locust patches the
whole process for gevent, which must never happen to the asyncio side of the emulator. Everything
after ``locust`` goes to Locust unchanged (``--master``, ``--worker``, ``--headless``, ``-u``, ``-r``,
``-t``, ``--csv``, ``--host`` ...), plus the devices' own options ``--dm-profile``,
``--dm-protocols`` and ``--dm-first-index``.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from emulator.errors import EmulatorError

LOCUSTFILE = Path(__file__).resolve().parents[1] / "fleet" / "locust_user.py"


def locust_command(locust_args: list[str]) -> list[str]:
    """The child's command line: our locustfile unless the arguments name one (``-f``/``--locustfile``)."""
    args = [a for a in locust_args if a != "--"]
    names_file = any(a in ("-f", "--locustfile") or a.startswith("--locustfile=") for a in args)
    return [sys.executable, "-m", "locust", *([] if names_file else ["-f", str(LOCUSTFILE)]), *args]


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("locust") is None:
        raise EmulatorError("Locust is not installed here: pip install locust (or pip install -e '.[test]')")
    try:
        return subprocess.call(locust_command(list(args.locust_args)))
    except KeyboardInterrupt:
        return 130
