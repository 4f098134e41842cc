"""Functions in the package stay short enough to read at once."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

MAX_LINES = 60
# Declarative tables, where length is a list of things rather than steps.
DECLARATIVE = {
    ("dispatcher/cli.py", "build_parser"),  # the argument parser
    ("dispatcher/store/queue_sql.py", "load_claimed"),  # the columns a worker needs
}


def test_no_function_is_longer_than_sixty_lines() -> None:
    long: list[str] = []
    for path in sorted((ROOT / "dispatcher").rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if "/migrations/" in where:  # table definitions, frozen once released
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > MAX_LINES and (where, node.name) not in DECLARATIVE:
                long.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_the_package_has_no_module_of_more_than_five_hundred_lines() -> None:
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "dispatcher").rglob("*.py")
    }
    assert {where: n for where, n in sizes.items() if n > 500} == {}


def test_paths_in_this_test_exist() -> None:
    for where, _ in DECLARATIVE:
        assert Path(ROOT / where).is_file()
