"""Schemathesis over `/openapi.json` of a real `dispatcher serve` process: generated
requests to every operation never get a 5xx, and every answer matches its documented
shape. A bounded number of examples per operation (SCHEMA_EXAMPLES for more)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.conftest import OPEN_CAMPAIGN, free_port
from tests.waiting import eventually_blocking

DISPATCHER = str(Path(sys.executable).with_name("dispatcher"))
OPERATOR_TOKEN = "fuzz-operator-token"
EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", "25"))


@pytest.fixture
def base_url(tmp_path: Path, campaigns_dir: Path) -> Iterator[str]:
    work = tmp_path
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(
        {
            "DISPATCHER_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'fuzz.db'}",
            "DISPATCHER_CAMPAIGNS_DIR": str(campaigns_dir),
            "DISPATCHER_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "DISPATCHER_INTAKE__PER_IP_PER_MINUTE": "0",
            "DISPATCHER_INTAKE__PER_EMAIL_PER_HOUR": "0",
        }
    )
    server = subprocess.Popen(
        [DISPATCHER, "serve", "--no-worker", "--port", str(port)],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        eventually_blocking(healthy, what="`dispatcher serve` answering", within=30)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_every_operation_answers_within_its_documented_shape(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    results = list(schema.get_all_operations())
    invalid = [result.err() for result in results if isinstance(result, Err)]
    assert invalid == []  # the schema describes every operation validly
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) >= 10
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    for operation in operations:
        if operation.path.endswith("/stream"):
            continue  # a live stream never ends; its events are tested elsewhere

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case: Case[Any]) -> None:
            if case.path_parameters and "campaign_id" in case.path_parameters:
                # A known, open campaign: otherwise nearly every case stops at a 404.
                case.path_parameters["campaign_id"] = OPEN_CAMPAIGN
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            case.validate_response(response, checks=checks)

        run()
