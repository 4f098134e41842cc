"""SMTP sink: a real SMTP server (aiosmtpd) inside the caller's event loop.

It accepts mail from anyone, with or without AUTH (any credentials pass, so a client
configured for a real relay works unchanged), including 8-bit and SMTPUTF8 messages.
Given a :class:`Relay` (tests), it asks what a production relay asks instead: STARTTLS
or implicit TLS with a certificate, and AUTH PLAIN/LOGIN or XOAUTH2 with credentials it
checks, refusing wrong ones as Gmail does.
Each accepted message is written as ``<directory>/NNNNN-<first rcpt>.eml`` (the raw
bytes of DATA) and appended, parsed with ``email.policy.default``, to ``messages``.

Faults: a refused recipient is answered ``550`` at RCPT TO; at the end of DATA the first
``fail_first`` messages are answered ``451`` and not recorded, the first ``reset_first``
connections are reset before the message is taken, and the first ``stall_first`` /
``drip_first`` messages are recorded, then answered never / one byte at a time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.policy
import json
import ssl
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal, cast

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from dispatcher.logs import get_logger

from .faults import FaultCounter, Faults
from .http_server import STALL_SECONDS, listening_socket, reset_connection
from .recording import NumberedFolder

log = get_logger(__name__)

_PARSER = BytesParser(_class=EmailMessage, policy=email.policy.default)


class _Handler:
    """aiosmtpd hooks: refuse at RCPT, fail or record at end of DATA."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    # aiosmtpd finds hooks by these exact (upper-case) names.
    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self._sink.faults.refuses_email(address):
            return f"550 5.1.1 <{address}>: mailbox unavailable (sandbox: refused)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        faults, counter = self._sink.faults, self._sink.counter
        transport = cast(asyncio.Transport | None, server.transport)
        if faults.delay_seconds:
            await asyncio.sleep(faults.delay_seconds)
        if counter.take("fail"):
            return "451 4.3.0 Temporary failure (sandbox: injected)"
        if counter.take("reset"):
            # Cut off before the message is taken: no 250, so it was never accepted.
            reset_connection(transport)
            return "421 4.4.2 (never sent: the connection is gone)"
        raw = envelope.original_content or b""
        number = self._sink.record(raw, envelope.rcpt_tos[0] if envelope.rcpt_tos else "unknown")
        reply = f"250 2.0.0 OK: queued as {number}"
        if counter.take("stall"):
            await _until_closed(server, STALL_SECONDS)
            return reply
        if counter.take("drip"):
            # All but the line end one byte at a time; aiosmtpd writes what is returned,
            # plus the line end.
            for char in reply:
                if transport is None or transport.is_closing():
                    break
                transport.write(char.encode("ascii"))
                await asyncio.sleep(faults.drip_seconds)
            return ""
        return reply


async def _until_closed(server: SMTP, seconds: float) -> None:
    """Wait until the client hangs up (or ``seconds``)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + seconds
    while loop.time() < give_up:
        if server.transport is None or server.transport.is_closing():
            return
        await asyncio.sleep(0.05)


def _accept_any_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    # The sandbox checks nothing: it only has to let a client that insists on AUTH through.
    return AuthResult(success=True)


@dataclass
class Relay:
    """What the sandbox asks of clients when it stands in for a production relay.

    ``tls`` needs ``certificate`` (the server's context). With ``passwords`` (PLAIN and
    LOGIN) or ``tokens`` (XOAUTH2: each user's access token valid now; change it to
    expire the old one) AUTH is required before MAIL, and wrong credentials get ``535``.
    """

    tls: Literal["starttls", "implicit"] | None = None
    certificate: ssl.SSLContext | None = None
    passwords: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    # Mechanisms not offered ("PLAIN", "LOGIN", "XOAUTH2").
    exclude: tuple[str, ...] = ()
    # Every AUTH tried, as (mechanism, username, accepted), in order.
    logins: list[tuple[str, str, bool]] = field(default_factory=list)

    @property
    def auth_required(self) -> bool:
        return bool(self.passwords or self.tokens)

    def check_password(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator, for PLAIN and LOGIN."""
        assert isinstance(auth_data, LoginPassword)
        user = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        accepted = user in self.passwords and self.passwords[user] == password
        self.logins.append((mechanism, user, accepted))
        return AuthResult(success=accepted, handled=False)  # refused: aiosmtpd answers 535


# Gmail's answer to an expired or wrong access token: a JSON challenge, then 535.
_XOAUTH2_ERROR = json.dumps(
    {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
)
_XOAUTH2_REFUSED = "535 5.7.8 Username and Password not accepted (sandbox)"


class _RelayHandler(_Handler):
    """The hooks of a sandbox standing in for a relay: XOAUTH2 besides PLAIN and LOGIN."""

    def __init__(self, sink: SmtpSink, relay: Relay) -> None:
        super().__init__(sink)
        self._relay = relay

    # aiosmtpd offers each handler method named auth_<MECHANISM> as a mechanism.
    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) != 2:
            return AuthResult(
                success=False, handled=False, message="501 5.5.2 XOAUTH2 needs its argument"
            )
        try:
            user, _, bearer = base64.b64decode(args[1], validate=True).decode().partition("\x01")
        except (binascii.Error, UnicodeDecodeError):
            return AuthResult(success=False, handled=False, message="501 5.5.2 Can't decode base64")
        user = user.removeprefix("user=")
        token = bearer.removeprefix("auth=Bearer ").rstrip("\x01")
        accepted = user in self._relay.tokens and self._relay.tokens[user] == token
        self._relay.logins.append(("XOAUTH2", user, accepted))
        if accepted:
            return AuthResult(success=True)
        if await server.challenge_auth(_XOAUTH2_ERROR) is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=_XOAUTH2_REFUSED)


class _QuietSessionState(Session):
    """aiosmtpd's per-connection state, minus a noisy log line.

    aiosmtpd 1.4 itself sets the deprecated ``login_data`` after every successful AUTH,
    which logs a deprecation warning each time; nothing here reads it.
    """

    _login: Any = None

    @property
    def login_data(self) -> Any:
        return self._login

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login = value


class _Session(SMTP):
    """One SMTP connection that removes itself from the sink's registry when it ends."""

    def __init__(self, registry: set[SMTP], handler: _Handler, **options: Any) -> None:
        super().__init__(handler, **options)
        self._registry = registry
        registry.add(self)

    def _create_session(self) -> Session:
        return _QuietSessionState(self.loop)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self._registry.discard(self)


class SmtpSink:
    """The SMTP stand-in. ``start()`` binds, ``stop()`` closes every open session.

    ``port`` is the bound port once started (``port=0`` asks for an ephemeral one).
    """

    def __init__(
        self,
        directory: Path,
        *,
        faults: Faults,
        messages: list[EmailMessage],
        host: str = "127.0.0.1",
        port: int = 0,
        relay: Relay | None = None,
    ) -> None:
        if relay is not None and relay.tls and relay.certificate is None:
            raise ValueError("a sandbox relay with TLS needs its certificate")
        self.relay = relay
        self.faults = faults
        self.counter = FaultCounter(faults)
        self.messages = messages
        self._folder = NumberedFolder(directory)
        self._host = host
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._sessions: set[SMTP] = set()
        self.port = 0

    def record(self, raw: bytes, first_rcpt: str) -> str:
        """Write ``raw`` to the next numbered .eml file, keep it parsed; return the stem."""
        stem = self._folder.next_stem(first_rcpt)
        self._folder.write_bytes(f"{stem}.eml", raw)
        self.messages.append(_PARSER.parsebytes(raw))
        log.info("sandbox smtp: recorded an email", file=f"{stem}.eml")
        return stem

    def _make_session(self) -> SMTP:
        loop = asyncio.get_running_loop()
        options: dict[str, Any] = {
            "enable_SMTPUTF8": True,
            # A fixed name: the default calls socket.getfqdn(), which can block on DNS.
            "hostname": "sandbox.localhost",
            "ident": "appeal-dispatcher sandbox SMTP",
            "loop": loop,
        }
        relay = self.relay
        if relay is None:
            # Without auth_require_tls=False, AUTH is only offered after STARTTLS, which
            # the default sandbox lacks.
            return _Session(
                self._sessions,
                _Handler(self),
                authenticator=_accept_any_login,
                auth_require_tls=False,
                **options,
            )
        starttls = relay.tls == "starttls"
        with warnings.catch_warnings():
            # aiosmtpd cannot tell that implicit TLS is encrypted from the start, and warns
            # that AUTH without STARTTLS is unsafe.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return _Session(
                self._sessions,
                _RelayHandler(self, relay),
                authenticator=relay.check_password,
                auth_required=relay.auth_required,
                auth_exclude_mechanism=relay.exclude,
                # AUTH only once encrypted (with implicit TLS: at once).
                auth_require_tls=starttls,
                tls_context=relay.certificate if starttls else None,
                require_starttls=starttls,
                **options,
            )

    async def start(self) -> None:
        """Bind and start accepting; raises ``OSError`` if the port is taken."""
        loop = asyncio.get_running_loop()
        # Bound here: a port another process takes at the same moment is always an OSError.
        sock = listening_socket(self._host, self._requested_port)
        implicit = self.relay is not None and self.relay.tls == "implicit"
        certificate = self.relay.certificate if self.relay is not None and implicit else None
        self._server = await loop.create_server(self._make_session, sock=sock, ssl=certificate)
        self.port = int(sock.getsockname()[1])

    def drop_connections(self) -> int:
        """Close every open session from the server's side (as a relay's idle timeout
        would); returns how many were closed. The server keeps accepting."""
        sessions = list(self._sessions)
        for session in sessions:
            if session.transport is not None:
                session.transport.close()
        return len(sessions)

    async def stop(self) -> None:
        """Stop accepting, drop open sessions and wait until their tasks have ended."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        sessions, self._sessions = self._sessions, set()
        for session in sessions:
            if session.transport is not None:
                session.transport.close()
        await server.wait_closed()
        # Closing the transport only *requests* cancellation of each session's task;
        # waiting here keeps the loop from being torn down with those tasks pending.
        # (aiosmtpd has no public handle on that task, hence the private attribute.)
        tasks = [s._handler_coroutine for s in sessions if s._handler_coroutine is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
