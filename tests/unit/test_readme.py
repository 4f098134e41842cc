"""The README's fault table names tests that exist: each row stays backed by a test."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_the_fault_table_names_exists() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Faults and what they come to", 1)[1]
    table = section.split("Not yet covered", 1)[0]
    named = set(re.findall(r"`(test_\w+)`", table))
    assert len(named) >= 25
    defined = {
        name
        for path in (ROOT / "tests").rglob("test_*.py")
        for name in re.findall(r"^(?:async )?def (test_\w+)", path.read_text("utf-8"), re.M)
    }
    assert sorted(named - defined) == []
