"""The layer rules of docs/architecture.md, checked on every module of emulator/ and ui/.

Every import is read from the source (AST, nothing is imported): those at the top of a module,
those inside functions, and those under ``if TYPE_CHECKING:``, each reported with its kind. A
type-only import counts like any other: it still means the lower floor knows the upper one, and a
circle of type imports is still a circle a reader has to untangle.

The floors, lowest first (a module may import its own package and anything on a lower floor;
packages on the same floor do not import each other):

    errors, protocol/values (and the emulator package itself) < util < tree < events < mo < protocol < transport
    < device, store < fleet < server < scenarios < commands < cli < __main__ < ui

Further rules: no Qt under emulator/; no I/O under emulator/protocol/ (see IO_MODULES for the list
and why); nothing under emulator/ imports ui/ (only cli.py names the ui modules it starts, as
strings in its dispatch table); the window reaches the reference server only through its control
surface (emulator.server.control) or starts it (emulator.server.app); no module imports a private
(``_name``) from another package; and the module import graph has no circle.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("emulator", "ui")

LAYERS: tuple[tuple[str, ...], ...] = (
    ("emulator", "emulator.errors", "emulator.protocol.values"),
    ("emulator.util",),
    ("emulator.tree",),
    ("emulator.events",),
    ("emulator.mo",),
    ("emulator.protocol",),
    ("emulator.transport",),
    ("emulator.device", "emulator.store"),
    ("emulator.fleet",),
    ("emulator.server",),
    ("emulator.scenarios",),
    ("emulator.commands",),
    ("emulator.cli",),
    ("emulator.__main__",),
    ("ui",),
)
"""Floors, lowest first; each entry a package (or module) and everything under it; the most specific
entry wins. ``protocol/values.py`` (the closed vocabularies: protocols, outcomes, directions) sits on
the ground floor although it lives in protocol/: it imports nothing of the project, and events, the
store and the window share its words."""

QT_MODULES = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "shiboken2", "qasync")

IO_MODULES = (
    "asyncio", "aiohttp", "httpx", "requests", "urllib3", "gevent", "socket", "ssl", "select", "selectors",
    "http.client", "http.server", "urllib.request", "time", "os", "pathlib", "shutil", "tempfile", "io.open",
    "sqlite3", "threading", "multiprocessing", "subprocess", "signal", "random",
    "emulator.transport", "emulator.store",
)
"""What emulator/protocol/ must not import: sockets and event loops, clocks (time comes in as an
argument), files and the file system, databases, threads and processes, and the layers that do
those. ``random`` too: an engine that needs chance takes it as an argument so a test can replay it.
Allowed on purpose: ``secrets``, only as the default of an injectable source of nonces (for example
``SyncMLClient(nonce_factory=...)``), because a real device draws fresh nonces and a test passes its own."""

IO_CALLS = frozenset({"open", "input"})
IO_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes", "unlink", "mkdir", "touch",
                        "now", "utcnow", "today"})
"""Calls that read or write files, or read a clock (``datetime.now()``), whatever the import."""

UI_STARTERS = ("emulator.cli",)
"""The only emulator/ modules that may name a ui/ module (as a string for importlib): the dispatch."""

SERVER_FACES = ("emulator.server.app", "emulator.server.control")
"""What ui/ may import from the reference server: starting it, and its one control surface."""


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (the deepest one of the project when it is ours)
    names: tuple[str, ...]  # names taken from it (``from x import a, b``)
    kind: str  # "top", "function" or "type" (under if TYPE_CHECKING)
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.kind}, line {self.line})"


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _ours(name: str) -> str:
    """The deepest module of the project that ``name`` names (a module, or a name inside one)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _targets(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> Iterator[tuple[str, tuple[str, ...]]]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, ()
        return
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join(here + ([node.module] if node.module else []))
    names = []
    for alias in node.names:
        full = f"{base}.{alias.name}"
        if full in MODULES:
            yield full, ()
        else:
            names.append(alias.name)
    if names:
        yield base, tuple(names)


def _imports(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out: list[Import] = []

    def visit(node: ast.AST, kind: str) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target, names in _targets(module, node, path.name == "__init__.py"):
                out.append(Import(module, _ours(target), names, kind, node.lineno))
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, "type")
            for child in node.orelse:
                visit(child, kind)
            return
        inner = "function" if kind == "top" and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) else kind
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    for node in tree.body:
        visit(node, "top")
    return out


IMPORTS = [imp for module, path in MODULES.items() for imp in _imports(module, path)]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _floor(module: str) -> tuple[int, str]:
    """(floor number, the package that puts it there), by the most specific entry of LAYERS."""
    best: tuple[int, str] | None = None
    for number, floor in enumerate(LAYERS):
        for prefix in floor:
            if _under(module, prefix) and (best is None or len(prefix) > len(best[1])):
                best = (number, prefix)
    assert best is not None, f"{module} is on no floor of LAYERS: add it"
    return best


def _project(imp: Import) -> bool:
    return imp.target in MODULES and imp.target != imp.source


def test_the_walk_sees_the_whole_project():
    """The checks below are only as good as the walk: it must find the modules and their imports."""
    assert {"emulator.protocol.syncml.client", "emulator.fleet.fleet", "ui.mainwindow", "emulator.cli"} <= set(MODULES)
    kinds = {imp.kind for imp in IMPORTS if _project(imp)}
    assert kinds >= {"top", "function"}, kinds
    for module in MODULES:
        _floor(module)


def test_no_qt_under_emulator():
    bad = [str(imp) for imp in IMPORTS
           if _under(imp.source, "emulator") and any(_under(imp.target, qt) for qt in QT_MODULES)]
    assert not bad, "emulator/ must run without Qt:\n" + "\n".join(bad)


def test_no_io_under_protocol():
    bad = [str(imp) for imp in IMPORTS
           if _under(imp.source, "emulator.protocol") and any(_under(imp.target, m) for m in IO_MODULES)]
    for module, path in MODULES.items():
        if not _under(module, "emulator.protocol"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in IO_CALLS:
                bad.append(f"{module}: {func.id}() at line {node.lineno}")
            elif isinstance(func, ast.Attribute) and func.attr in IO_METHODS:
                bad.append(f"{module}: .{func.attr}() at line {node.lineno}")
    assert not bad, "emulator/protocol/ is sans-IO (bytes in, actions out):\n" + "\n".join(bad)


def test_emulator_never_imports_ui():
    bad = [str(imp) for imp in IMPORTS if _under(imp.source, "emulator") and _under(imp.target, "ui")]
    named = re.compile(r"^ui(\.\w+)+(:\w+)?$")
    for module, path in MODULES.items():
        if not _under(module, "emulator") or module in UI_STARTERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and named.match(node.value) \
                    and node.value.partition(":")[0] in MODULES:  # a ui module, not a key such as "ui.browser"
                bad.append(f"{module}: names {node.value!r} at line {node.lineno}")
    assert not bad, "only the dispatch (cli.py) may start ui/; nothing else in emulator/ knows it:\n" + "\n".join(bad)


def test_the_window_reaches_the_server_only_through_its_control_surface():
    bad = [str(imp) for imp in IMPORTS if _under(imp.source, "ui") and _under(imp.target, "emulator.server")
           and imp.target not in SERVER_FACES]
    assert not bad, f"ui/ may use only {', '.join(SERVER_FACES)} of the server:\n" + "\n".join(bad)


def test_no_arrow_runs_back_up_a_floor():
    bad = []
    for imp in IMPORTS:
        if not _project(imp):
            continue
        (here, own), (there, other) = _floor(imp.source), _floor(imp.target)
        if there > here:
            bad.append(f"{imp}: {own} (floor {here}) imports {other} (floor {there})")
        elif there == here and own != other:
            bad.append(f"{imp}: {own} and {other} share floor {here} and must not import each other")
    assert not bad, "an arrow runs back up (docs/architecture.md, 'Floors'):\n" + "\n".join(bad)


def test_no_private_name_is_imported_from_another_package():
    bad = [f"{imp}: {name}" for imp in IMPORTS if _project(imp) for name in imp.names
           if name.startswith("_") and not name.startswith("__")
           and imp.target.rsplit(".", 1)[0] != imp.source.rsplit(".", 1)[0]]
    assert not bad, "a private name is the business of its own package:\n" + "\n".join(bad)


def _cycles(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _circle(edges: dict[str, dict[str, Import]], component: list[str]) -> list[Import]:
    """One circle through the component's first module, as the imports that make it."""
    members = set(component)
    start = component[0]
    paths: dict[str, list[Import]] = {start: []}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child, imp in sorted(edges[node].items()):
            if child == start:
                return paths[node] + [imp]
            if child in members and child not in paths:
                paths[child] = paths[node] + [imp]
                queue.append(child)
    raise AssertionError(f"no circle through {start}")


def test_the_import_graph_has_no_circle():
    edges: dict[str, dict[str, Import]] = {module: {} for module in MODULES}
    for imp in IMPORTS:
        if _project(imp):
            edges[imp.source].setdefault(imp.target, imp)
    circles = _cycles(edges)
    report = ["\n  ".join(["circle of " + ", ".join(c)] + [str(i) for i in _circle(edges, c)]) for c in circles]
    assert not circles, "the import graph has circles:\n" + "\n".join(report)


def test_the_circle_finder_finds_a_circle():
    """The finder itself, on a graph made up for it (a test of a check must be able to fail)."""
    def imp(a: str, b: str, kind: str = "top") -> Import:
        return Import(a, b, (), kind, 1)

    edges = {"a": {"b": imp("a", "b")}, "b": {"c": imp("b", "c", "type")}, "c": {"a": imp("c", "a", "function")},
             "d": {"a": imp("d", "a")}}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert [str(i) for i in _circle(edges, ["a", "b", "c"])] == [
        "a -> b (top, line 1)", "b -> c (type, line 1)", "c -> a (function, line 1)"]
    assert _cycles({"a": {"b": imp("a", "b")}, "b": {}}) == []


@pytest.mark.parametrize("source, target, ok", [
    ("emulator.protocol.dm2.client", "emulator.tree.tree", True),
    ("emulator.tree.tree", "emulator.protocol.dm2.client", False),
    ("emulator.server.dm2", "emulator.scenarios.model", False),
    ("emulator.device.virtual", "emulator.store.workspace", False),  # same floor, other package
    ("emulator.device.virtual", "emulator.device.apps", True),  # own package
    ("ui.app", "emulator.server.app", True),
])
def test_the_floor_rule_itself(source, target, ok):
    (here, own), (there, other) = _floor(source), _floor(target)
    assert (there < here or (there == here and own == other)) is ok


def _shown_as(prefix: str) -> str:
    """How docs/architecture.md names a LAYERS entry: a package as ``dir/``, a module as ``file.py``."""
    path = prefix.replace(".", "/")
    return f"{path}/" if (ROOT / path).is_dir() else f"{path}.py"


def test_the_picture_in_docs_names_every_floor():
    picture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [_shown_as(p) for floor in LAYERS for p in floor if p != "emulator" and _shown_as(p) not in picture]
    assert not missing, f"docs/architecture.md does not show {missing}: keep its picture and LAYERS in step"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    packages = sorted(f"emulator/{d.name}/" for d in (ROOT / "emulator").iterdir() if (d / "__init__.py").is_file())
    assert not [p for p in packages if f"`{p}`" not in readme], "README's layout table misses a package"
