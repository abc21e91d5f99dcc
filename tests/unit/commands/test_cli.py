"""The `dm-emulator` command line, run as a user runs it: a real process, its exit code and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from emulator.cli import display_problem

ROOT = Path(__file__).resolve().parents[3]

# The faces as ARCHITECTURE.md "The faces" lists them, written out here rather than read from cli.py,
# so that a command or option dropped from the parser fails this test.
FACES = {
    "gui": ["--workspace", "--no-demo", "--screenshot"],
    "server": ["--host", "--port"],
    "run": ["--server", "--profile", "--count", "--protocol", "--scenario", "--report", "--junit"],
    "respond": ["--profile", "--message", "--wbxml"],
    "tree export": ["--profile", "--out"],
    "tree import": ["FILE", "--workspace"],
    "profiles": [],
    "bench": ["--devices", "--json"],
    "locust": [],
}

# Runs main() with one command pointed at another target, then says whether Qt got imported.
PATCHED_MAIN = textwrap.dedent(
    """
    import dataclasses, sys
    from emulator import cli
    name, target = sys.argv[1], sys.argv[2]
    if target != "-":
        cli.COMMANDS[name] = dataclasses.replace(cli.COMMANDS[name], target=target)
    code = cli.main(sys.argv[3:])
    qt = any(m.split(".")[0] in ("PySide6", "shiboken6", "qasync") for m in sys.modules)
    print("qt-imported" if qt else "qt-free")
    sys.exit(code)
    """
)


def _env(*, display: bool = True, extra_path: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if not display:
        for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
            env.pop(name, None)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    return env


def dm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator", *args],
        cwd=ROOT,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def patched(
    name: str, target: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PATCHED_MAIN, name, target, *args],
        cwd=ROOT,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_top_level_help_lists_every_face() -> None:
    result = dm("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: dm-emulator")
    for word in {name.split()[0] for name in FACES}:
        assert f"    {word}" in result.stdout, word


@pytest.mark.parametrize("name", sorted(FACES))
def test_each_command_help_exits_0_and_names_its_options(name: str) -> None:
    result = dm(*name.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: dm-emulator {name}")
    for option in FACES[name]:
        assert option in result.stdout, f"{name} --help does not mention {option}"
    description = result.stdout.split("\n\n")[1]
    assert len(description.split()) >= 8, f"{name} --help says too little: {description!r}"


def test_help_and_version_never_import_qt() -> None:
    result = patched("gui", "-", "--help")
    assert result.returncode == 0
    assert result.stdout.rstrip().endswith("qt-free")
    version = dm("--version")
    assert version.returncode == 0 and version.stdout.startswith("dm-emulator ")


def test_a_command_whose_module_does_not_exist_says_not_built_yet() -> None:
    result = patched("profiles", "emulator.commands.no_such_command_xyz:run", "profiles")
    assert result.returncode == 2
    assert "dm-emulator profiles: not built yet" in result.stderr


def test_a_module_without_the_command_function_is_not_built_yet() -> None:
    result = patched("tree export", "emulator.errors:export", "tree", "export", "--profile", "p")
    assert result.returncode == 2
    assert "dm-emulator tree export: not built yet" in result.stderr


@pytest.fixture
def fake_commands(tmp_path: Path) -> Path:
    (tmp_path / "fake_commands.py").write_text(
        textwrap.dedent(
            """
            from emulator.errors import FileFormatError

            def bad_file(args):
                raise FileFormatError("profiles/phone.toml", 3, "unknown key 'bearr'")

            def crash(args):
                raise ValueError("boom")

            def seven(args):
                print(f"profile={args.profile} count={args.count}")
                return 7

            def quiet(args):
                return None
            """
        )
    )
    (tmp_path / "needs_missing_dep.py").write_text("import no_such_dependency_xyz\n\ndef run(args): pass\n")
    return tmp_path


RUN_ARGS = ("run", "--server", "http://127.0.0.1:9/dm", "--profile", "phone")


def test_emulator_error_is_one_line_with_command_and_exit_1(fake_commands: Path) -> None:
    result = patched("run", "fake_commands:bad_file", *RUN_ARGS, env=_env(extra_path=fake_commands))
    assert result.returncode == 1
    assert result.stderr.strip() == "dm-emulator run: profiles/phone.toml:3: unknown key 'bearr'"


def test_unexpected_error_says_what_and_where_and_how_to_see_more(fake_commands: Path) -> None:
    result = patched("run", "fake_commands:crash", *RUN_ARGS, env=_env(extra_path=fake_commands))
    assert result.returncode == 1
    assert "dm-emulator run: unexpected error: ValueError: boom" in result.stderr
    assert "fake_commands.py:8 in crash" in result.stderr
    assert "--traceback" in result.stderr
    assert "Traceback (most recent call last)" not in result.stderr

    full = patched(
        "run", "fake_commands:crash", "--traceback", *RUN_ARGS, env=_env(extra_path=fake_commands)
    )
    assert full.returncode == 1
    assert "Traceback (most recent call last)" in full.stderr


def test_the_command_gets_parsed_arguments_and_its_exit_code_is_kept(fake_commands: Path) -> None:
    result = patched("run", "fake_commands:seven", *RUN_ARGS, "--count", "3", env=_env(extra_path=fake_commands))
    assert result.returncode == 7
    assert "profile=phone count=3" in result.stdout
    ok = patched("profiles", "fake_commands:quiet", "profiles", env=_env(extra_path=fake_commands))
    assert ok.returncode == 0, ok.stderr


def test_a_missing_dependency_is_named_not_reported_as_not_built(fake_commands: Path) -> None:
    result = patched("bench", "needs_missing_dep:run", "bench", env=_env(extra_path=fake_commands))
    assert result.returncode == 1
    assert "'no_such_dependency_xyz'" in result.stderr
    assert "not built yet" not in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "--profile", "phone"], "--server"),
        ([*RUN_ARGS, "--count", "0"], "expected 1 or more"),
        ([*RUN_ARGS, "--protocol", "dm3"], "invalid choice"),
        (["server", "--port", "70000"], "0 to 65535"),
        (["respond", "--profile", "phone"], "--message"),
        (["tree"], "required"),
        (["tree", "import", "t.xml"], "--workspace"),
        (["no-such-command"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_and_say_why(args: list[str], says: str) -> None:
    result = dm(*args)
    assert result.returncode == 2
    assert says in result.stderr
    assert "usage: dm-emulator" in result.stderr


@pytest.mark.parametrize("args", [[], ["gui"], ["gui", "--no-demo", "--screenshot", "x.png"]])
def test_without_a_display_the_window_does_not_crash_but_explains(args: list[str]) -> None:
    result = patched("gui", "-", *args, env=_env(display=False))
    assert result.returncode == 2
    assert result.stderr.startswith("dm-emulator gui: no display found")
    assert "xvfb-run -a dm-emulator" in result.stderr
    assert "dm-emulator run --server URL --profile NAME" in result.stderr
    assert result.stdout.rstrip().endswith("qt-free")


def test_without_a_display_python_dash_m_emulator_exits_2() -> None:
    result = dm(env=_env(display=False))
    assert result.returncode == 2
    assert "no display found" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "platform", "opens"),
    [
        ({}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", True),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", False),
        ({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":99"}, "linux", True),
        ({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":0"}, "linux", False),
        ({"QT_QPA_PLATFORM": "wayland;xcb", "WAYLAND_DISPLAY": "w"}, "linux", True),
        ({"QT_QPA_PLATFORM": "vnc:size=800x600"}, "linux", True),
        ({"DISPLAY": ""}, "linux", False),
        ({}, "darwin", True),
        ({}, "win32", True),
    ],
)
def test_display_problem(env: dict[str, str], platform: str, opens: bool) -> None:
    problem = display_problem(env, platform, reach=lambda display: None)
    assert (problem is None) is opens
    if problem:
        assert problem.startswith("no display found")


def test_a_display_nobody_answers_is_named_with_the_real_reason() -> None:
    problem = display_problem({"DISPLAY": ":987"}, "linux")  # the real probe: nothing listens there
    assert problem is not None
    assert problem.startswith("cannot open the window: no X server answers at DISPLAY=:987")
    assert "xvfb-run -a dm-emulator" in problem
    assert "not of the form" in (display_problem({"DISPLAY": "nonsense"}, "linux") or "")


def test_a_display_that_answers_opens() -> None:
    import socket

    path = f"/tmp/.X11-unix/X{9000 + os.getpid() % 900}"
    os.makedirs("/tmp/.X11-unix", exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
        server.listen(1)
        assert display_problem({"DISPLAY": ":" + path.rsplit("X", 1)[1]}, "linux") is None
    finally:
        server.close()
        os.unlink(path)


def test_an_unreachable_display_exits_2_not_134() -> None:
    env = _env(display=False)
    env["DISPLAY"] = ":987"
    result = dm("gui", "--no-demo", env=env)
    assert result.returncode == 2, result.stderr
    assert "no X server answers at DISPLAY=:987" in result.stderr
    assert "xcb" not in result.stderr


@pytest.mark.parametrize(
    ("parser", "text", "value_or_message"),
    [
        ("_positive_int", "3", 3),
        ("_positive_int", "1", 1),
        ("_positive_int", "0", "expected 1 or more, got 0"),
        ("_positive_int", "three", "expected a whole number, got 'three'"),
        ("_positive_int", "2.5", "expected a whole number, got '2.5'"),
        ("_whole_number", "0", 0),
        ("_whole_number", "-1", "expected 0 or more, got -1"),
        ("_whole_number", "", "expected a whole number, got ''"),
        ("_positive_seconds", "86400", 86400.0),
        ("_positive_seconds", "0.5", 0.5),
        ("_positive_seconds", "86400.001", "expected more than 0 and at most 86400 seconds, got 86400.001"),
        ("_positive_seconds", "0", "expected more than 0 and at most 86400 seconds, got 0"),
        ("_positive_seconds", "nan", "expected more than 0 and at most 86400 seconds, got nan"),
        ("_positive_seconds", "soon", "expected a number of seconds, got 'soon'"),
        ("_seconds", "0", 0.0),
        ("_seconds", "-0.1", "expected 0 or more seconds, got -0.1"),
        ("_seconds", "inf", "expected 0 or more seconds, got inf"),
        ("_seconds", "nan", "expected 0 or more seconds, got nan"),
        ("_seconds", "later", "expected seconds, got 'later'"),
    ],
)
def test_the_number_options_take_their_bounds_and_say_what_they_expected(parser: str, text: str,
                                                                          value_or_message: object) -> None:
    import argparse

    from emulator import cli

    parse = getattr(cli, parser)
    if isinstance(value_or_message, str):
        with pytest.raises(argparse.ArgumentTypeError) as err:
            parse(text)
        assert str(err.value) == value_or_message
    else:
        assert parse(text) == value_or_message
