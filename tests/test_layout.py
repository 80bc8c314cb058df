"""The code's layout rules, checked on the source: one owner of the chunks table, no reaching into another
module's private names, a UI-free engine, and short modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = sorted((ROOT / "rag_ft").rglob("*.py"))
PAGES = sorted((ROOT / "pages").glob("*.py"))
APP = [ROOT / "app_state.py", ROOT / "app.py"]
CHUNKS_OWNER = ROOT / "rag_ft" / "index" / "chunks.py"

# SQL that names the chunks table as the one it reads or writes
CHUNKS_SQL = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE(?:\s+IF\s+NOT\s+EXISTS)?|ON)\s+chunks\b", re.I)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes (prose, where 'from chunks' is English, not SQL)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _strings(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, text) of every string literal except docstrings; an f-string's literal parts joined."""
    skip = _docstrings(tree)
    skip |= {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = " ".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            out.append((node.lineno, text))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            out.append((node.lineno, node.value))
    return out


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PROJECT_MODULES = {_module_name(p) for p in [*ENGINE, *PAGES, *APP]}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_project(module: str) -> bool:
    return module.split(".")[0] in {"rag_ft", "pages", "app_state", "app"}


def test_only_the_chunks_module_issues_sql_on_the_chunks_table() -> None:
    found = []
    for path in ENGINE:
        tree = _tree(path)
        for line, text in _strings(tree):
            if "sqlite_master" in text:
                found.append(f"{_rel(path)}:{line}: probes sqlite_master (the migrations create every table)")
            if path not in (CHUNKS_OWNER, ROOT / "rag_ft" / "migrations.py") and CHUNKS_SQL.search(text):
                found.append(f"{_rel(path)}:{line}: SQL on the chunks table: {text.strip()[:80]!r}")
    assert found == [], "\n".join(found)


def test_the_check_finds_sql_on_chunks() -> None:
    """The rule above is only worth something if it recognises the SQL it forbids (and not prose)."""
    code = ('"""Rows from chunks of documents."""\nq = "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.x"\n'
            'r = f"DELETE FROM  chunks WHERE id IN ({marks})"\ns = "SELECT 1 FROM sqlite_master"\n')
    texts = [t for _, t in _strings(ast.parse(code))]
    assert [bool(CHUNKS_SQL.search(t)) for t in texts] == [True, True, False]
    assert "Rows from chunks of documents." not in texts


def _private_uses(path: Path, source: str | None = None) -> list[str]:
    """``from m import _x`` and ``m._x`` where m is another project module (source: instead of the file's)."""
    tree = ast.parse(source) if source is not None else _tree(path)
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    modules: dict[str, str] = {}  # local name -> project module it is bound to
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            if not _is_project(base):
                continue
            for alias in node.names:
                if _private(alias.name):
                    out.append(f"{_rel(path)}:{node.lineno}: from {base} import {alias.name}")
                if f"{base}.{alias.name}" in PROJECT_MODULES:
                    modules[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_project(alias.name):  # `import a.b` binds a; `import a.b as c` binds c to a.b
                    local = alias.asname or alias.name.split(".")[0]
                    modules[local] = alias.name if alias.asname else local
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            dotted, value = [], node.value
            while isinstance(value, ast.Attribute):
                dotted.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in modules:
                target = ".".join([modules[value.id], *dotted])
                if target in PROJECT_MODULES and target != here:
                    out.append(f"{_rel(path)}:{node.lineno}: {target}.{node.attr}")
    return out


def test_no_module_uses_another_modules_private_names() -> None:
    found = [use for path in [*ENGINE, *PAGES, *APP] if path.exists() for use in _private_uses(path)]
    assert found == [], "\n".join(found)


def test_the_private_name_check_finds_both_forms() -> None:
    code = ("from rag_ft.index.documents import _db, list_documents\nfrom rag_ft.index import documents as d\n"
            "import rag_ft.index.vectors\nx = d._conn\ny = rag_ft.index.vectors._hidden\nz = d.__name__\n"
            "from rag_ft.index import chunks\nw = chunks._stored\n")
    # as if it were a module of the engine (only the code is parsed; no file is written)
    found = _private_uses(ROOT / "rag_ft" / "index" / "chunks.py", code)
    assert [f.split(": ", 1)[1] for f in found] == [
        "from rag_ft.index.documents import _db", "rag_ft.index.documents._conn", "rag_ft.index.vectors._hidden"]


def test_the_engine_does_not_import_streamlit() -> None:
    found = []
    for path in ENGINE:
        for node in ast.walk(_tree(path)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{_rel(path)}:{node.lineno}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    assert found == [], "\n".join(found)


def test_modules_are_short() -> None:
    long = [f"{_rel(p)}: {n} lines (engine modules <= 400)" for p in ENGINE
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400]
    long += [f"{_rel(p)}: {n} lines (pages <= 250)" for p in PAGES
             if (n := len(p.read_text(encoding="utf-8").splitlines())) > 250]
    assert long == [], "\n".join(long)
