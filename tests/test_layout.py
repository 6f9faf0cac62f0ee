"""The package's shape: no import cycles (imports inside functions included), and modules a reader can take in.

Read from the source with `ast`, so these checks import nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "sgnsep"
MAX_LINES = 500


def modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package (package data folders have no .py files)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source (inside functions too)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package upwards
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from sgnsep import frontend` imports the module sgnsep.frontend; `from sgnsep import
            # __version__` the package's __init__. (Every import also runs the parent packages' __init__
            # first; those implicit edges are not counted, or the lazy imports of an __init__ would tie
            # every module into one cycle.)
            found.update(f"{prefix}.{a.name}" for a in node.names)
    # Each name to the module it is: "sgnsep.x.y" (a function y of module x) is an import of sgnsep.x.
    resolved = set()
    for target in found:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_reader_sees_imports_inside_functions_and_finds_a_cycle(tmp_path):
    pkg = tmp_path / "demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from demo import b\n")
    (pkg / "b.py").write_text("def f():\n    from demo.c import g\n")
    (pkg / "c.py").write_text("import demo.a\n")
    names = {"demo", "demo.a", "demo.b", "demo.c"}
    graph = {n: imports(n, pkg / (n.split(".")[-1] + ".py" if "." in n else "__init__.py"), names) for n in names}
    assert graph["demo.b"] == {"demo.c"} and graph["demo.a"] == {"demo.b"}
    assert cycles(graph) == [["demo.a", "demo.b", "demo.c"]]
    (pkg / "c.py").write_text("import demo\n")
    graph["demo.c"] = imports("demo.c", pkg / "c.py", names)
    assert cycles(graph) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_no_module_is_longer_than_a_reader_can_take_in():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_library_never_imports_a_compatibility_shim():
    """Old module paths (`sgnsep.frontend`, ...) stay importable for one release as shims that hand over
    the moved module; sgnsep itself imports the new paths, so a shim can be deleted without breaking it."""
    mods = modules()
    shims = {name for name, path in mods.items() if path.read_text().startswith("# shim:")}
    assert {"sgnsep.frontend", "sgnsep.separator"} <= shims
    graph = import_graph()
    users = {name: sorted(graph[name] & shims) for name in mods if name not in shims and graph[name] & shims}
    assert users == {}


def test_every_old_module_path_still_imports_as_the_module_it_names():
    """Code written against the flat layout keeps working for one release: an alias shim *is* the new module
    (so patching it patches the code), a shim over a split module re-exports the public names it names."""
    import importlib
    import re

    checked = 0
    for name, path in modules().items():
        text = path.read_text()
        if not text.startswith("# shim:"):
            continue
        old = importlib.import_module(name)
        if "sys.modules[__name__]" in text:
            new = re.match(r"# shim: \S+ is now (\S+?) \(", text).group(1)
            assert old is importlib.import_module(new), name
        else:
            names = [a.name for node in ast.parse(text).body if isinstance(node, ast.ImportFrom) for a in node.names]
            assert names and all(hasattr(old, n) for n in names), name
        checked += 1
    assert checked >= 20
