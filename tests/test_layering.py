"""Layering of keras_autoopt, read from the source with `ast`: nothing of the package is imported.

Issue 12 (safety nets before the layout refactor). Every ``keras_autoopt`` import of every module
is collected: ``import``, ``from ... import`` (relative ones resolved) and
``importlib.import_module("keras_autoopt...")``, each tagged with its scope: ``module``,
``function`` (run only when the function is called) or ``type-checking``. The rules:

1. Layers: a module may import its own unit and any unit of a strictly lower level (`LEVELS`);
   units on one level stay apart unless the level is in `OPEN_LEVELS`. Nothing imports the
   package root; ``keras_autoopt/__init__.py`` may import anything.
2. Private modules: ``keras_autoopt.<pkg>._x`` (and a private name ``_y`` in it) is imported
   only from inside ``keras_autoopt.<pkg>``. The top-level ``keras_autoopt._x`` modules are
   shared helpers, for everyone.
3. No cycles between modules (module-level imports), nor between units (all imports).

``python tests/test_layering.py`` prints every import across units, function-level ones apart.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

ROOT = "keras_autoopt"
REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / ROOT

# Unit (a module, or a package and everything in it) -> level. A unit may import itself and any
# unit of a strictly lower level. Entries for modules that do not exist (yet) are harmless.
LEVELS = {
    # 0: the bridge to TensorFlow / tf_keras / keras-tuner / TF-MOT, and the shared helpers.
    "keras_autoopt._env": 0,
    "keras_autoopt._backend": 0,
    "keras_autoopt.backend": 0,
    "keras_autoopt._checks": 0,
    "keras_autoopt._rules": 0,
    "keras_autoopt._io": 0,
    "keras_autoopt._graph": 0,
    "keras_autoopt._failure": 0,
    "keras_autoopt._defaults": 0,
    "keras_autoopt._quiet": 0,
    # 1: what comes in: data sets, model files; where the model goes: device targets.
    "keras_autoopt.data": 1,
    "keras_autoopt.load": 1,
    "keras_autoopt.targets": 1,
    # 2: running a .tflite (LiteRT), and the reports. `report` only formats data (it imports
    #    nothing but `_io`) and `compress.auto_compress` writes one.
    "keras_autoopt.measure": 2,
    "keras_autoopt.report": 2,
    # 3: TFLite export, verified by running the exported file (measure's runner).
    "keras_autoopt.export": 3,
    # 4: model transformations: compression steps and plans, distillation.
    "keras_autoopt.compress": 4,
    "keras_autoopt.distill": 4,
    # 5: the search: hypermodels, oracles, tuners (whose trials compress, export and measure).
    "keras_autoopt.search": 5,
    # 6: the run configuration (checked against the tuners, oracles and export modes it names).
    "keras_autoopt.config": 6,
    # 7: the pipeline package (run, strategies, records, artifacts, jobs).
    "keras_autoopt.pipeline": 7,
    # 8: the command line.
    "keras_autoopt.cli": 8,
}
# Levels whose units may import one another (cycles stay forbidden): level 0 is one foundation
# (`_graph` uses `_backend`, which uses `_env` and `_io`); level 7 is one pipeline.
OPEN_LEVELS = {0, 7}


@dataclass(frozen=True)
class Import:
    importer: str  # the importing module, e.g. "keras_autoopt.search._deployable"
    path: str  # its file, relative to the repository
    line: int
    target: str  # the module imported: a from-import of a submodule names the submodule
    imported: str  # the dotted name imported: `target`, or `target.name` for a from-import
    scope: str  # "module", "function" or "type-checking"
    text: str  # the statement

    def where(self):
        return f"{self.path}:{self.line} ({self.scope}-level) `{self.text}`"


def _module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def modules():
    """Module name -> file, for every module of the package."""
    return {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _is_internal(name):
    return name == ROOT or name.startswith(ROOT + ".")


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_import_module_call(node):
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return (
        name in ("import_module", "__import__")
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, module, path):
        self.module = module
        self.path = str(path.relative_to(REPO))
        self.is_package = path.name == "__init__.py"
        self.scope = "module"
        self.imports = []

    def _add(self, node, target, imported):
        text = ast.unparse(node)
        self.imports.append(
            Import(self.module, self.path, node.lineno, target, imported, self.scope, text)
        )

    def _visit_in(self, scope, nodes):
        saved = self.scope
        if saved == "module":
            self.scope = scope
        for node in nodes:
            self.visit(node)
        self.scope = saved

    def visit_FunctionDef(self, node):
        defaults = [*node.args.defaults, *filter(None, node.args.kw_defaults)]
        self._visit_in("module", [*node.decorator_list, *defaults])
        self._visit_in("function", node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._visit_in("function", [node.body])

    def visit_If(self, node):
        if _is_type_checking(node.test):
            self._visit_in("type-checking", node.body)
            self._visit_in("module", node.orelse)
        else:
            self.generic_visit(node)

    def visit_Import(self, node):
        for alias in node.names:
            if _is_internal(alias.name):
                self._add(node, alias.name, alias.name)

    def visit_ImportFrom(self, node):
        base = node.module or ""
        if node.level:
            package = self.module.split(".")
            if not self.is_package:
                package.pop()
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, *([base] if base else [])])
        if not _is_internal(base):
            return
        for alias in node.names:
            name = f"{base}.{alias.name}"
            if name in modules():
                self._add(node, name, name)
            else:
                self._add(node, base, base if alias.name == "*" else name)

    def visit_Call(self, node):
        if _is_import_module_call(node) and _is_internal(node.args[0].value):
            self._add(node, node.args[0].value, node.args[0].value)
        self.generic_visit(node)


@functools.cache
def imports():
    """Every `keras_autoopt` import of every module of the package."""
    found = []
    for module, path in modules().items():
        collector = _Collector(module, path)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found.extend(collector.imports)
    return tuple(found)


def unit_of(module):
    """The `LEVELS` key that `module` belongs to, or None (the root, or an unplaced module)."""
    for unit in LEVELS:
        if module == unit or module.startswith(unit + "."):
            return unit
    return None


def _private_part(imported):
    """``keras_autoopt.x._y`` for ``keras_autoopt.x._y...``; None if nothing in it is private.

    The top-level ``keras_autoopt._x`` helpers are shared: they are not private to anyone.
    """
    parts = imported.split(".")
    for index in range(2, len(parts)):
        part = parts[index]
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return ".".join(parts[: index + 1])
    return None


def layer_violations():
    found = []
    for imp in imports():
        if imp.importer == ROOT:
            continue
        source, target = unit_of(imp.importer), unit_of(imp.target)
        if imp.target == ROOT:
            found.append(f"{imp.where()}: {imp.importer} imports the package root")
            continue
        if source is None or target is None or source == target:
            continue  # unplaced modules fail test_every_module_has_a_level
        low, high = LEVELS[target], LEVELS[source]
        if low < high or (low == high and low in OPEN_LEVELS):
            continue
        found.append(f"{imp.where()}: {source} (level {high}) imports {imp.target} (level {low})")
    return list(dict.fromkeys(found))  # one line per statement, not per name imported


def private_violations():
    found = []
    for imp in imports():
        private = _private_part(imp.imported)
        if private is None:
            continue
        owner = private.rpartition(".")[0]
        if imp.importer == owner or imp.importer.startswith(owner + "."):
            continue
        found.append(f"{imp.where()}: {imp.importer} imports {private}, private to {owner}")
    return list(dict.fromkeys(found))


def find_cycles(edges):
    """Every cycle that a depth-first search meets, each as [a, b, ..., a].

    Args:
        edges: node -> {neighbour: the Import that makes the edge}.
    """
    cycles, seen, state, stack = [], set(), {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for neighbour in sorted(edges.get(node, {})):
            if state.get(neighbour) == "open":
                cycle = stack[stack.index(neighbour) :] + [neighbour]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
            elif neighbour not in state:
                visit(neighbour)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return cycles


def _describe_cycle(cycle, edges):
    steps = [f"  {a} -> {b}: {edges[a][b].where()}" for a, b in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def _edges(selected, node_of):
    edges = {}
    for imp in selected:
        a, b = node_of(imp.importer), node_of(imp.target)
        if a != b:
            edges.setdefault(a, {}).setdefault(b, imp)
    return edges


def package_of(module):
    """The node of `module` in the package-level graph: its unit, an open level as one node."""
    unit = unit_of(module)
    if unit is None:
        return module
    level = LEVELS[unit]
    return f"level {level}" if level in OPEN_LEVELS else unit


def test_every_module_has_a_level():
    unplaced = sorted(m for m in modules() if m != ROOT and unit_of(m) is None)
    assert not unplaced, f"Add these modules to LEVELS in tests/test_layering.py: {unplaced}"


def test_every_internal_import_names_a_module_of_the_package():
    stale = [
        f"{imp.where()}: no module {imp.target}" for imp in imports() if imp.target not in modules()
    ]
    assert not stale, "Imports of modules that do not exist:\n" + "\n".join(stale)


def test_lower_levels_do_not_import_higher_ones():
    found = layer_violations()
    assert not found, (
        "A module may import its own unit and strictly lower levels only (LEVELS in "
        "tests/test_layering.py):\n" + "\n".join(found)
    )


def test_no_import_of_another_packages_private_module():
    found = private_violations()
    assert not found, (
        "keras_autoopt.<pkg>._x is private to keras_autoopt.<pkg>: import it from the "
        "package's public __init__ instead:\n" + "\n".join(found)
    )


def test_no_module_level_import_cycles():
    edges = _edges([imp for imp in imports() if imp.scope == "module"], lambda m: m)
    cycles = find_cycles(edges)
    assert not cycles, "Module-level import cycles:\n" + "\n".join(
        _describe_cycle(cycle, edges) for cycle in cycles
    )


def test_no_package_level_import_cycles():
    edges = _edges(imports(), package_of)
    cycles = find_cycles(edges)
    assert not cycles, "Import cycles between units (function-level imports included):\n" + (
        "\n".join(_describe_cycle(cycle, edges) for cycle in cycles)
    )


def test_find_cycles_finds_a_hand_made_cycle():
    edges = {"a": {"b": "a->b"}, "b": {"c": "b->c"}, "c": {"a": "c->a", "d": "c->d"}, "d": {}}
    assert find_cycles(edges) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b": 1}, "b": {}, "c": {"b": 1}}) == []


if __name__ == "__main__":
    for scope in ("module", "type-checking", "function"):
        print(f"# {scope}-level imports between units (level-0 helpers left out)")
        lines = [
            f"{imp.importer} -> {imp.target}: {imp.where()}"
            for imp in imports()
            if imp.scope == scope
            and package_of(imp.importer) != package_of(imp.target)
            and package_of(imp.target) != "level 0"
        ]
        print(*dict.fromkeys(lines), sep="\n")
    print("# violations", *layer_violations(), *private_violations(), sep="\n")
