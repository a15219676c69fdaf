"""No import cycles between the project's modules, deferred (function-level) imports included: a cycle
means two modules that cannot be understood, tested or moved apart, and a deferred import only hides
it from Python, not from grimp."""

import grimp

PACKAGES = ("core", "modelspec", "registry", "serving", "monitoring", "controlplane")

# Cycles that predate this test, each to be broken and its entry removed (the test fails when a listed
# cycle is gone, so the list only shrinks). None are left.
KNOWN: set[frozenset[str]] = set()


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
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
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def describe(graph: grimp.ImportGraph, component: list[str]) -> str:
    """A cycle as its imports, each with where it is made: `a -> b (a.py:12)`."""
    members = set(component)
    lines = []
    for importer in component:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            details = graph.get_import_details(importer=importer, imported=imported)
            where = ", ".join(f"line {d['line_number']}: {d['line_contents']}" for d in details)
            lines.append(f"  {importer} -> {imported} ({where})")
    return "\n".join(lines)


def test_no_module_imports_itself_back_through_others():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    found = cycles(graph)
    new = [c for c in found if frozenset(c) not in KNOWN]
    assert not new, "import cycles:\n" + "\n\n".join(describe(graph, c) for c in new)
    gone = KNOWN - {frozenset(c) for c in found}
    assert not gone, f"these cycles are broken now: remove them from KNOWN: {sorted(map(sorted, gone))}"


def test_the_cycle_finder_finds_and_names_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("app.a", "app.b", "app.c", "app.d"):
        graph.add_module(module)
    graph.add_import(importer="app.a", imported="app.b", line_number=3, line_contents="from . import b")
    graph.add_import(importer="app.b", imported="app.c", line_number=4, line_contents="from . import c")
    graph.add_import(importer="app.c", imported="app.a", line_number=9, line_contents="from . import a")
    graph.add_import(importer="app.d", imported="app.a", line_number=1, line_contents="from . import a")
    assert cycles(graph) == [["app.a", "app.b", "app.c"]]
    assert "app.c -> app.a (line 9: from . import a)" in describe(graph, ["app.a", "app.b", "app.c"])
