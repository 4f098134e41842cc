"""Functions in the package stay short enough to read at once."""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

from tests.conftest import ROOT

MAX_LINES = 60
# Declarative tables, where length is a list of things rather than steps.
DECLARATIVE = {
    ("dispatcher/cli/parser.py", "build_parser"),  # the argument parser
    ("dispatcher/store/claimed_sql.py", "_claimed_statement"),  # the columns a worker needs
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


def test_the_package_has_no_module_of_more_than_four_hundred_lines() -> None:
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "dispatcher").rglob("*.py")
    }
    assert {where: n for where, n in sizes.items() if n > 400} == {}


def test_paths_in_this_test_exist() -> None:
    for where, _ in DECLARATIVE:
        assert Path(ROOT / where).is_file()


LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}
PERCENT_FORMAT = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d+)?(\.(\*|\d+))?[diouxXeEfFgGcrsa]")
# A field named like a LogRecord attribute cannot be added to the record: the call raises.
RECORD_ATTRIBUTES = {
    *vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None)),
    "message",
    "asctime",
} - {"exc_info", "stack_info"}


def _logger_names(tree: ast.Module) -> set[str]:
    """Module-level names bound to a logger (``log = get_logger(__name__)``)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            called = ast.unparse(node.value.func)
            if called.endswith(("getLogger", "get_logger")):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _logging_problems(where: str, tree: ast.Module) -> list[str]:
    problems = []
    loggers = _logger_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        called = ast.unparse(node.func)
        if called.endswith("getLogger") and where != "dispatcher/logs.py":
            problems.append(f"{where}:{node.lineno} calls {called}: use dispatcher.logs")
        receiver = node.func.value
        if not (isinstance(receiver, ast.Name) and receiver.id in loggers):
            continue
        if node.func.attr not in LOG_METHODS:
            continue
        event = node.args[0] if node.args else None
        if not (isinstance(event, ast.Constant) and isinstance(event.value, str)):
            problems.append(f"{where}:{node.lineno} logs a computed message, not an event")
        elif PERCENT_FORMAT.search(event.value) or len(node.args) > 1:
            problems.append(f"{where}:{node.lineno} logs a %-format string: {event.value!r}")
        clashes = {k.arg for k in node.keywords if k.arg} & RECORD_ATTRIBUTES
        if clashes:
            problems.append(f"{where}:{node.lineno} names a field {sorted(clashes)}")
    return problems


def test_every_module_logs_events_with_fields_through_structlog() -> None:
    """``log.warning("could not renew leases", error=…)``: an event and its fields, never
    a %-format string, and every logger from dispatcher.logs."""
    problems: list[str] = []
    for path in sorted((ROOT / "dispatcher").rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        problems += _logging_problems(where, ast.parse(path.read_text(encoding="utf-8")))
    assert problems == []


def test_the_logging_scan_finds_what_it_is_for() -> None:
    stdlib_style = (
        "import logging\n"
        "log = logging.getLogger(__name__)\n"
        "log.warning('callback for fax %s failed', ref)\n"
        "log.info(f'recorded {stem}')\n"
        "log.error('renewed', name='worker-1')\n"
    )
    found = _logging_problems("dispatcher/x.py", ast.parse(stdlib_style))
    assert [problem.split(" ", 1)[0] for problem in found] == [
        "dispatcher/x.py:2",
        "dispatcher/x.py:3",
        "dispatcher/x.py:4",
        "dispatcher/x.py:5",
    ]
    events = "log = get_logger(__name__)\nlog.warning('a callback failed', fax_id=ref)\n"
    assert _logging_problems("dispatcher/x.py", ast.parse(events)) == []
