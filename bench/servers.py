"""The servers the ``limit``, ``dispatcher`` and ``apprise`` scenarios send to, each in
its own process, the campaign their appeals are for, and the blast clients.

* email: bench/smtp_counter.py (parses and spools each message, counts, timestamps);
* fax and X: one ``dispatcher sandbox`` process (its Phaxio-compatible gateway files
  each fax after "transmitting" it for 20 ms; its X API records each post).

``Servers.arrivals`` reads what each server took since the last read, as arrival times
on the server's own clock (``time.time()``), so a rate is first to last arrival and
process start-up is never in it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from bench import email_ratio, fax_ratio, x_ratio
from bench.common import free_port, start_sandbox
from bench.email_ratio import CountingServer

CAMPAIGN = "suite-bench"
# Officials of the campaign, each with an address on every channel: an appeal for one
# channel is TARGETS deliveries, so seeding a queue takes few appeals.
TARGETS = 100
POOL = 8  # SMTP connections, the blast client's and a worker's
SLOTS = 8  # concurrent faxes and posts, the blast clients' and a worker's
FAX_POLL_SECONDS = 0.05
CHANNELS = {"email": "email", "fax": "fax", "x": "twitter"}  # ours: the dispatcher's


def write_campaign(directory: Path) -> tuple[str, str]:
    """TARGETS officials with an email address, a fax number (one fax at a time per
    number: a hundred lines) and an X handle each; posts from the organisation's
    (sandbox) account; no pacing (every appeal writes to the same officials). Returns
    the letter's subject and body (UA 61.21's English letter)."""
    shipped = tomllib.loads((fax_ratio.ROOT / "config/campaigns/ua-61-21.toml").read_text("utf-8"))
    letter = shipped["letter"]["en"]
    deadline = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    targets = "".join(
        f'\n[[targets]]\nid = "official-{n}"\nname = "Official {n}"\n'
        f'salutation = "Dear Official {n}"\nemail = "official{n}@gov.example"\n'
        f'fax = "{number}"\ntwitter = ["@Official{n}"]\n'
        for n, number in enumerate(fax_ratio.numbers())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{CAMPAIGN}.toml").write_text(
        f'id = "{CAMPAIGN}"\ntitle = "Bench"\norganisation = "Bench"\n'
        f'deadline = {deadline.isoformat()}\ndefault_language = "en"\n'
        'x_mode = "organisation"\ntweet = "Release them."\n\n'
        "[pacing]\nemail_per_recipient_per_minute = 0\ntwitter_per_minute = 0\n\n"
        f"[letter.en]\nsubject = {json.dumps(letter['subject'])}\n"
        f"body = {json.dumps(letter['body'])}\n" + targets,
        encoding="utf-8",
    )
    return letter["subject"], letter["body"]


def env_of(sections: dict[str, dict[str, Any]]) -> dict[str, str]:
    """``{"email": {"port": 25}}`` as ``{"DISPATCHER_EMAIL__PORT": "25"}``."""
    return {
        f"DISPATCHER_{section.upper()}__{key.upper()}": (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
        for section, values in sections.items()
        for key, value in values.items()
    }


def arrival_rate(times: list[float]) -> float:
    """Arrivals per second, first to last."""
    span = max(times) - min(times) if len(times) > 1 else 0.0
    return (len(times) - 1) / span if span > 0 else 0.0


def cumulative(times: list[float], since: float) -> list[tuple[float, int]]:
    """(seconds since ``since``, how many so far) for each time, at most ~400 points."""
    ordered = sorted(times)
    step = max(1, len(ordered) // 400)
    points = [(round(t - since, 3), n + 1) for n, t in enumerate(ordered) if n % step == 0]
    if ordered and points[-1][1] != len(ordered):
        points.append((round(ordered[-1] - since, 3), len(ordered)))
    return points


class Servers:
    """The counting SMTP server and the sandbox (fax gateway, X API), started on enter,
    stopped on exit."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="dispatcher-suite-"))
        self.fax_url = ""
        self.x_url = ""
        self.subject, self.body = write_campaign(self.work / "campaigns")
        self._counter: CountingServer | None = None
        self._sandbox: asyncio.subprocess.Process | None = None
        self._filed: set[Path] = set()
        self._posts = 0
        self._pdf: bytes | None = None

    async def __aenter__(self) -> Servers:
        self._counter = await CountingServer.start()
        fax_port, x_port = free_port(), free_port()
        transmit = {"DISPATCHER_SANDBOX__FAX_TRANSMIT_SECONDS": "0.02"}
        self._sandbox = await start_sandbox(
            self.work / "sandbox", transmit, fax_port=fax_port, x_port=x_port
        )
        self.fax_url, self.x_url = f"http://127.0.0.1:{fax_port}", f"http://127.0.0.1:{x_port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._counter is not None:
            await self._counter.stop()
        if self._sandbox is not None:
            self._sandbox.terminate()
            await self._sandbox.wait()
        shutil.rmtree(self.work, ignore_errors=True)

    @property
    def smtp_port(self) -> int:
        assert self._counter is not None
        return self._counter.port

    def provider_settings(self, channels: list[str]) -> dict[str, dict[str, Any]]:
        """The settings sections that send ``channels`` (ours: email, fax, twitter) to
        these servers, and the worker's slots for them."""
        sections: dict[str, dict[str, Any]] = {"worker": {}}
        if "email" in channels:
            sections["email"] = {
                "host": "127.0.0.1",
                "port": self.smtp_port,
                "start_tls": False,
                "pool_size": POOL,
                "per_recipient_per_minute": 0,
            }
        if "fax" in channels:
            sections["fax"] = {"base_url": self.fax_url, "api_key": "bench"}
            sections["fax"] |= {"api_secret": "bench", "poll_seconds": FAX_POLL_SECONDS}
            sections["worker"]["fax_concurrency"] = SLOTS
        if "twitter" in channels:
            keys = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
            sections["twitter"] = {"api_base_url": self.x_url} | dict.fromkeys(keys, "bench")
            sections["worker"]["twitter_concurrency"] = SLOTS
        return sections

    async def blast(self, channel: str, count: int, tag: str) -> None:
        """``count`` ready-made deliveries on ``channel`` (email, fax, x) by its blast
        client, as fast as the server answers."""
        if channel == "email":
            await email_ratio.blast(self.smtp_port, count, POOL)
        elif channel == "fax":
            if self._pdf is None:
                self._pdf = await asyncio.to_thread(fax_ratio.sample_pdf, self.subject, self.body)
            await fax_ratio.blast(self.fax_url, count, SLOTS, self._pdf, False)
        else:
            await x_ratio.blast(self.x_url, count, SLOTS, tag)

    async def arrivals(self, channel: str, expected: int = 0, seconds: float = 15) -> list[float]:
        """The arrival times of what ``channel``'s server took since the last call, once
        ``expected`` have arrived (or ``seconds`` have passed)."""
        deadline = time.monotonic() + seconds
        times: list[float] = []
        while True:
            times += await self._take(channel)
            if len(times) >= expected or time.monotonic() > deadline:
                return times
            await asyncio.sleep(0.1)

    async def _take(self, channel: str) -> list[float]:
        if channel == "email":
            assert self._counter is not None
            return [float(t) for t in (await self._counter.take())["times"]]
        if channel == "fax":
            fresh = set((self.work / "sandbox" / "fax").glob("*.json")) - self._filed
            times = []
            for path in fresh:
                try:
                    times.append(_filed_at(path))
                except ValueError:  # still being written: read it next time
                    continue
                self._filed.add(path)
            return times
        path = self.work / "sandbox" / "twitter" / "tweets.jsonl"
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        lines = text[: text.rfind("\n") + 1].splitlines()  # whole lines: one may be half written
        new, self._posts = lines[self._posts :], len(lines)
        return [dt.datetime.fromisoformat(json.loads(x)["received_at"]).timestamp() for x in new]


def _filed_at(path: Path) -> float:
    return dt.datetime.fromisoformat(json.loads(path.read_text("utf-8"))["created_at"]).timestamp()
