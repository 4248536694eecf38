"""One exception tree: every public exception class of harness/ lives in harness/errors.py,
under HarnessError, and the tree its docstring draws is the tree the code defines.

Read from the source, so no module (locust's monkey-patching ones included) is imported.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import harness.errors as errors

PACKAGE = Path(__file__).resolve().parents[1] / "harness"
ROOTS = {"Exception", "BaseException"} | {
    name
    for name, obj in vars(errors).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}


def test_public_exceptions_live_in_errors_py():
    outside = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {getattr(b, "id", getattr(b, "attr", None)) for b in node.bases}
                if bases & ROOTS:
                    outside.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    assert not outside


def test_every_exception_is_a_harness_error_drawn_in_the_tree():
    doc = inspect.getdoc(errors) or ""
    for name, obj in vars(errors).items():
        if (
            isinstance(obj, type)
            and issubclass(obj, Exception)
            and obj.__module__ == errors.__name__
        ):
            assert issubclass(obj, errors.HarnessError), name
            assert re.search(rf"[─ ]{name}(\s|$)", doc), f"{name} is not drawn in the tree"


def test_outcome_unknown_covers_timeouts_and_lost_connections():
    assert issubclass(errors.RequestTimeout, errors.OutcomeUnknown)
    assert issubclass(errors.ConnectionLost, errors.OutcomeUnknown)
