"""Broken and hostile files: real profile, scenario, TNDS and message files written to disk and read
by the real loaders or the command line. Each is refused with file:line:reason (or read right), never
a RecursionError, a silent nan, an allocation until memory runs out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from emulator.device.profile import load_profile
from emulator.errors import EmulatorError, FileFormatError
from emulator.fleet.capacity import BYTES_PER_DEVICE, MEMORY_SHARE, check_fleet_fits
from emulator.scenarios.model import MAX_DURATION_S, load_scenario, parse_duration
from emulator.tree.tnds import import_tnds
from emulator.tree.tree import Tree
from emulator.util.tomlcheck import MAX_DEPTH, MAX_INT

ROOT = Path(__file__).resolve().parents[2]
SMARTPHONE = (ROOT / "profiles" / "smartphone.toml").read_text()
GET_XML = ROOT / "tests" / "hostile" / "get_devid.xml"


def _profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "evil.toml"
    path.write_text(text)
    return path


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# --- nesting -------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH - 2, MAX_DEPTH - 1, 5000])  # + the keys extra.x
def test_deeply_nested_profile_is_refused_with_file_and_line(tmp_path, depth):
    text = SMARTPHONE + "\n[extra]\nx = " + "[" * depth + "1" + "]" * depth + "\n"
    path = _profile(tmp_path, text)
    with pytest.raises(FileFormatError) as err:
        load_profile(path)
    if depth <= MAX_DEPTH - 2:  # not refused for depth: for the unknown key it is
        assert "nested deeper" not in str(err.value)
        return
    assert err.value.line == _line_of(text, "x = [")
    assert f"nested deeper than {MAX_DEPTH} levels" in err.value.reason
    assert str(err.value).startswith(f"{path}:{err.value.line}: ")


def test_deeply_nested_inline_tables_in_a_scenario_are_refused(tmp_path):
    text = 'name = "deep"\n\n[ui]\nform = ' + "{a = " * 3000 + "1" + "}" * 3000 + "\n"
    path = tmp_path / "deep.toml"
    path.write_text(text)
    with pytest.raises(FileFormatError) as err:
        load_scenario(path, profile="smartphone", count=1)
    assert err.value.line == 4 and "nested deeper" in err.value.reason


def test_deep_table_headers_are_refused(tmp_path):
    text = SMARTPHONE + "\n[" + ".".join(f"t{i}" for i in range(200)) + "]\nx = 1\n"
    with pytest.raises(FileFormatError) as err:
        load_profile(_profile(tmp_path, text))
    assert "nested deeper" in err.value.reason and err.value.line is not None


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value,ok", [
    (str(MAX_INT), True), (str(MAX_INT + 1), False), ("99999999999999999999", False), ("256", True),
    ("255", False),
])
def test_max_msg_size_has_a_range(tmp_path, value, ok):
    text = SMARTPHONE.replace("max_msg_size = 16384", f"max_msg_size = {value}")
    path = _profile(tmp_path, text)
    if ok:
        assert load_profile(path).max_msg_size == int(value)
        return
    with pytest.raises(FileFormatError) as err:
        load_profile(path)
    assert err.value.line == _line_of(text, "max_msg_size") and "max_msg_size" in err.value.reason


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
def test_scenario_jitter_nan_or_inf_is_refused(tmp_path, value):
    text = f'name = "j"\n\n[pacing]\nramp_up = "1s"\njitter = {value}\n'
    path = tmp_path / "j.toml"
    path.write_text(text)
    with pytest.raises(FileFormatError) as err:
        load_scenario(path, profile="smartphone", count=1)
    assert err.value.line == 5 and "pacing.jitter" in err.value.reason


@pytest.mark.parametrize("field,old,value", [
    ("latency_ms", "45", "99999999999999999999"), ("jitter_ms", "15", "nan"), ("loss", "0.002", "nan"),
    ("bandwidth_kbps", "40000", "inf"),
])
def test_bearer_numbers_have_ranges(tmp_path, field, old, value):
    text = SMARTPHONE.replace(f"{field} = {old}\n", f"{field} = {value}\n", 1)
    assert text != SMARTPHONE
    with pytest.raises(FileFormatError) as err:
        load_profile(_profile(tmp_path, text))
    assert err.value.line == _line_of(text, f"{field} = {value}") and field in err.value.reason


@pytest.mark.parametrize("text,ok", [
    ('name = "d"\nduration = "1h"', True), ('name = "d"\nduration = inf', False),
    ('name = "d"\nduration = 1e300', False), ('name = "d"\nduration = nan', False),
])
def test_durations_are_finite_and_bounded(tmp_path, text, ok):
    path = tmp_path / "d.toml"
    path.write_text(text + "\n")
    if ok:
        assert load_scenario(path, profile="smartphone", count=1).duration == 3600
    else:
        with pytest.raises(FileFormatError) as err:
            load_scenario(path, profile="smartphone", count=1)
        assert err.value.line == 2
    assert parse_duration(MAX_DURATION_S) == MAX_DURATION_S and parse_duration(MAX_DURATION_S * 1.0001) is None


def test_event_values_must_be_finite(tmp_path):
    text = ('name = "v"\nduration = "5s"\n\n[[events]]\nat = "1s"\ndo = "set_node"\n'
            'path = "./DevDetail/FwV"\nvalue = nan\n')
    path = tmp_path / "v.toml"
    path.write_text(text)
    with pytest.raises(FileFormatError) as err:
        load_scenario(path, profile="smartphone", count=1)
    assert err.value.line == _line_of(text, "value = nan")


# --- TNDS ----------------------------------------------------------------------------------------

TNDS = """<MgmtTree xmlns="syncml:dmddf1.2">
  <VerDTD>1.2</VerDTD>
  <Node>
    <NodeName>Counter</NodeName>
    <Path>./Ext</Path>
    <RTProperties><Format><{fmt}/></Format></RTProperties>
    <Value>{value}</Value>
  </Node>
</MgmtTree>
"""


@pytest.mark.parametrize("fmt,value,ok", [
    ("int", "42", True), ("int", "-7", True), ("int", "notanint", False), ("int", "4.2", False),
    ("int", "1" * 21, False), ("int", "", True), ("bool", "true", True), ("bool", "yes", False),
    ("float", "2.5", True), ("float", "nan", False), ("float", "inf", False), ("chr", "anything", True),
])
def test_tnds_typed_values_are_checked(tmp_path, fmt, value, ok):
    path = tmp_path / "t.xml"
    path.write_text(TNDS.format(fmt=fmt, value=value))
    tree = Tree()
    tree.set_node("./Ext", format="node")
    if ok:
        import_tnds(tree, path.read_bytes(), source=str(path))
        assert tree.value("./Ext/Counter") == value
        return
    with pytest.raises(FileFormatError) as err:
        import_tnds(tree, path.read_bytes(), source=str(path))
    assert err.value.line == 7 and f"is not a valid {fmt}" in err.value.reason
    assert str(err.value).startswith(f"{path}:7: ")
    assert not tree.exists("./Ext/Counter")  # all or nothing


def test_tree_import_command_names_file_and_line(tmp_path):
    path = tmp_path / "t.xml"
    path.write_text(TNDS.format(fmt="int", value="notanint"))
    proc = subprocess.run([sys.executable, "-m", "emulator", "tree", "import", "--workspace", str(tmp_path / "ws"),
                           str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"{path}:7:" in proc.stderr and "not a valid int" in proc.stderr


# --- byte order marks ----------------------------------------------------------------------------


def _respond(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator", "respond", "--profile", "smartphone", "--message",
                           str(path)], capture_output=True, timeout=60)


def test_a_utf8_bom_before_xml_is_still_xml(tmp_path):
    plain = _respond(GET_XML)
    assert plain.returncode == 0, plain.stderr
    path = tmp_path / "bom.xml"
    path.write_bytes(b"\xef\xbb\xbf" + GET_XML.read_bytes())
    answered = _respond(path)
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.startswith(b"<") and answered.stdout == plain.stdout


@pytest.mark.parametrize("codec,name", [("utf-16-le", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE")])
def test_utf16_messages_are_refused_by_name(tmp_path, codec, name):
    path = tmp_path / "wide.xml"
    bom = b"\xff\xfe" if codec.endswith("le") else b"\xfe\xff"
    path.write_bytes(bom + GET_XML.read_text().encode(codec))
    proc = _respond(path)
    assert proc.returncode != 0
    assert f"{path}:1: the message is {name} text".encode() in proc.stderr


# --- fleet size ----------------------------------------------------------------------------------


def test_run_count_is_refused_before_memory_runs_out():
    proc = subprocess.run([sys.executable, "-m", "emulator", "run", "--server", "http://127.0.0.1:9",
                           "--profile", "smartphone", "--count", "100000000"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "100,000,000 devices need about 3,814.7 GiB" in proc.stderr and "available" in proc.stderr


def test_fleet_estimate_limit_is_exact():
    have = 1 << 30
    most = int(have * MEMORY_SHARE) // BYTES_PER_DEVICE
    assert check_fleet_fits(most, available=have) == most * BYTES_PER_DEVICE
    with pytest.raises(EmulatorError, match=f"at most about {most:,} devices"):
        check_fleet_fits(most + 1, available=have)
