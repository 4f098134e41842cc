"""Signing in to a production SMTP relay: TLS with a verified certificate, then AUTH
(PLAIN/LOGIN with a password, or XOAUTH2 with an access token from an operator's command).

What an operator must fix is raised as a ``PermanentError`` whose message names the
setting to change; the supporter's page says it in plain words (``service.status``).
"""

from __future__ import annotations

import asyncio
import base64
import shlex
import ssl
import subprocess  # the token command, run without a shell
from pathlib import Path

import aiosmtplib

from dispatcher.channels.base import DeliveryError, PermanentError, TransientError
from dispatcher.logs import redact_also
from dispatcher.settings import ConfigurationError

# The names of the settings an operator is told to fix (names, not secrets).
CA_SETTINGS = "DISPATCHER_EMAIL__CA_FILE (or SSL_CERT_FILE)"
# Settings' names, not passwords (S105 reads any name with "PASSWORD" or "TOKEN" as one).
PASSWORD_SETTINGS = "DISPATCHER_EMAIL__USERNAME and DISPATCHER_EMAIL__PASSWORD"  # noqa: S105
TOKEN_SETTING = "DISPATCHER_EMAIL__OAUTH2_TOKEN_COMMAND"  # noqa: S105
TLS_SETTINGS = "DISPATCHER_EMAIL__USE_TLS (465) or DISPATCHER_EMAIL__START_TLS (587)"


def client_tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificates verified against the system's CAs (``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` are honoured), plus those in ``ca_file``; host names checked.
    Raises ConfigurationError when ``ca_file`` cannot be read as PEM certificates."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"DISPATCHER_EMAIL__CA_FILE ({ca_file}) cannot be read as PEM certificates: {exc}"
            ) from exc
    return context


class AccessTokens:
    """XOAUTH2 access tokens: what ``command`` prints, kept until the relay refuses one.

    The command runs without a shell and within ``timeout`` seconds; its output is a
    secret (blanked from every log line) and its error output is never shown.
    """

    def __init__(self, command: str, *, timeout: float) -> None:
        self._argv = shlex.split(command)
        if not self._argv:
            raise ConfigurationError(f"{TOKEN_SETTING} is empty; give a command to run")
        self._timeout = timeout
        self._token: str | None = None
        self._lock = asyncio.Lock()
        self.runs = 0  # how often the command ran (for tests and metrics)

    async def current(self) -> str:
        async with self._lock:
            if self._token is None:
                self._token = await self._run()
            return self._token

    async def renew(self, refused: str) -> str:
        """A token other than ``refused``: the command runs again unless another
        connection has renewed it meanwhile."""
        async with self._lock:
            if self._token in (None, refused):
                self._token = await self._run()
            return self._token

    async def _run(self) -> str:
        self.runs += 1
        try:
            process = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # may hold secrets of its own
            )
        except OSError as exc:
            raise PermanentError(f"{TOKEN_SETTING} cannot be run: {exc.strerror}") from exc
        try:
            output, _ = await asyncio.wait_for(process.communicate(), self._timeout)
        except TimeoutError as exc:
            raise TransientError(
                f"{TOKEN_SETTING} printed no token within {self._timeout:g} s"
            ) from exc
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            raise TransientError(
                f"{TOKEN_SETTING} exited with status {process.returncode} (its output is "
                "not logged: run it by hand to see why)"
            )
        token = output.decode("utf-8", "replace").strip()
        if not token or any(c.isspace() for c in token):
            raise PermanentError(f"{TOKEN_SETTING} must print one access token and nothing else")
        redact_also(token)
        return token


class RelayLogin:
    """AUTH on a new connection, when a username is set.

    Credentials go only over an encrypted connection, unless STARTTLS was switched off
    explicitly (``plain_allowed``: a relay on loopback, say).
    """

    def __init__(
        self,
        *,
        username: str | None,
        password: str | None,
        tokens: AccessTokens | None,
        plain_allowed: bool,
    ) -> None:
        self.username = username
        self._password = password
        self._tokens = tokens
        self._plain_allowed = plain_allowed

    async def sign_in(self, smtp: aiosmtplib.SMTP) -> None:
        """Raises PermanentError naming the setting to fix when the relay refuses us."""
        if self.username is None:
            return
        if not self._plain_allowed and smtp.get_transport_info("sslcontext") is None:
            raise PermanentError(
                "the relay offered no STARTTLS, so our credentials were not sent: set "
                f"{TLS_SETTINGS}, or DISPATCHER_EMAIL__START_TLS=false to send them unencrypted"
            )
        try:
            if self._tokens is not None:
                await self._xoauth2(smtp, self.username, self._tokens)
            else:
                await smtp.login(self.username, self._password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise self._refused(exc) from exc
        except aiosmtplib.SMTPResponseException:
            raise
        except aiosmtplib.SMTPException as exc:
            if not smtp.is_connected:
                raise
            # "The SMTP AUTH extension is not supported by this server", or no mechanism
            # in common: this relay cannot take these credentials.
            raise PermanentError(
                f"the relay accepts none of our AUTH mechanisms ({exc}): check "
                f"{TLS_SETTINGS}, or unset DISPATCHER_EMAIL__USERNAME"
            ) from exc

    async def _xoauth2(self, smtp: aiosmtplib.SMTP, username: str, tokens: AccessTokens) -> None:
        if smtp.last_ehlo_response is None:  # none yet, or forgotten after STARTTLS
            await smtp.ehlo()
        if "xoauth2" not in smtp.server_auth_methods:
            raise PermanentError(
                f"the relay does not offer XOAUTH2: unset {TOKEN_SETTING} and set "
                "DISPATCHER_EMAIL__PASSWORD"
            )
        token = await tokens.current()
        try:
            await _auth_xoauth2(smtp, username, token)
        except aiosmtplib.SMTPAuthenticationError as exc:
            if not 500 <= exc.code < 600 or not smtp.is_connected:
                raise
            # Most likely expired: a new token, once.
            fresh = await tokens.renew(token)
            if fresh == token:
                raise
            await _auth_xoauth2(smtp, username, fresh)

    def _refused(self, exc: aiosmtplib.SMTPAuthenticationError) -> DeliveryError:
        answer = f"{exc.code} {exc.message}"
        if 400 <= exc.code < 500:
            return TransientError(f"the relay could not check our credentials now: {answer}")
        if self._tokens is not None:
            return PermanentError(
                f"the relay refused our access token ({answer}), also one just made by "
                f"{TOKEN_SETTING}: check that command and DISPATCHER_EMAIL__USERNAME",
                code=str(exc.code),
            )
        return PermanentError(
            f"the relay refused our credentials ({answer}): check {PASSWORD_SETTINGS}",
            code=str(exc.code),
        )


async def _auth_xoauth2(smtp: aiosmtplib.SMTP, username: str, token: str) -> None:
    # The SASL string carries the token in base64: a secret in that form too.
    redact_also(
        base64.b64encode(f"user={username}\x01auth=Bearer {token}\x01\x01".encode()).decode()
    )
    await smtp.auth_xoauth2(username, token)


def connection_failure(exc: BaseException) -> DeliveryError | None:
    """A failure to set up a connection that an operator must fix, or None (then it is
    classified as any other SMTP error)."""
    cause: BaseException | None = exc
    for _ in range(10):  # a chain of causes is short; never follow a loop
        if cause is None:
            break
        if isinstance(cause, ssl.SSLCertVerificationError):
            return PermanentError(
                f"the relay's certificate is not trusted ({cause.verify_message}): give its "
                f"CA in {CA_SETTINGS}, and check that DISPATCHER_EMAIL__HOST is the name "
                "on the certificate"
            )
        if isinstance(cause, ssl.SSLError):
            return PermanentError(
                f"no TLS connection to the relay ({cause.reason or cause}): check "
                f"{TLS_SETTINGS} and DISPATCHER_EMAIL__PORT"
            )
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, aiosmtplib.SMTPException) and "STARTTLS extension not supported" in str(exc):
        return PermanentError(
            "the relay does not offer STARTTLS: set DISPATCHER_EMAIL__USE_TLS=true for a "
            "relay that expects TLS at once (465), or check DISPATCHER_EMAIL__PORT"
        )
    return None
