"""The error tree drawn in core/errors.py's docstring is the whole truth: every stable code a
class declares or a raise site passes is drawn there, and every code drawn there is used."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import core.errors
from core.errors import EnclaveError

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "policies", "ingest", "assistant", "ui")
CODE = re.compile(r"\b[a-z_]+\.[a-z_]+\b")


def drawn_codes(doc: str) -> set[str]:
    """Codes in the tree drawing: from the ``EnclaveError`` line to the first blank line."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("EnclaveError "))
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return {code for line in lines[start:end] for code in CODE.findall(line)}


def error_class_names() -> set[str]:
    return {
        name
        for name, obj in vars(core.errors).items()
        if isinstance(obj, type) and issubclass(obj, EnclaveError)
    }


def codes_in_source(source: str, error_classes: set[str]) -> dict[str, int]:
    """``code = "..."`` in any class body, and ``code="..."`` given to an error class; each
    with its line number."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else []
                if isinstance(stmt, ast.AnnAssign):
                    targets = [stmt.target]
                value = getattr(stmt, "value", None)
                if (
                    any(isinstance(t, ast.Name) and t.id == "code" for t in targets)
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                ):
                    found.setdefault(value.value, stmt.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name not in error_classes:
                continue
            for kw in node.keywords:
                if (
                    kw.arg == "code"
                    and isinstance(kw.value, ast.Constant)
                    and isinstance(kw.value.value, str)
                ):
                    found.setdefault(kw.value.value, node.lineno)
    return found


def codes_in_use() -> dict[str, str]:
    """Every code the packages declare or raise -> where (``path:line``)."""
    classes = error_class_names()
    used: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for code, line in codes_in_source(path.read_text(), classes).items():
                used.setdefault(code, f"{path.relative_to(REPO)}:{line}")
    return used


def test_every_code_in_use_is_drawn_in_the_tree() -> None:
    drawn = drawn_codes(core.errors.__doc__ or "")
    missing = {code: where for code, where in codes_in_use().items() if code not in drawn}
    assert not missing, f"codes not drawn in core/errors.py's docstring tree: {missing}"


def test_every_code_in_the_tree_is_used() -> None:
    used = codes_in_use()
    stale = sorted(drawn_codes(core.errors.__doc__ or "") - set(used))
    assert not stale, f"codes drawn in core/errors.py's docstring that nothing uses: {stale}"


def test_every_error_class_is_drawn_in_the_tree() -> None:
    doc = core.errors.__doc__ or ""
    assert not {name for name in error_class_names() if not re.search(rf"\b{name}\b", doc)}


def test_the_scan_sees_an_undocumented_code() -> None:
    """The check can fail: a new class code and a new raise-site code are both found."""
    source = (
        "class NewError(IngestError):\n"
        '    code = "ingest.brand_new"\n'
        "def f():\n"
        '    raise LLMError("x", code="llm.brand_new")\n'
        '    print(code="not.an_error")\n'
    )
    found = codes_in_source(source, error_class_names())
    assert set(found) == {"ingest.brand_new", "llm.brand_new"}
    assert not set(found) & drawn_codes(core.errors.__doc__ or "")
