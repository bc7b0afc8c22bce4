"""The package's house rules, checked on its source: one-way imports, small files and functions.

- No import circle between the package's modules (a module's top-level imports of other
  ``phys555_cl`` modules form a graph without cycles).
- No ``phys555_cl`` module imported inside a function: an import hidden in a function is how a
  circle gets closed without anyone noticing.
- No file over 600 lines and no function over 60 lines of code (its docstring not counted).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from phys555_cl.galaxy_catalogue import LABEL_SCHEMA

PACKAGE = Path(__file__).parents[1] / "phys555_cl"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}

#: The layers, bottom first (README "Architecture" draws them): a module may import only
#: modules of an earlier layer, or of its own layer listed before it.
LAYERS = [
    ("foundations", "project fileio _checks _cli config processes"),
    ("the simulated sky", "galaxy_catalogue galaxy_profiles galaxy_seeing galaxy_render galaxies "
                          "photometry lightcurves"),
    ("data", "data augment_functional augment"),
    ("models and losses", "encoders _info_nce_kernel losses distances geometry cpc"),
    ("features and probes", "evaluate plotting toy"),
    ("training", "monitor checkpoints train_setup train"),
    ("the label study", "label_subsets study_results labelled study_retrieval study scaling"),
    ("exercise checks", "exercises.compare exercises.core exercises.nb00 exercises.nb01 "
                        "exercises.nb02 exercises.nb03 exercises.nb04 exercises.nb05 "
                        "exercises.nb06 exercises.nb07 exercises"),
    ("the course", "course.paths course.markers course.colab course.builder course.runner "
                   "course.updater course.grading course.cli course course.__main__"),
]
ORDER = [f"phys555_cl.{m}" for _, mods in LAYERS for m in mods.split()] + ["phys555_cl"]


def _targets(node: ast.AST, module: str) -> list[str]:
    """The package modules an import statement loads (``from pkg import submodule`` counts
    as the submodule; ``from pkg import name`` as the package)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("phys555_cl")]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: resolve against this module's package
        base = module.split(".")
        if not MODULES[module].name == "__init__.py":
            base = base[:-1]
        base = base[:len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if not source.startswith("phys555_cl"):
        return []
    out = []
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        out.append(sub if sub in MODULES else source)
    return out


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges = set()
        for node in tree.body:
            for target in _targets(node, name):
                # a package's own __init__ runs before its submodules: not an edge back
                if target != name and not name.startswith(target + "."):
                    edges.add(target)
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_circle_between_the_package_modules():
    cycle = _cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_every_import_points_down_the_layers():
    rank = {m: i for i, m in enumerate(ORDER)}
    assert sorted(MODULES) == sorted(ORDER), "a module is missing from LAYERS (or gone)"
    upward = [f"{a} -> {b}" for a, targets in _graph().items() for b in targets
              if rank[b] > rank[a]]
    assert not upward, "imports against the layers (README, Architecture): " + ", ".join(upward)


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_package_module_is_imported_inside_a_function():
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if _targets(inner, name):
                        found.append(f"{path.name}:{inner.lineno} in {node.name}()")
    assert not found, "imports of package modules inside functions: " + ", ".join(found)


def test_files_and_functions_stay_small():
    long_files, long_functions = [], []
    for path in MODULES.values():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(f"{path.name} ({len(text.splitlines())} lines)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                first = body[0]
                if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                        and isinstance(first.value.value, str) and len(body) > 1):
                    first = body[1]
                lines = node.end_lineno - first.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.name}:{node.name} ({lines} lines)")
    assert not long_files, f"files over {MAX_FILE_LINES} lines: {long_files}"
    assert not long_functions, f"functions over {MAX_FUNCTION_LINES} lines: {long_functions}"


#: Facts that live in one file: the phrase that defines them, and that file.
ONE_PLACE = {
    'os.replace(': "fileio.py",  # the atomic write
    'os.umask(': "fileio.py",
    'mkstemp(': None,  # no second kind of temporary file
    '"smooth", "featured"': "galaxy_catalogue.py",  # the label schema
    '"face-on", "edge-on"': "galaxy_catalogue.py",
    '"low z", "high z"': "galaxy_catalogue.py",
    '"odd_feature": 4': None,
    'zlib.crc32(': "config.py",  # the one stable seed
}


def test_each_fact_lives_in_one_place():
    misplaced = []
    for phrase, home in ONE_PLACE.items():
        files = sorted(p.name for p in MODULES.values()
                       if phrase in p.read_text(encoding="utf-8"))
        if files != ([home] if home else []):
            misplaced.append(f"{phrase!r} in {files}, expected {home or 'nowhere'}")
    assert not misplaced, "; ".join(misplaced)


def _defined_names() -> set[str]:
    """Every function, class and module-level name the package defines, and its modules."""
    names = {m.split(".")[-1] for m in MODULES}
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_the_readme_walk_names_only_what_exists():
    """Every code name in README's "How the code fits together" is defined in the package
    (``module.name`` and ``Class.method`` are checked part by part)."""
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    walk = readme.split("**How the code fits together.**")[1].split("**Where things live.**")[0]
    known = _defined_names() | set(LABEL_SCHEMA)  # the label keys are named too
    missing = []
    for code in re.findall(r"`([^`]+)`", walk):
        code = code.split("(")[0]
        if (not re.fullmatch(r"[A-Za-z_][\w.]*", code) or len(code) <= 2
                or Path(code).suffix in {".toml", ".py", ".md", ".json", ".pt", ".ipynb"}):
            continue  # a shape, a literal, a command, a file or a symbol such as `h`
        missing += [f"{part} (in `{code}`)" for part in code.split(".")
                    if part not in known and part != "phys555_cl"]
    assert not missing, "README names what the package does not define: " + ", ".join(missing)
