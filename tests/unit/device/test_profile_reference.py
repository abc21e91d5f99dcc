"""docs/profiles.md is the loader's own schema, and `profiles new` writes a copy the loader takes."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.device.profile import PROFILE_DIR, UnknownProfileError, find_profile, load_profile
from emulator.device.profile_reference import DOCS, commented_copy, missing_docs, reference_markdown, schema
from emulator.errors import FileFormatError

ROOT = Path(__file__).resolve().parents[3]
MINIMAL = textwrap.dedent("""\
    title = "T"
    protocols = ["dm2", "dm12"]
    [devinfo]
    Man = "A"
    Mod = "B"
    """)
# Where an unknown key goes to reach each section's key check.
PLACES = {
    "": ("", ""),
    "identity": ("[identity]\n", ""),
    "ui": ("[ui]\n", ""),
    "limits": ("[limits]\n", ""),
    "bootstrap": ('[bootstrap]\nsecret = "s"\n', ""),
    "bearers": ('[[bearers]]\nname = "b"\ntype = "LTE"\n', ""),
    "environments": ('[[environments]]\nname = "e"\nkind = "guest"\n', ""),
    "accounts": ('[[accounts]]\nserver_id = "s"\nprotocol = "dm2"\nclient_secret = "x"\n', ""),
    "extra_mos": ('[[extra_mos]]\npath = "./X"\n', ""),
    "behaviours": ('[[behaviours]]\nnode = "./X"\n', ""),
    "behaviours.steps": ('[[behaviours]]\nnode = "./X"\n[[behaviours.steps]]\n', ""),
    "behaviours.steps.alert": ('[[behaviours]]\nnode = "./X"\n[[behaviours.steps]]\n[behaviours.steps.alert]\n'
                               'type = "t"\n', ""),
}


def test_docs_profiles_md_is_generated_from_the_loader():
    assert (ROOT / "docs" / "profiles.md").read_text() == reference_markdown(), (
        "docs/profiles.md is stale: run `.venv/bin/dm-emulator profiles --reference > docs/profiles.md`")


def test_every_key_the_loader_accepts_is_explained():
    assert missing_docs() == []


@pytest.mark.parametrize("section", sorted(PLACES))
def test_the_recorded_keys_are_the_ones_the_loader_accepts(tmp_path, section):
    """Independently of the recorder: the loader's own refusal lists the keys it allows."""
    head, _ = PLACES[section]
    text = MINIMAL.replace("[devinfo]", "zzqqxx = 1\n[devinfo]") if section == "" else MINIMAL + head + "zzqqxx = 1\n"
    f = tmp_path / "p.toml"
    f.write_text(text)
    with pytest.raises(FileFormatError) as e:
        load_profile(f)
    allowed = re.search(r"\(allowed: ([^)]*)\)", str(e.value))
    assert allowed, str(e.value)
    assert allowed.group(1).split(", ") == list(schema()[section].keys)


def test_every_section_of_the_loader_has_a_place_here():
    assert set(schema()) == set(PLACES)


def test_missing_docs_names_a_new_key(monkeypatch):
    monkeypatch.delitem(DOCS, "bearers.loss")
    assert missing_docs() == ["key bearers.loss has no sentence in DOCS"]
    monkeypatch.setitem(DOCS, "bearers.speed", "x")
    assert "DOCS explains bearers.speed, which the loader does not accept" in missing_docs()


@pytest.mark.parametrize("file", sorted(PROFILE_DIR.glob("*.toml")), ids=lambda f: f.stem)
def test_a_commented_copy_of_every_shipped_profile_loads_as_the_same_device(tmp_path, file):
    original = load_profile(file)
    copy = tmp_path / "mine.toml"
    copy.write_text(commented_copy(file.read_text(), name="mine", source=original.name))
    loaded = load_profile(copy)
    assert loaded.name == "mine"
    assert (loaded.accounts, loaded.bearers, loaded.identity, loaded.devinfo) == (
        original.accounts, original.bearers, original.identity, original.devinfo)
    text = copy.read_text()
    assert "--profile ./mine.toml" in text.splitlines()[1]
    assert "# " + DOCS["title"] in text
    # a copy of the copy is the same text but for its name: no second header, no doubled comments
    again = commented_copy(text, name="mine", source=original.name)
    assert again == text


def test_profiles_new_writes_a_file_to_edit(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["profiles", "new", "my-phone", "--from", "smartphone"]) == 0
    out = capsys.readouterr().out
    assert "wrote ./my-phone.toml" in out and "--profile ./my-phone.toml" in out
    assert find_profile("./my-phone.toml").name == "my-phone"
    # never overwrites; says what to do
    assert main(["profiles", "new", "my-phone"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["profiles", "new", "other", "--out", str(tmp_path / "sub.toml")]) == 0
    assert load_profile(tmp_path / "sub.toml").name == "other"


@pytest.mark.parametrize("name", ["", "../x", "a b", ".hidden", "x" * 65])
def test_profiles_new_refuses_a_name_that_is_no_file_name(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    assert main(["profiles", "new", name]) == 1
    assert "cannot be a profile name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_profiles_new_at_the_name_length_limit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["profiles", "new", "x" * 64]) == 0


def test_an_unknown_profile_says_a_path_works_too(tmp_path):
    with pytest.raises(UnknownProfileError, match="path to a .toml file of your own.*profiles new"):
        find_profile("toaster")
    with pytest.raises(UnknownProfileError, match="no profile file .*profiles new"):
        find_profile(str(tmp_path / "missing.toml"))


def test_help_says_profile_takes_a_path(capsys):
    for command in (["run"], ["respond"], ["tree", "export"], ["tree", "import"]):
        assert main([*command, "--help"]) == 0
        assert "path to your own .toml file" in " ".join(capsys.readouterr().out.split()), command
