"""The house's arrows (docs/architecture.md), read from the code's imports, those inside
functions included:

- nothing under core/ imports streamlit or dashboard;
- learning code (core/learning: SSL, pretraining, fine-tuning) and audit/explanation code
  (core/audit, core/explain) never import the workspace (core/workspace: the store, jobs);
- the lower floors never import the upper ones (data < learning < mitigation < audit < results < explain
  < run < workspace < cli), and the ground floor (errors, vocabulary, files, processes)
  imports no other core module but itself;
- no import cycle among core modules.

The checker is tested on small planted trees first, so a rule that silently stops seeing
imports fails here rather than passing forever.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GROUND = {"core", "core.errors", "core.vocabulary", "core.files", "core.processes"}
FLOORS = ["data", "learning", "mitigation", "audit", "results", "explain", "run", "workspace", "cli"]
NO_WORKSPACE = ("core.learning", "core.audit", "core.explain")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, root: Path, modules: set[str]) -> set[str]:
    """Every module `path` imports, at any depth of its code. `from a import b` counts as an
    import of a.b when a.b is a module of the tree, else of a; importing a.b.c also runs the
    packages a and a.b."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else base)
    # Importing a.b.c also runs the packages a and a.b, except those `me` lies in: Python has
    # begun running those before `me`, so they add no edge (an explicit import of one does).
    mine = {".".join(me.split(".")[: i + 1]) for i in range(me.count("."))}
    expanded = set(found)
    for name in found:
        parts = name.split(".")
        expanded.update(".".join(parts[: i + 1]) for i in range(len(parts) - 1))
    return {name for name in expanded if name != me and (name in found or name not in mine)}


def import_graph(root: Path, top: str = "core") -> dict[str, set[str]]:
    files = sorted((root / top).rglob("*.py"))
    modules = {module_name(f, root) for f in files}
    return {module_name(f, root): imports_of(f, root, modules) for f in files}


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, imported in sorted(graph.items()):
        for name in sorted(imported):
            if name.split(".")[0] in ("streamlit", "dashboard"):
                found.append(f"{module} imports {name}: core never imports the UI")
            if module.startswith(NO_WORKSPACE) and name.startswith("core.workspace"):
                found.append(f"{module} imports {name}: learning, audit and explanation code never use the workspace")
            if not name.startswith("core.") or name in GROUND:
                continue
            if module in GROUND:
                found.append(f"{module} imports {name}: the ground floor imports no other core module")
                continue
            mine, theirs = floor(module), floor(name)
            if mine is not None and theirs is not None and theirs > mine:
                found.append(f"{module} imports {name}: {FLOORS[mine]} sits below {FLOORS[theirs]}")
    return found


def floor(module: str) -> int | None:
    parts = module.split(".")
    return FLOORS.index(parts[1]) if len(parts) > 1 and parts[1] in FLOORS else None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# -- the checker on planted trees ------------------------------------------------------------
def plant(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_finds_a_cycle_through_an_import_inside_a_function(tmp_path):
    root = plant(tmp_path, {"core/__init__.py": "", "core/audit/__init__.py": "",
                            "core/audit/a.py": "from core.audit import b\n",
                            "core/audit/b.py": "def f():\n    from core.audit.a import g\n"})
    assert cycles(import_graph(root)) == [["core.audit.a", "core.audit.b"]]


def test_the_checker_finds_forbidden_imports(tmp_path):
    root = plant(tmp_path, {"core/__init__.py": "", "core/learning/__init__.py": "",
                            "core/workspace/__init__.py": "", "core/workspace/store.py": "",
                            "core/data/__init__.py": "", "core/run/__init__.py": "", "core/run/p.py": "",
                            "core/learning/t.py": "def f():\n    from core.workspace import store\n",
                            "core/data/d.py": "import streamlit as st\nfrom ..run import p\n",
                            "core/errors.py": "from core.data import d\n"})
    found = violations(import_graph(root))
    assert any("core.learning.t imports core.workspace.store" in v for v in found)
    assert any("core.data.d imports streamlit" in v for v in found)
    assert any("core.data.d imports core.run.p: data sits below run" in v for v in found)
    assert any("core.errors imports core.data" in v for v in found)


def test_the_checker_sees_no_problem_in_a_clean_tree(tmp_path):
    root = plant(tmp_path, {"core/__init__.py": "", "core/errors.py": "",
                            "core/data/__init__.py": "", "core/data/d.py": "from core.errors import InputError\n",
                            "core/run/__init__.py": "", "core/run/p.py": "from core.data import d\nimport numpy\n"})
    graph = import_graph(root)
    assert graph["core.run.p"] >= {"core.data.d", "core.data", "numpy"}
    assert violations(graph) == [] and cycles(graph) == []


# -- the real tree ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT)


def test_every_core_module_sits_on_a_floor_or_the_ground(graph):
    assert [m for m in graph if m not in GROUND and floor(m) is None] == []


def test_core_follows_the_arrows(graph):
    assert violations(graph) == []


def test_core_has_no_import_cycle(graph):
    assert cycles(graph) == []


def test_the_architecture_page_names_every_core_module_by_its_path(graph):
    """docs/architecture.md stays true to the tree: a module added without its line fails here."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    paths = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "core").rglob("*.py"))
    assert [path for path in paths if f"`{path}`" not in page] == []
