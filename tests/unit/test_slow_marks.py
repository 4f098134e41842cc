"""The slow mark's table names folders, files and tests that exist: a renamed test would
otherwise fall silently into the fast loop."""

from __future__ import annotations

import re

from tests.conftest import ROOT, SLOW, SLOW_FIXTURES, is_slow


def test_every_slow_entry_names_something_that_exists() -> None:
    def exists(key: str) -> bool:
        path, _, test = key.partition("::")
        if not (ROOT / path).exists():
            return False
        source = "" if not test else (ROOT / path).read_text(encoding="utf-8")
        return not test or re.search(rf"^(async )?def {test}\(", source, re.M) is not None

    missing = [key for key in SLOW if not exists(key)]
    fixtures = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py"))
    missing += [f for f in SLOW_FIXTURES if not re.search(rf"^(async )?def {f}\(", fixtures, re.M)]
    assert missing == []


def test_a_folder_a_file_a_test_or_a_fixture_makes_a_test_slow() -> None:
    assert is_slow("tests/e2e/test_browser.py::test_anything[390]", [])
    assert is_slow("tests/unit/test_error_log.py::test_anything[json]", [])
    blanked = "tests/integration/test_smtp_tls.py::test_the_access_token_is_blanked_from_every_"
    assert is_slow(blanked + "log_line[json]", [])
    assert not is_slow(blanked + "log_line_too", [])
    assert not is_slow("tests/integration/test_smtp_tls.py::test_ssl_cert_file_is_trusted", [])
    assert is_slow("tests/acceptance/test_cli.py::test_serve", ["tmp_path", "cli"])
    assert not is_slow("tests/acceptance/test_cli.py::test_help", ["tmp_path"])
