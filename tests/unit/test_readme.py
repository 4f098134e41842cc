"""The README's tables name tests that exist: the fault table and the provider error
tables (email, fax, X) each stay backed by a test, row by row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DEFINED = {
    name
    for path in (ROOT / "tests").rglob("test_*.py")
    for name in re.findall(r"^(?:async )?def (test_\w+)", path.read_text("utf-8"), re.M)
}


def _section(start: str, end: str) -> str:
    return README.split(start, 1)[1].split(end, 1)[0]


def test_every_test_the_fault_table_names_exists() -> None:
    table = _section("### Faults and what they come to", "Not yet covered")
    named = set(re.findall(r"`(test_\w+)`", table))
    assert len(named) >= 25
    assert sorted(named - DEFINED) == []


@pytest.mark.parametrize("provider", ["Email", "Fax", "X"])
def test_every_row_of_the_provider_error_tables_names_a_test_that_exists(provider: str) -> None:
    table = _section(f"### {provider}\n", "\n#")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 6, provider
    for row in rows[1:]:  # after the header
        named = set(re.findall(r"`(test_\w+)", row))
        assert named, row
        assert sorted(named - DEFINED) == [], row
