"""ClientURI syntax and resolution (PROTOCOL 1.10), with the left/right figure of the spec."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import DecodeError
from emulator.tree.clienturi import (
    MISSING,
    ClientURI,
    DictInstanceView,
    NameValue,
    ResolveError,
    format_client_uri,
    parse_client_uri,
    resolve,
    unparse_client_uri,
)

MOID = "urn:oma:mo:moid:1.0"

# The spec figure: two instances with ID, Setting and Data/<n>/{Value, Date}.
LEFT = {
    "ID": "GPS",
    "Setting": "on",
    "Data": {"1": {"Value": "10", "Date": "12.1"}, "2": {"Value": "20", "Date": "12.2"}},
}
RIGHT = {
    "ID": "WLAN",
    "Setting": "off",
    "Data": {"1": {"Value": "30", "Date": "12.2"}, "2": {"Value": "40", "Date": "12.3"}},
}
FIGURE = {"left": DictInstanceView(LEFT), "right": DictInstanceView(RIGHT)}


def _resolve(text: str, instances=FIGURE) -> list[tuple[str, tuple[str, ...]]]:
    return resolve(parse_client_uri(text), instances)


# --- the examples of PROTOCOL 1.10 ----------------------------------------------------------------


def test_spec_instance_root() -> None:
    assert _resolve(f"{MOID}/left/") == [("left", ())]


def test_spec_empty_instance_is_unresolvable_with_two_instances() -> None:
    with pytest.raises(ResolveError) as info:
        _resolve(f"{MOID}//")
    assert info.value.status == 404


def test_spec_empty_instance_resolves_when_single() -> None:
    assert _resolve(f"{MOID}//Setting", {"only": DictInstanceView(RIGHT)}) == [("only", ("Setting",))]
    with pytest.raises(ResolveError):
        _resolve(f"{MOID}//Setting", {})


def test_spec_two_x_names_select_one_leaf() -> None:
    text = f"{MOID}/(x)/Data/(y)/Value?nv=(x)/ID:GPS&nv=(y)/Date:12.2"
    # right/Data/1 also has Date 12.2, but (x) already excluded the right instance
    assert _resolve(text) == [("left", ("Data", "2", "Value"))]


def test_spec_wildcard_instance() -> None:
    assert _resolve(f"{MOID}/*/Setting") == [("left", ("Setting",)), ("right", ("Setting",))]


def test_spec_wildcards_at_two_levels() -> None:
    assert _resolve(f"{MOID}/*/Data/*/Value") == [
        ("left", ("Data", "1", "Value")),
        ("left", ("Data", "2", "Value")),
        ("right", ("Data", "1", "Value")),
        ("right", ("Data", "2", "Value")),
    ]


def test_spec_constraints_matching_nothing_are_unresolvable() -> None:
    with pytest.raises(ResolveError):
        _resolve(f"{MOID}/(x)/Setting?nv=(x)/ID:LTE")
    with pytest.raises(ResolveError):
        _resolve(f"{MOID}/(x)/Data/(y)/Value?nv=(x)/ID:WLAN&nv=(y)/Date:12.1")


# --- more resolution -------------------------------------------------------------------------------


def test_x_name_without_path_binding_instance_only() -> None:
    assert _resolve(f"{MOID}/(x)/Data/2/Date?nv=(x)/ID:WLAN") == [("right", ("Data", "2", "Date"))]


def test_several_nv_on_one_x_name_narrow() -> None:
    both = f"{MOID}/*/Data/(y)?nv=(y)/Date:12.2"
    assert _resolve(both) == [("left", ("Data", "2")), ("right", ("Data", "1"))]
    narrowed = f"{MOID}/*/Data/(y)?nv=(y)/Date:12.2&nv=(y)/Value:30"
    assert _resolve(narrowed) == [("right", ("Data", "1"))]


def test_nested_x_names_with_deeper_relpath() -> None:
    tree = {
        "Apps": {
            "a1": {"Name": "mail", "Cfg": {"Srv": {"Host": "h1"}, "Port": "25"}},
            "a2": {"Name": "web", "Cfg": {"Srv": {"Host": "h2"}, "Port": "80"}},
        }
    }
    text = f"{MOID}/(i)/Apps/(a)/Cfg/Port?nv=(a)/Cfg/Srv/Host:h2&nv=(i)/Apps/a1/Name:mail"
    assert _resolve(text, {"m": DictInstanceView(tree)}) == [("m", ("Apps", "a2", "Cfg", "Port"))]


def test_nv_on_own_value_with_empty_relpath() -> None:
    assert _resolve(f"{MOID}/left/Data/*/(v)?nv=(v):20") == [("left", ("Data", "2", "Value"))]


def test_value_containing_colons_and_percent_encoded_names() -> None:
    tree = {"A B": {"x": {"Url": "http://h:80/p"}}, "n:c": "v", "Ünï": "u"}
    views = {"i 1": DictInstanceView(tree)}
    assert _resolve(f"{MOID}/i%201/A%20B/(k)?nv=(k)/Url:http://h:80/p", views) == [("i 1", ("A B", "x"))]
    assert _resolve(f"{MOID}/i%201/n%3Ac", views) == [("i 1", ("n:c",))]
    assert _resolve(f"{MOID}/i%201/%C3%9Cn%C3%AF", views) == [("i 1", ("Ünï",))]


def test_missing_nodes_and_instances() -> None:
    for text in (f"{MOID}/left/Nope", f"{MOID}/nobody/", f"{MOID}/left/ID/Below", f"{MOID}/left/ID/*"):
        with pytest.raises(ResolveError):
            _resolve(text)


def test_wildcard_on_leaf_level_and_interior_targets() -> None:
    assert _resolve(f"{MOID}/left/*") == [("left", ("ID",)), ("left", ("Setting",)), ("left", ("Data",))]
    assert _resolve(f"{MOID}/right/Data") == [("right", ("Data",))]


def test_cv_does_not_change_resolution() -> None:
    assert _resolve(f"{MOID}/left/?cv=abc") == [("left", ())]


def test_null_leaf_exists_but_matches_no_value() -> None:
    views = {"i": DictInstanceView({"N": None, "T": True, "I": 3})}
    assert _resolve(f"{MOID}/i/N", views) == [("i", ("N",))]
    assert _resolve(f"{MOID}/i/(a)?nv=(a):true", views) == [("i", ("T",))]
    assert _resolve(f"{MOID}/i/(a)?nv=(a):3", views) == [("i", ("I",))]
    assert views["i"].value(("N", "deeper")) is MISSING
    assert views["i"].child_names(("N",)) is None


# --- syntax ----------------------------------------------------------------------------------------


def test_parse_fields() -> None:
    uri = parse_client_uri(f"{MOID}/(x)/Data/(y)/Value?nv=(x)/ID:GPS&nv=(y)/Date:12.2&cv=686897")
    assert uri == ClientURI(
        moid=MOID,
        instance="(x)",
        path=("Data", "(y)", "Value"),
        nv=(NameValue("(x)", ("ID",), "GPS"), NameValue("(y)", ("Date",), "12.2")),
        cv="686897",
    )
    assert uri.xnames == ("(x)", "(y)")
    assert not uri.is_instance_root


def test_parse_forms_of_instance_and_path() -> None:
    assert parse_client_uri("urn:oma:mo:oma-dm-devinfo:1.2//FwV") == ClientURI(
        "urn:oma:mo:oma-dm-devinfo:1.2", "", ("FwV",)
    )
    assert parse_client_uri(f"{MOID}//").path == ()
    assert parse_client_uri(f"{MOID}/i7/").is_instance_root
    assert parse_client_uri(f"{MOID}/i7").instance == "i7"
    assert parse_client_uri(f"{MOID}/i7/A/B/").path == ("A", "B")
    assert parse_client_uri(f"{MOID}/i7/A?foo=bar&&x").path == ("A",)  # unknown fields ignored


@pytest.mark.parametrize(
    "text",
    [
        MOID,  # no instance part
        "/i/A",  # empty MOID
        f"{MOID}/i/A//B",  # empty segment
        f"{MOID}/(xy)/A?nv=(xy)/ID:1",  # x-name not 3 characters
        f"{MOID}/i/(1)?nv=(1):a",  # x-name not a letter
        f"{MOID}/i/()",
        f"{MOID}/(x)/A",  # x-name without nv
        f"{MOID}/i/A?nv=(x)/ID:1",  # nv for an x-name not in the path
        f"{MOID}/(x)/(x)?nv=(x)/ID:1",  # x-name used twice
        f"{MOID}/(x)/A?nv=(x)/ID",  # nv without value
        f"{MOID}/(x)/A?nv=ID:1",  # nv without x-name
        f"{MOID}/(x)/A?nv",  # nv without '='
        f"{MOID}/(x)/A?nv=(x)/*:1",  # wildcard in nv path
        f"{MOID}/(x)/A?nv=(x)/A//B:1",
        f"{MOID}/i/A?cv=1&cv=2",  # two cv
        f"{MOID}/i/A?cv",
        f"{MOID}/i/A#frag",
        f"{MOID}/i/A%2",  # broken escape
        f"{MOID}/i/A%zz",
        f"{MOID}/i/%FF",  # not UTF-8
        f"{MOID}/i/%2A",  # encoded wildcard
        f"{MOID}/i/%28x%29",  # encoded x-name
        f"{MOID}/i/A\nB",
    ],
)
def test_bad_syntax_is_decode_error_400(text: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_client_uri(text)
    assert info.value.status == 400


def test_format_client_uri() -> None:
    assert format_client_uri("urn:oma:mo:oma-dm-devinfo:1.2", "", ("FwV",)) == (
        "urn:oma:mo:oma-dm-devinfo:1.2//FwV"
    )
    assert format_client_uri("urn:oma:mo:oma-mo:1.0", "miid1") == "urn:oma:mo:oma-mo:1.0/miid1/"
    assert format_client_uri(MOID, "i 1", ("a/b", "c?d", "50%", "(z)", "*")) == (
        f"{MOID}/i%201/a%2Fb/c%3Fd/50%25/(z)/*"
    )
    assert format_client_uri(MOID, "i", ("Foo(1)",)) == f"{MOID}/i/Foo%281%29"


def test_unparse_keeps_query() -> None:
    text = f"{MOID}/(x)/Data/(y)/Value?nv=(x)/ID:GPS&nv=(y)/Date:12.2&cv=a%26b"
    uri = parse_client_uri(text)
    assert uri.cv == "a&b"
    assert unparse_client_uri(uri) == text
    assert str(uri) == text


# --- properties ------------------------------------------------------------------------------------

_URI_CHARS = st.sampled_from(list("abAB01/()*?&=:%#x y.-_~") + ["%41", "%2", "%C3%A9", "é", "\x00"])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(), max_size=40) | st.lists(_URI_CHARS, max_size=30).map("".join))
def test_random_text_raises_only_decode_error(tail: str) -> None:
    for text in (tail, f"{MOID}/{tail}"):
        try:
            uri = parse_client_uri(text)
        except DecodeError:
            continue
        assert parse_client_uri(unparse_client_uri(uri)) == uri


_NAMES = st.sampled_from(["a", "b", "c", "ID", "x y", "n:1"])
_LEAF = st.sampled_from(["1", "2", "GPS", "", None])
_TREE = st.recursive(
    _LEAF, lambda children: st.dictionaries(_NAMES, children, max_size=3), max_leaves=12
).filter(lambda t: isinstance(t, dict))


def _walk(tree: dict, prefix: tuple[str, ...] = ()):
    for name, child in tree.items():
        yield prefix + (name,), child
        if isinstance(child, dict):
            yield from _walk(child, prefix + (name,))


@st.composite
def _instances_and_uri(draw):
    trees = draw(st.dictionaries(st.sampled_from(["i1", "i2", "i3"]), _TREE, min_size=1, max_size=3))
    miid = draw(st.sampled_from(["", "*", "(x)", *trees]))
    segments = draw(st.lists(st.sampled_from(["a", "b", "ID", "x y", "n:1", "*", "(y)"]), max_size=3))
    path, used = [], set()
    for seg in segments:  # x-names at most once
        if seg == "(y)" and seg in used:
            seg = "*"
        used.add(seg)
        path.append(seg)
    nv = []
    if miid == "(x)":
        nv.append(NameValue("(x)", (draw(_NAMES),), draw(st.sampled_from(["1", "GPS"]))))
    if "(y)" in path:
        rel = draw(st.lists(_NAMES, max_size=1))
        nv.append(NameValue("(y)", tuple(rel), draw(st.sampled_from(["1", "2", ""]))))
    return trees, ClientURI(MOID, miid, tuple(path), tuple(nv))


@settings(max_examples=200, deadline=None)
@given(_instances_and_uri())
def test_every_resolved_path_exists_and_satisfies_constraints(case) -> None:
    trees, uri = case
    assert parse_client_uri(unparse_client_uri(uri)) == uri
    views = {m: DictInstanceView(t) for m, t in trees.items()}
    try:
        matches = resolve(uri, views)
    except ResolveError:
        if uri.instance == "" and len(trees) != 1:
            return
        # unresolvable: then no instance/path combination satisfies the pattern, checked by brute force
        matches = []
    nodes = {(m, p) for m, t in trees.items() for p, _ in _walk(t)} | {(m, ()) for m in trees}
    assert set(matches) <= nodes
    expected = set()
    for m, t in trees.items():
        if uri.instance not in ("", "*", "(x)") and m != uri.instance:
            continue
        view = views[m]
        if uri.instance == "(x)" and not all(
            view.value(c.relpath) == c.value for c in uri.nv if c.xname == "(x)"
        ):
            continue
        for p, _ in [((), t), *_walk(t)]:
            if len(p) != len(uri.path):
                continue
            ok = True
            for seg, name, i in zip(uri.path, p, range(len(p)), strict=True):
                if seg == "(y)":
                    ok &= all(
                        view.value(p[: i + 1] + c.relpath) == c.value for c in uri.nv if c.xname == "(y)"
                    )
                elif seg != "*":
                    ok &= seg == name
            if ok:
                expected.add((m, p))
    assert set(matches) == expected
    assert len(matches) == len(set(matches))
