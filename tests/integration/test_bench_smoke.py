"""`python -m bench --quick` (what `make bench ARGS=--quick` runs) finishes and writes its
table, and a JSON file and a plot for each scenario. No figure is judged here: the rates
depend on the machine and what else runs on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, ROOT

# Each scenario whose module is there (bench/__main__.py skips, saying so, those not yet).
PRESENT = sorted(p.stem for p in (ROOT / "bench/scenarios").glob("[!_]*.py"))


@pytest.mark.slow
def test_the_quick_bench_writes_a_row_a_json_file_and_a_plot_per_scenario(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)]
    if POSTGRES_URL:
        command += ["--postgres-url", POSTGRES_URL]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert {"limit", "dispatcher", "apprise", "intake"} <= set(PRESENT)
    for name in PRESENT:
        shown = name.replace("_", "-")  # the table's name for it (queue_library: queue-library)
        assert f"| {shown} |" in table, f"no {shown} row in\n{table}"
        assert (tmp_path / f"{name}.json").stat().st_size > 0
        assert (tmp_path / f"{name}.png").stat().st_size > 0
