"""docker-compose.yml and the Dockerfile: the deployment's shape, checked without Docker.

Docker does not run on our machines, so the file is read as data: the services and what
they run, healthchecks and start order, a worker that can be scaled, and every setting a
real DISPATCHER_* setting with the value the service needs. Where a Docker client exists,
``docker compose config`` validates the file as Compose itself reads it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from pydantic import BaseModel

from dispatcher.channels.registry import channel_providers, live, sandboxed_channels
from dispatcher.models import Channel
from dispatcher.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
OURS = ("migrate", "api", "worker", "sandbox")


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} and ${VAR:?error} with nothing set: the default, or a
    stand-in for a value the operator must give."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "given-by-the-operator", value)


def environment(service: str) -> dict[str, str]:
    return {k: interpolate(str(v)) for k, v in SERVICES[service]["environment"].items()}


def setting_exists(name: str) -> bool:
    """DISPATCHER_EMAIL__HOST → Settings.email.host, following nested models."""
    model: type[BaseModel] = Settings
    parts = name.removeprefix("DISPATCHER_").lower().split("__")
    for n, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if n < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def test_every_process_of_the_deployment_is_there() -> None:
    assert set(SERVICES) == {"postgres", "migrate", "api", "worker", "sandbox", "mailpit"}
    assert SERVICES["migrate"]["command"] == ["migrate"]
    assert SERVICES["migrate"]["restart"] == "no"
    assert SERVICES["api"]["command"][:2] == ["serve", "--no-worker"]
    assert SERVICES["worker"]["command"] == ["worker"]
    assert SERVICES["sandbox"]["command"] == ["sandbox"]
    assert SERVICES["mailpit"]["image"].startswith("axllent/mailpit:")


def test_start_order_waits_for_health_and_the_migration() -> None:
    def depends(service: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in SERVICES[service]["depends_on"].items()}

    assert depends("migrate") == {"postgres": "service_healthy"}
    assert depends("api") == {"migrate": "service_completed_successfully"}
    assert depends("worker") == {
        "migrate": "service_completed_successfully",
        "mailpit": "service_healthy",
        "sandbox": "service_healthy",
    }
    for service in ("postgres", "api", "worker", "sandbox", "mailpit"):
        assert SERVICES[service]["healthcheck"]["test"], service


def test_the_worker_can_be_scaled() -> None:
    worker = SERVICES["worker"]
    # --scale worker=N needs no fixed name and no host port.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["stop_grace_period"]


def worker_healthcheck(port: int) -> list[str]:
    """The worker's healthcheck command, run here: this Python, and ``port`` for its own."""
    kind, program, *args = SERVICES["worker"]["healthcheck"]["test"]
    assert (kind, program) == ("CMD", "python")
    return [sys.executable, *(arg.replace(":8001/", f":{port}/") for arg in args)]


def test_the_worker_is_checked_on_the_health_port_its_settings_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("DISPATCHER_")]:
        monkeypatch.delenv(name)
    for name, value in environment("worker").items():
        monkeypatch.setenv(name, value)
    worker = Settings(_env_file=None).worker  # type: ignore[call-arg]
    # Reached from outside its container (the health check runs inside it, on loopback).
    assert (worker.metrics_host, worker.metrics_port) == ("0.0.0.0", 8001)  # noqa: S104
    check = " ".join(SERVICES["worker"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{worker.metrics_port}/healthz" in check
    assert worker_healthcheck(8123)[-1].count("127.0.0.1:8123/healthz") == 1
    # The api process has no worker of its own: nothing to serve there.
    assert "DISPATCHER_WORKER__METRICS_PORT" not in environment("api")


def test_every_setting_is_a_real_dispatcher_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for service in OURS:
        env = environment(service)
        assert all(name.startswith("DISPATCHER_") for name in env), service
        unknown = [name for name in env if not setting_exists(name)]
        assert unknown == [], f"{service}: not settings: {unknown}"
    for name in [n for n in os.environ if n.startswith("DISPATCHER_")]:
        monkeypatch.delenv(name)
    for name, value in environment("worker").items():
        monkeypatch.setenv(name, value)
    worker = Settings(_env_file=None)  # type: ignore[call-arg]
    assert worker.database_url.startswith("postgresql+asyncpg://dispatcher:")
    assert worker.database_url.endswith("@postgres:5432/dispatcher")
    # Mail goes to Mailpit, fax and X to the sandbox service, none of it leaves.
    assert (worker.email.host, worker.email.port, worker.email.start_tls) == (
        "mailpit",
        1025,
        False,
    )
    assert not worker.fax.configured and not worker.twitter.configured
    assert (worker.sandbox.host, worker.sandbox.embedded) == ("sandbox", False)
    # ... and all of it is a rehearsal: labelled so, never counted, not "live".
    assert channel_providers(worker) == dict.fromkeys(Channel, "sandbox")
    assert not live(worker)
    assert sandboxed_channels(worker) == [Channel.FAX, Channel.TWITTER]  # the sandbox service
    assert environment("sandbox")["DISPATCHER_SANDBOX__HOST"] == "0.0.0.0"  # noqa: S104


def test_the_image_installs_the_locked_versions_and_runs_as_a_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    install = re.search(r"pip install (.*)'\.\[([\w,]+)\]'", dockerfile)
    assert install is not None
    # Within requirements.lock, copied in before it is used.
    assert "-c requirements.lock" in install.group(1)
    copied = re.search(r"^COPY (.*) \./$", dockerfile, re.M)
    assert copied is not None and "requirements.lock" in copied.group(1).split()
    assert dockerfile.index("requirements.lock") < install.start()
    # The extras its processes use: PostgreSQL's driver, the sandbox service's SMTP
    # server, uvloop for the worker, the /docs assets for the API.
    assert set(install.group(2).split(",")) == {"postgres", "sandbox", "speed", "docs"}
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert 'ENTRYPOINT ["dispatcher"]' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "var"} <= set(ignored)
    assert "requirements.lock" not in ignored


def test_the_lock_pins_every_dependency_and_extra_of_pyproject() -> None:
    """requirements.lock (``make lock``) pins each package pyproject.toml names, in the
    base and in every extra, to a version its requirement accepts; `make install`
    installs within it. A requirement changed without `make lock` fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    named = [Requirement(spec) for spec in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        named += [Requirement(spec) for spec in extra]
    lock = (ROOT / "requirements.lock").read_text()
    pins = {
        canonical(name): version
        for name, version in re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", lock, re.M)
    }
    unpinned = [str(r) for r in named if canonical(r.name) not in pins]
    assert unpinned == []
    refused = [
        f"{r} (locked {pins[canonical(r.name)]})"
        for r in named
        if not r.specifier.contains(pins[canonical(r.name)], prereleases=True)
    ]
    assert refused == []
    makefile = (ROOT / "Makefile").read_text()
    install = re.search(r"pip install .*-c requirements\.lock -e '\.\[([\w,]+)\]'", makefile)
    # and with what `make demo`, `make test` and `make bench` (which the tests run quickly) need:
    assert install is not None
    wanted = {"test", "dev", "sandbox", "speed", "docs", "bench"}
    assert set(install.group(1).split(",")) == wanted
    assert re.search(r"^lock:", makefile, re.M)


def canonical(name: str) -> str:
    """A package name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not compose_available(), reason="no Docker Compose on this machine")
def test_docker_compose_accepts_the_file() -> None:
    env = dict(os.environ, DISPATCHER_SECRET_KEY="test-only")
    subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        check=True,
        env=env,
    )


def test_the_demo_writes_a_secret_key_once_and_later_processes_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from dispatcher.demo import ensure_secret_key

    for name in [n for n in os.environ if n.startswith("DISPATCHER_")]:
        monkeypatch.delenv(name)
    env_file = tmp_path / ".env"
    env_file.write_text("DISPATCHER_OPERATOR_TOKEN=kept-long-enough-token", encoding="utf-8")
    quiet = Console(file=io.StringIO())
    first = ensure_secret_key(Settings(_env_file=env_file), env_file, quiet)  # type: ignore[call-arg]
    assert first.secret_key is not None and len(first.secret_key.get_secret_value()) >= 40
    # A `serve` started later reads the same key from the file; the demo adds no second one.
    later = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert later.secret_key == first.secret_key
    assert (
        later.operator_token is not None
        and later.operator_token.get_secret_value() == "kept-long-enough-token"
    )
    assert ensure_secret_key(later, env_file, quiet) is later
    assert env_file.read_text(encoding="utf-8").count("DISPATCHER_SECRET_KEY=") == 1
    assert env_file.stat().st_mode & 0o777 == 0o600
