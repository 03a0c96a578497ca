"""No import cycles in ``profy`` or ``guardrails``.

The module graph is read from the source (AST): imports at module level, inside
functions and under ``if TYPE_CHECKING:`` all count (a lazy or type-only loop is still two
modules that each need the other). ``import a.b`` imports ``a.b``; ``from a.b import
name`` imports ``a.b``; ``from a import b`` imports
``a`` (it reads ``a``'s namespace) and, when ``a.b`` is a module, ``a.b`` too. Importing a
package imports its ``__init__``, so a submodule that imports from its own package
(``from profy.features import functional`` inside ``profy/features/_y.py``) while that
``__init__`` imports the submodule is a cycle: siblings are imported directly
(``from profy.features.functional import x``, ``import profy.features.functional as F``).
Importing ``a.b.c`` also runs ``a`` and ``a.b``'s ``__init__``; that edge is implied
by Python and is not one a module chose, so it is not counted (a package's ``__init__``
importing its children would otherwise always close a loop with them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("profy", "guardrails")


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """``{dotted module name: source path}``; a package is named by its ``__init__``."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a (possibly relative) ``from`` import's module."""
    if level == 0:
        return target or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """``{module: modules of packages it imports}`` read from the source under ``root``."""
    modules = _modules(root, packages)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(module, is_package, node.level, node.module)
                edges.add(source)  # ``from pkg import x`` runs and reads pkg's ``__init__``
                edges |= {f"{source}.{a.name}" for a in node.names}
        graph[module] = {e for e in edges if e in modules and e != module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle path (``[a, b, ..., a]``) through each strongly connected component of
    more than one module, sorted; :func:`components` lists every member."""
    return sorted(_cycle_through(graph, set(c)) for c in components(graph))


def components(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def connect(start: str) -> None:  # iterative Tarjan: no recursion limit on big graphs
        nonlocal counter
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return sorted(found)


def _cycle_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One shortest cycle from the component's first module back to itself."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    return paths[node] + [start]
                if child not in paths:
                    paths[child] = paths[node] + [child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def _assert_no_cycle(graph: dict[str, set[str]]) -> None:
    cycles = find_cycles(graph)
    assert not cycles, "import cycles (each: one loop; all modules tangled with it):\n" + \
        "\n".join(f"{' -> '.join(c)}\n    [{', '.join(m)}]"
                  for c, m in zip(cycles, sorted(components(graph), key=min), strict=True))


def test_profy_and_guardrails_have_no_import_cycle():
    _assert_no_cycle(import_graph(ROOT))


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_submodule_importing_its_own_package_init_is_a_cycle(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "from pkg._a import f\n",
                      "pkg/_a.py": "def f():\n    from pkg import _b\n",
                      "pkg/_b.py": "from pkg import f\n",
                      "pkg/_c.py": "from . import _b\n"})
    graph = import_graph(tmp_path, ("pkg",))
    assert graph == {"pkg": {"pkg._a"}, "pkg._a": {"pkg", "pkg._b"}, "pkg._b": {"pkg"},
                     "pkg._c": {"pkg", "pkg._b"}}
    assert find_cycles(graph) == [["pkg", "pkg._a", "pkg"]]
    with pytest.raises(AssertionError, match=r"pkg -> pkg\._a -> pkg"):
        _assert_no_cycle(graph)
    # siblings imported directly: no module reads the package back
    _write(tmp_path, {"pkg/_a.py": "def f():\n    import pkg._b\n",
                      "pkg/_b.py": "from pkg._a import f\n"})
    graph = import_graph(tmp_path, ("pkg",))
    assert find_cycles(graph) == [["pkg._a", "pkg._b", "pkg._a"]]  # a lazy import counts
    _write(tmp_path, {"pkg/_b.py": "VALUE = 1\n"})
    _assert_no_cycle(import_graph(tmp_path, ("pkg",)))


def test_two_modules_importing_each_other_is_a_cycle_and_a_chain_is_not(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "",
                      "pkg/a.py": "import pkg.b\n",
                      "pkg/b.py": "from .c import x\n",
                      "pkg/c.py": "from pkg.a import y\nx = 1\n",
                      "pkg/d.py": "from pkg import a\n"})
    assert find_cycles(import_graph(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b", "pkg.c",
                                                              "pkg.a"]]
    (tmp_path / "pkg/c.py").write_text("x = 1\n", encoding="utf-8")
    assert find_cycles(import_graph(tmp_path, ("pkg",))) == []
    (tmp_path / "pkg/c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                       "    from pkg.d import Z\n", encoding="utf-8")
    assert find_cycles(import_graph(tmp_path, ("pkg",))) == [  # a type-only loop counts
        ["pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.a"]]
