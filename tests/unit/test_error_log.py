"""An error no handler expected is one ``request_failed`` event with a plain traceback:
no frame's local variables (they hold supporters' data and secrets), in both formats, and
the client gets a 500 in the usual shape. Run in a child process, so its stderr is the
log exactly as `dispatcher serve` writes it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import asyncio, sys
import httpx
from fastapi.responses import JSONResponse
from dispatcher.logs import configure_logging
from dispatcher.web.errors import UnexpectedErrors

configure_logging(sys.argv[1], "info")

async def failing(scope, receive, send):
    supporter_email = "private.person@example.org"
    raise RuntimeError("the store was not expecting this")

async def respond(request, status, message):
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status)

async def main():
    app = UnexpectedErrors(failing, respond)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        answer = await c.get("/a/some-appeal")
    print(answer.status_code, answer.json()["error"]["message"])

asyncio.run(main())
"""


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_an_unexpected_error_is_one_event_with_a_plain_traceback_and_no_locals(fmt: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, fmt], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "500 internal error; it has been logged"
    log = done.stderr
    assert log.count("request_failed") == 1
    assert "RuntimeError: the store was not expecting this" in log.replace("\\n", "\n")
    assert "private.person@example.org" not in log  # a local variable of the failing frame
    assert "supporter_email" not in log
    if fmt == "json":
        [event] = [json.loads(line) for line in log.splitlines() if "request_failed" in line]
        assert event["path"] == "/a/some-appeal" and "Traceback" in event["exception"]
    else:
        assert "Traceback (most recent call last)" in log


UVICORN_LINE = """
import logging, sys
from dispatcher.logs import configure_logging

configure_logging(sys.argv[1], "info")
logging.getLogger("uvicorn.error").info(
    "Uvicorn running on %s", "http://127.0.0.1:8000",
    extra={"color_message": "Uvicorn running on \\x1b[1m%s\\x1b[0m"},
)
"""


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_uvicorns_lines_carry_no_copy_in_terminal_colour_codes(fmt: str) -> None:
    """`serve` printed each uvicorn line twice, once as color_message='…\\x1b[36m…'."""
    done = subprocess.run(
        [sys.executable, "-c", UVICORN_LINE, fmt], capture_output=True, text=True, timeout=60
    )
    assert "Uvicorn running on http://127.0.0.1:8000" in done.stderr
    assert "color_message" not in done.stderr and "\\x1b" not in done.stderr
