"""Without the optional extras, as on a machine where only the base package is installed:
the sandbox's SMTP server (``sandbox``: aiosmtpd), uvloop (``speed``) and the Swagger UI
assets (``docs``). What needs one says in one sentence what to install; the rest works.

Each runs in its own interpreter where the extra's module cannot be imported."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import OPEN_CAMPAIGN, ROOT, free_port


async def python(script: str, cwd: Path, *hidden: str) -> tuple[int, str, str]:
    """Run ``script`` in a fresh interpreter in which ``hidden`` modules are missing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(
        PYTHONPATH=str(ROOT),  # this checkout's package, whatever the environment installed
        DISPATCHER_DATABASE_URL=f"sqlite+aiosqlite:///{cwd / 'extras.db'}",
        DISPATCHER_CAMPAIGNS_DIR=str(cwd / "campaigns"),
        # Free ports: were the command to start anyway, it would not meet another's server.
        DISPATCHER_SANDBOX__SMTP_PORT=str(free_port()),
        DISPATCHER_SANDBOX__FAX_PORT=str(free_port()),
        DISPATCHER_SANDBOX__X_PORT=str(free_port()),
    )
    hide = "".join(f"sys.modules[{name!r}] = None\n" for name in hidden)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"import sys\n{hide}{script}",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # A command that started serving instead of refusing would never end: a guard, not a
    # measurement.
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.mark.parametrize("command", [["sandbox"], ["serve", "--port", "0"], ["demo"]])
async def test_the_sandbox_without_its_smtp_server_says_what_to_install(
    command: list[str], tmp_path: Path, campaigns_dir: Path
) -> None:
    """``serve`` with channels rehearsing on the embedded sandbox, the sandbox itself, and
    the demo refuse before starting anything."""
    script = f"from dispatcher.cli import main\nsys.exit(main({command!r}))"
    code, _, stderr = await python(script, tmp_path, "aiosmtpd")
    assert code == 2, stderr
    last = stderr.strip().splitlines()[-1]
    assert last == (
        "error: the sandbox's SMTP server needs aiosmtpd, which is not installed: install it "
        "with pip install 'appeal-dispatcher[sandbox]'"
    )
    assert "Traceback" not in stderr


async def test_without_uvloop_the_cli_runs_on_asyncios_own_loop(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    script = (
        "import asyncio\n"
        "from dispatcher.cli import main\n"
        "code = main(['report', '--campaign', " + repr(OPEN_CAMPAIGN) + "])\n"
        "print('loop:', type(asyncio.new_event_loop()).__module__)\n"
        "sys.exit(code)"
    )
    code, stdout, stderr = await python(script, tmp_path, "uvloop")
    assert code == 0, stderr
    assert OPEN_CAMPAIGN in stdout and "loop: asyncio." in stdout


async def test_without_the_swagger_ui_assets_docs_says_what_to_install(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    script = """
import asyncio
import httpx
from dispatcher.settings import Settings
from dispatcher.web.app import create_app

async def main():
    app = create_app(Settings(), run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for path in ("/docs", "/docs/assets/swagger-ui.css", "/openapi.json"):
                answer = await client.get(path)
                print(path, answer.status_code, answer.text.splitlines()[0][:200])

asyncio.run(main())
"""
    code, stdout, stderr = await python(script, tmp_path, "swagger_ui_bundle")
    assert code == 0, stderr
    lines = stdout.splitlines()
    advice = "install them with pip install 'appeal-dispatcher[docs]'"
    assert lines[0].startswith("/docs 404 The API docs page needs") and advice in lines[0]
    assert lines[1].startswith("/docs/assets/swagger-ui.css 404 ") and advice in lines[1]
    assert lines[2].startswith("/openapi.json 200 {")
