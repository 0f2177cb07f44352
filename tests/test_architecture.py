"""The architecture written down as checks: no import cycles between the package's modules, no module over
:data:`MAX_LINES` lines. (Which layer may import which: the import-linter contracts in pyproject.toml, run
by ``lint-imports`` in ``make lint``.)"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

import dezoomify_nb

PACKAGE = Path(dezoomify_nb.__file__).parent
#: a module longer than this is split (as the dezoomers are split by format, the test servers by protocol)
MAX_LINES = 600


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # Every import statement counts (grimp's default): at module level, deferred inside a function (the usual
    # way to break a cycle at run time, which still ties the modules together) and under ``if TYPE_CHECKING:``
    # (it never runs, but it ties the modules together for a reader and the type checker all the same). A
    # helper that the door's classes call describes what it reads of them with a ``typing.Protocol`` instead
    # of naming them (display.Shown, thumbnail.Previewable, reprs.SavedFile, widgets.downloads.Picker…).
    return grimp.build_graph("dezoomify_nb", cache_dir=None)


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected groups of two or more modules (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
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
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_the_cycle_finder_finds_a_cycle():
    g = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.c", "p.d"):
        g.add_module(m)
    g.add_import(importer="p.a", imported="p.b")
    g.add_import(importer="p.b", imported="p.c")
    g.add_import(importer="p.c", imported="p.a")
    g.add_import(importer="p.c", imported="p.d")
    assert cycles(g) == [["p.a", "p.b", "p.c"]]


def edges(graph: grimp.ImportGraph) -> set[tuple[str, str]]:
    return {(m, w) for m in graph.modules for w in graph.find_modules_directly_imported_by(m)}


def test_a_cycle_made_only_for_the_type_checker_is_found(tmp_path, monkeypatch):
    pkg = tmp_path / "tc_cycle_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "door.py").write_text("def show(x):\n    from .helper import render\n\n    return render(x)\n")
    (pkg / "helper.py").write_text("from __future__ import annotations\n\nfrom typing import TYPE_CHECKING\n\n"
                                   "if TYPE_CHECKING:\n    from .door import show\n\n\n"
                                   "def render(x: show) -> str:\n    return str(x)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cycles(grimp.build_graph("tc_cycle_pkg", cache_dir=None)) == [["tc_cycle_pkg.door", "tc_cycle_pkg.helper"]]


def test_the_graph_counts_imports_made_for_the_type_checker_alone(graph):
    runtime = grimp.build_graph("dezoomify_nb", cache_dir=None, exclude_type_checking_imports=True)
    assert edges(graph) > edges(runtime)


def test_no_import_cycles(graph):
    found = cycles(graph)
    details = []
    for group in found:
        members = set(group)
        for m in group:
            for w in sorted(graph.find_modules_directly_imported_by(m) & members):
                lines = graph.get_import_details(importer=m, imported=w)
                where = ", ".join(f"line {d['line_number']}" for d in lines)
                details.append(f"  {m} -> {w} ({where})")
    assert not found, "import cycles:\n" + "\n".join(details)


def test_no_module_over_the_size_limit():
    sizes = {str(p.relative_to(PACKAGE.parent)): len(p.read_text(encoding="utf-8").splitlines())
             for p in sorted(PACKAGE.rglob("*.py"))}
    assert len(sizes) > 100  # the whole package was read
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them): {over}"
