"""An SMTP server that does what a mail catcher does with each message, and counts.

aiosmtpd with a handler that parses each message (headers and body, as Mailpit or a
relay's content filter would) and spools its raw bytes to a file, nothing more. Not the
project's sandbox: this is the yardstick the benchmarks measure against, run in its own
process so it has a core to itself.
It prints its port, then answers each line on stdin with a JSON line:
``{"messages": N, "first": t, "last": t, "times": [t, …]}`` (``time.time()`` of the
first and last DATA since the previous line, and of each) and starts counting afresh.

    .venv/bin/python bench/smtp_counter.py
"""

from __future__ import annotations

import asyncio
import email.policy
import json
import shutil
import sys
import tempfile
import time
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

_PARSER = BytesParser(policy=email.policy.default)


class Counter:
    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.spooled = 0
        self.messages = 0
        self.first = 0.0
        self.last = 0.0
        self.times: list[float] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = _PARSER.parsebytes(raw)
        if message.get_body() is None:
            return "554 5.6.0 no body"
        self.spooled += 1
        (self.spool / f"{self.spooled}.eml").write_bytes(raw)
        now = time.time()
        if self.messages == 0:
            self.first = now
        self.messages += 1
        self.last = now
        self.times.append(now)
        return "250 2.0.0 OK"

    def take(self) -> dict[str, Any]:
        taken = {
            "messages": self.messages,
            "first": self.first,
            "last": self.last,
            "times": self.times,
        }
        self.messages = 0
        self.times = []
        return taken


async def main() -> None:
    counter = Counter(Path(tempfile.mkdtemp(prefix="smtp-counter-")))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(counter, hostname="counter.localhost", enable_SMTPUTF8=True, loop=loop),
        "127.0.0.1",
        0,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        print(json.dumps(counter.take()), flush=True)
    server.close()
    shutil.rmtree(counter.spool)


if __name__ == "__main__":
    asyncio.run(main())
