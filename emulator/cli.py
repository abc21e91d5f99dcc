"""The `dm-emulator` command line: parses arguments and hands each sub-command to its own module.

Every sub-command lives in a module of its own and is imported only when it runs (see COMMANDS), so
`dm-emulator --help` answers at once and never loads Qt, lxml or the network stack. A command's
module exposes a function `run(args: argparse.Namespace) -> int | None`.

A non-zero exit always comes with a line on stderr that says what failed and where:
2 = the command cannot start here (bad arguments, not built yet, no display), 1 = it failed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from emulator import __version__
from emulator.errors import EmulatorError

PROG = "dm-emulator"
UI_BENCH_TARGET = "ui.bench:main"  # `bench --ui`: the window's responsiveness figures

# Qt platform plugins that draw without any display server.
_HEADLESS_QT_PLATFORMS = frozenset(
    {"offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb", "vkkhrdisplay"}
)


# Every --profile takes a name or a path; `dm-emulator profiles new NAME --from smartphone` writes a file to edit.
Number = TypeVar("Number", int, float)
PROFILE_HELP = "a shipped profile's name (`dm-emulator profiles` lists them) or the path to your own .toml file"


def _bounded(kind: Callable[[str], Number], what: str, ok: Callable[[Number], bool], bound: str) -> Callable[[str], Number]:
    """An argparse type: ``kind`` of the text (else "expected <what>"), within ``ok`` (else
    "expected <bound>"); a refused integer is shown as read, a refused number of seconds as typed."""

    def parse(text: str) -> Number:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):  # (nan fails every bound)
            raise argparse.ArgumentTypeError(f"expected {bound}, got {value if kind is int else text}")
        return value

    return parse


_positive_int = _bounded(int, "a whole number", lambda v: v >= 1, "1 or more")
_whole_number = _bounded(int, "a whole number", lambda v: v >= 0, "0 or more")
_positive_seconds = _bounded(float, "a number of seconds", lambda v: 0 < v <= 86400,
                             "more than 0 and at most 86400 seconds")
_seconds = _bounded(float, "seconds", lambda v: 0 <= v < float("inf"), "0 or more seconds")
_non_negative_number = _bounded(float, "a number", lambda v: 0 <= v < float("inf"), "a finite number, 0 or more")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def _gui_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workspace",
        metavar="DIR",
        help="folder holding the devices, their trees and their traffic (default: a demo workspace)",
    )
    p.add_argument(
        "--no-demo",
        action="store_true",
        help="do not start the reference server and the demo devices; start with an empty fleet",
    )
    p.add_argument(
        "--screenshot",
        metavar="PNG",
        help="save a picture of the window to PNG once it is ready, then quit",
    )


def _server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument(
        "--port",
        type=_port,
        default=8700,
        metavar="N",
        help="port to listen on; 0 picks a free one and prints it (default: %(default)s)",
    )
    p.add_argument("--tls", action="store_true", help="serve HTTPS with a generated test CA and certificate")
    p.add_argument(
        "--tls-dir",
        metavar="DIR",
        help="keep the generated CA and certificate here, reused on restart (default: a new temporary folder)",
    )
    p.add_argument(
        "--require-client-cert",
        action="store_true",
        help="with --tls: refuse devices without a client certificate from that CA (mutual TLS)",
    )
    p.add_argument(
        "--accounts",
        metavar="FILE.toml",
        help="accounts of DM clients the server did not ship ([[accounts]] with server_id, dev_id, client_user, "
        "client_secret, client_auth, server_name, server_secret, server_auth; see the README)",
    )
    p.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help="the token /admin/* asks for (Authorization: Bearer TOKEN); default: $DM_EMULATOR_ADMIN_TOKEN, "
        "else a random one printed at start",
    )
    p.add_argument(
        "--ui-resume",
        choices=("held", "client"),
        default="held",
        help="DM 2.0 after a SHOW: held = hold the answer until the form is sent (PROTOCOL 1.19); client = "
        "END, and go on in the session the device opens when its page ends (default: %(default)s)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:DEVICE]",
        help="misbehave on purpose for DEVICE (default: every device), once, at the 2nd answer of its next "
        "session: drop, slow[=SECONDS], http_500, http_503, malformed, truncated, oversize[=BYTES], "
        "repeat_msgid, switch_sessionid, challenge_forever, bad_digest_notification, replayed_notification "
        "(repeatable; more control: POST /admin/faults)",
    )


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", required=True, metavar="URL", help="the DM server to manage the devices")
    p.add_argument(
        "--profile",
        metavar="NAME|FILE",
        help=f"device profile to build the devices from: {PROFILE_HELP} (needed unless the scenario lists "
        "its devices)",
    )
    p.add_argument(
        "--count", type=_positive_int, default=1, metavar="N", help="how many devices (default: 1)"
    )
    p.add_argument(
        "--protocol",
        choices=("dm2", "dm12"),
        help="dm2 = OMA DM 2.0 (JSON), dm12 = DM 1.2/1.3 (SyncML); default: what the profile says",
    )
    p.add_argument(
        "--scenario",
        metavar="FILE",
        help="scenario file (TOML; or the name of one in assets/scenarios/): devices, timeline, expectations",
    )
    p.add_argument(
        "--server-auth",
        choices=("dm", "transport", "none"),
        help="how a DM 1.x server must prove itself, for every account (default: each account's own, "
        "profile key server_auth, else dm): dm = DM-layer credentials; transport = a verified TLS "
        "certificate is enough; none = accepted unauthenticated (warned)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="a server's protocol deviations (reused CmdIDs, Status children out of order, 212 where 200 "
        "is due ...) fail the session instead of being reported as warnings",
    )
    p.add_argument(
        "--request-deadline",
        type=_positive_seconds,
        metavar="SECONDS",
        help="longest one HTTP request may take, connect to last byte, however the server trickles its "
        "answer (default: 60)",
    )
    p.add_argument("--report", metavar="FILE.json", help="write a JSON report of the run to this file")
    p.add_argument(
        "--junit",
        metavar="FILE.xml",
        help="write a JUnit XML report for CI (a test case per expectation and per device)",
    )
    p.add_argument(
        "--retry",
        type=_whole_number,
        metavar="N",
        help="run a failed session again, up to N more times (0-10; default: the scenario's [pacing] retry, or 0)",
    )
    p.add_argument(
        "--retry-backoff",
        type=_seconds,
        metavar="S",
        help="seconds before the first retry, doubled for each further one (default: 1)",
    )
    p.add_argument(
        "--traffic-dir",
        metavar="DIR",
        help="write the traffic of every device whose session did not complete to DIR/<device>.jsonl "
        "(secrets masked; opens in the window's traffic log)",
    )
    p.add_argument(
        "--traffic-all", action="store_true", help="with --traffic-dir: write the traffic of every device"
    )
    p.add_argument(
        "--workspace",
        metavar="DIR",
        help="keep the devices, their trees, sessions and traffic in this workspace folder after the run",
    )
    p.add_argument(
        "--processes",
        type=_positive_int,
        metavar="N",
        help="run the fleet in N worker processes, one merged report (default: one per core, at most one "
        "per 500 devices; one when the scenario has timeline events, picks some devices of a group, or "
        "with --workspace)",
    )


def _respond_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile", required=True, metavar="NAME|FILE",
        help=f"device profile whose device answers the message: {PROFILE_HELP}",
    )
    p.add_argument(
        "--message",
        required=True,
        metavar="FILE",
        help="the server's package: SyncML XML, WBXML or DM 2.0 JSON ('-' reads standard input)",
    )
    p.add_argument("--wbxml", action="store_true", help="write the response as WBXML instead of XML")
    p.add_argument(
        "--content-type", metavar="TYPE",
        help="the Content-Type the message came with; one with SEC= and MAC= (a DM 1.3 server-initiated "
             "bootstrap) is taken as a bootstrap, and the device's first Package 1 to its new server is printed",
    )


def _tree_export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", required=True, metavar="NAME|FILE", help=f"device profile whose tree to export: {PROFILE_HELP}")
    p.add_argument("--out", metavar="FILE", help="write the TNDS XML here (default: standard output)")
    p.add_argument(
        "--reveal-secrets",
        action="store_true",
        help="write passwords, AAuthSecret and keys as they are (default: masked as ********)",
    )


def _tree_import_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="TNDS XML file to import")
    p.add_argument(
        "--workspace", required=True, metavar="DIR", help="workspace whose device receives the tree"
    )
    p.add_argument("--device", metavar="ID", help="merge into this workspace device (default: a new device)")
    p.add_argument(
        "--profile", metavar="NAME|FILE", help=f"profile of the new device: {PROFILE_HELP} (default: smartphone)"
    )


def _bench_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--devices",
        type=_positive_int,
        default=10_000,
        metavar="N",
        help="how many emulated devices run sessions (default: %(default)s)",
    )
    p.add_argument(
        "--idle-devices",
        type=_positive_int,
        default=100_000,
        metavar="N",
        help="then an idle fleet of N devices in this process, for the memory each one takes "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--profile-devices",
        type=_whole_number,
        default=1_000,
        metavar="N",
        help="for a missed target, profile both processes over a separate run of N new devices (at most "
        "--devices) and print where the CPU (or an idle device's memory) goes; 0: no profile "
        "(default: %(default)s)",
    )
    for name, unit, default in (
        ("sessions-per-s", "sessions/s", "2000"),
        ("cpu-ms", "ms of CPU per session, each process", "0.4"),
        ("ceiling-percent", "%% of the loopback ceiling", "50"),
        ("idle-kib", "KiB per idle device", "20"),
    ):
        p.add_argument(
            f"--target-{name}",
            type=_non_negative_number,
            metavar="X",
            help=f"judge the run against X {unit} instead of the target (default: {default})",
        )
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    p.add_argument(
        "--ui",
        action="store_true",
        help="measure the window instead: launch to a drawn window, and the longest event-loop stall "
        "while a device's tree changes 10,000 times a second (offscreen without a display)",
    )


def _locust_options(p: argparse.ArgumentParser) -> None:
    """Every argument after `locust` goes to Locust as it is (see main)."""
    p.epilog = (
        "Every other argument goes to Locust unchanged, for example: --headless -u 1000 -r 50 -t 5m "
        "--host URL --csv out, or --master / --worker --master-host HOST. Device options: "
        "--dm-profile NAME, --dm-protocols dm12,dm2, --dm-first-index N."
    )
    p.set_defaults(locust_args=[])


def _profiles_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reference",
        action="store_true",
        help="print every profile key with its type, default and meaning (Markdown; docs/profiles.md)",
    )
    actions = p.add_subparsers(title="actions", dest="profiles_action", metavar="new")
    new = actions.add_parser(
        "new",
        help="write a copy of a profile, every key explained in comments, to edit and use with --profile FILE",
        description="Write a copy of a profile with every key explained in comments, to edit. Use it "
        "by path: --profile ./NAME.toml.",
        prog=f"{PROG} profiles new",
    )
    new.add_argument("name", metavar="NAME", help="the new profile's name (letters, digits, . _ -)")
    new.add_argument(
        "--from",
        dest="source",
        default="smartphone",
        metavar="NAME|FILE",
        help=f"the profile to copy: {PROFILE_HELP} (default: %(default)s)",
    )
    new.add_argument("--out", metavar="FILE", help="where to write it (default: ./NAME.toml); never overwrites")


@dataclass(frozen=True, slots=True)
class Command:
    """One sub-command: its name (two words for `tree export`), where its code is, and its help."""

    name: str
    target: str  # "package.module:function", imported only when the command runs
    summary: str  # one line in `dm-emulator --help`
    description: str  # the top of `dm-emulator NAME --help`
    options: Callable[[argparse.ArgumentParser], None]


# The dispatch table: the one place that says which module implements which command.
COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "gui",
            "ui.app:run",
            "open the window (the default when no command is given)",
            "Open the desktop window. Without options it starts on the demo default: the reference DM "
            "server on 127.0.0.1 and a few demo devices from profiles/, ready to show a management "
            "session and a web UI flow. Needs a display; on a machine without one use "
            "`xvfb-run -a dm-emulator`.",
            _gui_options,
        ),
        Command(
            "server",
            "emulator.commands.server:run",
            "run the reference DM server alone",
            "Run the reference DM server (DM 2.0 and DM 1.2/1.3) alone, to manage emulated or real "
            "devices. Stops on Ctrl+C.",
            _server_options,
        ),
        Command(
            "run",
            "emulator.commands.run:run",
            "run a fleet of devices against a DM server, headless",
            "Run N emulated devices built from a profile (or a scenario) against a DM server, without a "
            "window, and report how every management session went. Exit code: 0 passed, 1 a session or "
            "an expectation failed, 2 the run could not start (checked before the first session), "
            "130/143 stopped by SIGINT/SIGTERM (the partial reports are written).",
            _run_options,
        ),
        Command(
            "respond",
            "emulator.commands.respond:run",
            "answer one server package and print the device's response",
            "Feed one server package (SyncML XML, WBXML or DM 2.0 JSON) to a device built from a "
            "profile and print the device's response package on standard output.",
            _respond_options,
        ),
        Command(
            "tree export",
            "emulator.commands.tree:export",
            "write a profile's management tree as TNDS XML",
            "Write the management tree of a device built from a profile as TNDS XML.",
            _tree_export_options,
        ),
        Command(
            "tree import",
            "emulator.commands.tree:import_tree",
            "load a TNDS XML file into a workspace device",
            "Load a management tree from a TNDS XML file into the device of a workspace.",
            _tree_import_options,
        ),
        Command(
            "profiles",
            "emulator.commands.profiles:run",
            "list the device profiles; `profiles new NAME` writes one to edit",
            "List the device profiles that `run`, `respond` and `tree export` can use by name; each "
            "--profile also takes the path to a .toml file of your own. `profiles new NAME --from "
            "smartphone` writes a commented copy to edit; `--reference` prints every key.",
            _profiles_options,
        ),
        Command(
            "bench",
            "emulator.commands.bench:run",
            "measure sessions per second, latency and memory per device",
            "Start the reference server in a second process on loopback, run N emulated devices that "
            "each do one complete DM 1.2 and one complete DM 2.0 session, and print figures: sessions "
            "per second, session latency (p50/p95/p99), messages per second, CPU per session of both "
            "processes (emulator and reference server), peak memory, memory per device (also for an "
            "idle fleet of --idle-devices), and the ratio to the loopback ceiling (the same number of "
            "HTTP round trips with a minimal client and handler, in the same run); then each target "
            "of README \"Performance\", met or missed, and for a missed one the profile that shows what "
            "is left (both processes sampled over a separate run; --target-* judges against other bars).",
            _bench_options,
        ),
        Command(
            "locust",
            "emulator.commands.locust:run",
            "load-test a DM server with Locust workers driving emulated devices",
            "Run emulated devices as Locust users, to load a DM server from one or many machines. "
            "Needs the locust package.",
            _locust_options,
        ),
    )
}

# Help for the first word of two-word commands.
GROUPS = {
    "tree": "Move management trees in and out as TNDS XML: export a profile's tree, or import one "
    "into a workspace device.",
}

DEFAULT_COMMAND = "gui"


def build_parser(commands: Mapping[str, Command] = COMMANDS) -> argparse.ArgumentParser:
    """The whole parser, built from the dispatch table alone (nothing is imported for it)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Emulate OMA Device Management devices (DM 2.0 and DM 1.2/1.3) against DM "
        "servers, in a window or headless. With no command, opens the window on its demo default.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="on an unexpected error, print the full Python traceback"
    )
    parser.set_defaults(command=None)
    top = parser.add_subparsers(title="commands", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for command in commands.values():
        words = command.name.split()
        where = top
        if len(words) == 2:
            if words[0] not in groups:
                group = top.add_parser(
                    words[0],
                    help=f"{words[0]} commands: {', '.join(_siblings(commands, words[0]))}",
                    description=GROUPS.get(words[0]),
                )
                groups[words[0]] = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
            where = groups[words[0]]
        sub = where.add_parser(
            words[-1], help=command.summary, description=command.description, prog=f"{PROG} {command.name}"
        )
        command.options(sub)
        sub.set_defaults(command=command.name)
    return parser


def _siblings(commands: Mapping[str, Command], first: str) -> list[str]:
    return [c.name.split()[1] for c in commands.values() if c.name.split()[0] == first]


def x_display_unreachable(display: str, timeout: float = 2.0) -> str | None:
    """Why nothing answers at X display ``display`` (``[host]:N[.screen]``), or None if a server does.

    Qt's xcb plugin aborts the process (exit 134) when DISPLAY names a server that is not there, and
    blames a missing libxcb-cursor0: a socket connect first turns that into the real reason.
    """
    host, sep, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if not sep or not number.isdigit():
        return f"DISPLAY={display!r} is not of the form [host]:N"
    if host in ("", "unix") or host.startswith("/"):
        # Xvfb and Xorg listen on the abstract socket and on the file socket; either will do.
        path = host if host.startswith("/") else f"/tmp/.X11-unix/X{number}"  # "/…:0": launchd's socket
        targets: list[tuple[int, str | tuple[str, int]]] = [(socket.AF_UNIX, "\0" + path), (socket.AF_UNIX, path)]
    else:
        targets = [(socket.AF_INET6 if ":" in host else socket.AF_INET, (host.strip("[]"), 6000 + int(number)))]
    last = ""
    for family, address in targets:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(address)  # str for AF_UNIX, (host, port) for INET
                return None
        except OSError as exc:
            last = exc.strerror or type(exc).__name__
    return f"no X server answers at DISPLAY={display} ({last})"


def display_problem(env: Mapping[str, str], platform: str,
                    reach: Callable[[str], str | None] = x_display_unreachable) -> str | None:
    """Why the window cannot open here, or None if it can.

    Checked before anything imports Qt: without a display Qt aborts the whole process with a
    core dump and a message about plugins, which tells a user nothing about what to do.
    ``reach`` says why an X display does not answer (tests give their own).
    """
    if not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None  # Windows and macOS always have their own display
    qpa = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip().lower()
    has_x = bool(env.get("DISPLAY"))
    has_wayland = bool(env.get("WAYLAND_DISPLAY"))
    if qpa in _HEADLESS_QT_PLATFORMS:
        return None
    if qpa == "xcb":
        if has_x:
            return _x_problem(env["DISPLAY"], reach)
        why = "QT_QPA_PLATFORM=xcb asks for X11, but DISPLAY is not set"
    elif qpa.startswith("wayland"):
        if has_wayland:
            return None
        why = f"QT_QPA_PLATFORM={qpa} asks for Wayland, but WAYLAND_DISPLAY is not set"
    elif qpa:
        return None  # a platform we do not know: the user chose it, let Qt speak for itself
    else:
        if has_wayland:
            return None
        if has_x:
            return _x_problem(env["DISPLAY"], reach)
        why = "DISPLAY and WAYLAND_DISPLAY are not set"
    return (
        f"no display found ({why}).\n"
        f"  To see the window on a machine without a screen: xvfb-run -a {PROG} ...\n"
        f"  To emulate devices without a window: {PROG} run --server URL --profile NAME"
    )


def _x_problem(display: str, reach: Callable[[str], str | None]) -> str | None:
    why = reach(display)
    if why is None:
        return None
    return (
        f"cannot open the window: {why}.\n"
        f"  Start the X server (or fix DISPLAY), or use a virtual one: xvfb-run -a {PROG} ...\n"
        f"  To emulate devices without a window: {PROG} run --server URL --profile NAME"
    )


class _NotBuilt(Exception):
    """The command's module or function does not exist yet."""


def load(target: str) -> Callable[[argparse.Namespace], int | None]:
    """Import "module:function" on use; _NotBuilt if that module or function is not there yet."""
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the command's own module (or its package) missing means "not built"; a missing
        # module it imports is a real error and must say so.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise _NotBuilt(f"{module_name} does not exist") from None
        raise
    try:
        return getattr(module, function)
    except AttributeError:
        raise _NotBuilt(f"{module_name} has no {function}()") from None


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {last.filename}:{last.lineno} in {last.name})"


def _say(label: str, message: str) -> None:
    print(f"{PROG} {label}: {message}", file=sys.stderr)


def _run_command(args: argparse.Namespace, commands: Mapping[str, Command]) -> int:
    command = commands[args.command]
    if command.name == "gui":
        problem = display_problem(os.environ, sys.platform)
        if problem:
            _say("gui", problem)
            return 2
        # QtWebEngine exits at once when run as root unless its sandbox is off (STACK.md).
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
    target = command.target
    if command.name == "bench" and getattr(args, "ui", False):
        target = UI_BENCH_TARGET  # Qt: lives in ui/, which emulator/ never imports
    try:
        function = load(target)
    except _NotBuilt:
        _say(command.name, "not built yet")
        return 2
    except ModuleNotFoundError as exc:
        _say(
            command.name,
            f"needs the Python package {exc.name!r}, which is not installed here; "
            "run scripts/dev start (or pip install -e .) first",
        )
        return 1
    result = function(args)
    return 0 if result is None else int(result)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `dm-emulator` and `python -m emulator`; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(COMMANDS)
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.command == "locust":  # Locust's own options pass through untouched
            args.locust_args = extra
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command is None:
            args = parser.parse_args([*argv, DEFAULT_COMMAND])
    except SystemExit as exc:  # --help, --version, or a usage error argparse already explained
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    try:
        return _run_command(args, COMMANDS)
    except EmulatorError as exc:
        _say(args.command, str(exc))
        return 1
    except KeyboardInterrupt:
        _say(args.command, "interrupted")
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`dm-emulator profiles | head`): not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        if args.traceback:
            traceback.print_exc()
        _say(
            args.command,
            f"unexpected error: {type(exc).__name__}: {exc}{_where(exc)}"
            + ("" if args.traceback else f"; run again as `{PROG} --traceback ...` for the full traceback"),
        )
        return 1
