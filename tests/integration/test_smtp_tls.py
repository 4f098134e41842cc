"""Email as production relays need it, against the sandbox SMTP server standing in for one:
STARTTLS and implicit TLS with certificates made for the test (trustme), AUTH PLAIN and
LOGIN with a password, XOAUTH2 with a token from a command. What the operator must fix
ends the delivery ``failed`` with the setting named; the supporter reads plain words."""

from __future__ import annotations

import base64
import shlex
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme

from dispatcher.channels.base import DeliveryError, PermanentError, SendResult, TransientError
from dispatcher.channels.email import EmailAdapter
from dispatcher.i18n import speaking
from dispatcher.models import Channel, ErrorInfo
from dispatcher.sandbox import Faults
from dispatcher.sandbox.smtp import Relay, SmtpSink
from dispatcher.service.status import what_went_wrong
from dispatcher.settings import ConfigurationError
from tests.conftest import claimed_delivery

USER = "appeals@dispatch.example.org"
PASSWORD = "relay-pass-5e1f9a"
FIRST_TOKEN = "ya29.first-token-7c2d"
SECOND_TOKEN = "ya29.second-token-91ab"
# Prints the next line of its token file on each run (the last one once all are used),
# and counts its runs in a file beside it.
TOKEN_SCRIPT = """
import pathlib, sys
folder = pathlib.Path(sys.argv[1])
runs = folder / "runs"
n = int(runs.read_text()) if runs.exists() else 0
runs.write_text(str(n + 1))
tokens = (folder / "tokens").read_text().split()
print(tokens[min(n, len(tokens) - 1)])
"""


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "relay-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


class RelayBox:
    """A started sandbox relay: what it received and every AUTH tried."""

    def __init__(self, sink: SmtpSink, relay: Relay, messages: list[EmailMessage]) -> None:
        self.sink, self.relay, self.messages = sink, relay, messages

    @property
    def port(self) -> int:
        return self.sink.port


@pytest.fixture
async def start_relay(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[RelayBox]]]:
    sinks: list[SmtpSink] = []

    async def start(**relay_options: Any) -> RelayBox:
        relay = Relay(**relay_options)
        messages: list[EmailMessage] = []
        sink = SmtpSink(
            tmp_path / f"box{len(sinks)}", faults=Faults(), messages=messages, relay=relay
        )
        await sink.start()
        sinks.append(sink)
        return RelayBox(sink, relay, messages)

    yield start
    for sink in sinks:
        await sink.stop()


def token_command(tmp_path: Path, *tokens: str) -> tuple[str, Path]:
    """A command printing ``tokens`` one run after another; the file counting its runs."""
    folder = tmp_path / "token command"  # a space: the command is split, never shelled
    folder.mkdir()
    (folder / "tokens").write_text("\n".join(tokens))
    script = folder / "print_token.py"
    script.write_text(TOKEN_SCRIPT)
    command = shlex.join([sys.executable, str(script), str(folder)])
    return command, folder / "runs"


def adapter(port: int, *, tls: str, **options: Any) -> EmailAdapter:
    return EmailAdapter(
        provider="smtp",
        host="127.0.0.1",
        port=port,
        from_address=USER,
        from_name="Appeal Dispatcher",
        use_tls=tls == "implicit",
        start_tls=None,  # the default: upgrade when offered
        timeout=10,
        **options,
    )


async def refusal(adapter: EmailAdapter) -> DeliveryError:
    try:
        with pytest.raises(DeliveryError) as info:
            await adapter.send(claimed_delivery())
    finally:
        await adapter.aclose()
    return info.value


def supporter_reads(error: DeliveryError) -> dict[str, str]:
    info = ErrorInfo(type(error).__name__, error.code, error.message)
    words = {}
    for language in ("en", "zh"):
        with speaking(language):
            words[language] = what_went_wrong(Channel.EMAIL, info)
    return words


TLS_MODES = ["starttls", "implicit"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("tls", TLS_MODES)
async def test_a_verified_relay_takes_the_password_and_the_email(
    start_relay: Callable[..., Awaitable[RelayBox]],
    ca: trustme.CA,
    ca_file: Path,
    tls: str,
    mechanism: str,
) -> None:
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    box = await start_relay(
        tls=tls, certificate=server_context(ca), passwords={USER: PASSWORD}, exclude=(other,)
    )
    sender = adapter(box.port, tls=tls, username=USER, password=PASSWORD, ca_file=ca_file)
    try:
        result: SendResult = await sender.send(claimed_delivery())
    finally:
        await sender.aclose()
    assert result.confirmed and result.summary.startswith("250")
    assert box.relay.logins == [(mechanism, USER, True)]
    assert [m["To"].addresses[0].addr_spec for m in box.messages] == ["english@mail.gov.cn"]


async def test_ssl_cert_file_is_trusted_as_well(
    start_relay: Callable[..., Awaitable[RelayBox]],
    ca: trustme.CA,
    ca_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    box = await start_relay(tls="starttls", certificate=server_context(ca))
    sender = adapter(box.port, tls="starttls")
    try:
        await sender.send(claimed_delivery())
    finally:
        await sender.aclose()
    assert len(box.messages) == 1


@pytest.mark.parametrize("tls", TLS_MODES)
async def test_an_untrusted_certificate_fails_naming_the_ca_setting_and_sends_nothing(
    start_relay: Callable[..., Awaitable[RelayBox]], tls: str
) -> None:
    stranger = trustme.CA()  # the relay's certificate is signed by a CA nobody trusts
    box = await start_relay(
        tls=tls, certificate=server_context(stranger), passwords={USER: PASSWORD}
    )
    error = await refusal(adapter(box.port, tls=tls, username=USER, password=PASSWORD))
    assert isinstance(error, PermanentError)
    assert "DISPATCHER_EMAIL__CA_FILE" in error.message and "SSL_CERT_FILE" in error.message
    assert "certificate" in error.message
    assert box.relay.logins == [] and box.messages == []  # the password never went out
    words = supporter_reads(error)
    assert words["en"] == "Our own email service is not working, so the email could not be sent."
    assert not any("DISPATCHER" in w or "certificate" in w for w in words.values())


async def test_a_certificate_for_another_host_is_not_trusted_either(
    start_relay: Callable[..., Awaitable[RelayBox]], ca: trustme.CA, ca_file: Path
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("relay.example.org").configure_cert(context)
    box = await start_relay(tls="implicit", certificate=context)
    error = await refusal(adapter(box.port, tls="implicit", ca_file=ca_file))
    assert isinstance(error, PermanentError)
    assert (
        "DISPATCHER_EMAIL__HOST" in error.message and "DISPATCHER_EMAIL__CA_FILE" in error.message
    )


@pytest.mark.parametrize("tls", TLS_MODES)
async def test_a_refused_password_fails_naming_the_settings(
    start_relay: Callable[..., Awaitable[RelayBox]], ca: trustme.CA, ca_file: Path, tls: str
) -> None:
    box = await start_relay(tls=tls, certificate=server_context(ca), passwords={USER: PASSWORD})
    wrong = "not-the-relay-password"
    error = await refusal(
        adapter(box.port, tls=tls, username=USER, password=wrong, ca_file=ca_file)
    )
    assert isinstance(error, PermanentError) and error.code == "535"
    assert "DISPATCHER_EMAIL__USERNAME" in error.message
    assert "DISPATCHER_EMAIL__PASSWORD" in error.message
    assert wrong not in error.message
    assert {accepted for _, _, accepted in box.relay.logins} == {False}
    assert box.messages == []
    words = supporter_reads(error)
    assert "official" not in words["en"]  # not the official's server: ours
    assert not any("DISPATCHER" in w for w in words.values())


async def test_a_relay_that_wants_auth_fails_naming_the_settings_when_none_is_given(
    start_relay: Callable[..., Awaitable[RelayBox]], ca: trustme.CA, ca_file: Path
) -> None:
    box = await start_relay(
        tls="starttls", certificate=server_context(ca), passwords={USER: PASSWORD}
    )
    error = await refusal(adapter(box.port, tls="starttls", ca_file=ca_file))
    assert isinstance(error, PermanentError) and error.code == "530"
    assert "DISPATCHER_EMAIL__USERNAME" in error.message
    assert box.messages == []


async def test_credentials_are_never_sent_unencrypted_unless_starttls_is_switched_off(
    start_relay: Callable[..., Awaitable[RelayBox]],
) -> None:
    box = await start_relay(passwords={USER: PASSWORD})  # plain SMTP, AUTH offered anyway
    error = await refusal(adapter(box.port, tls="starttls", username=USER, password=PASSWORD))
    assert isinstance(error, PermanentError)
    assert "DISPATCHER_EMAIL__START_TLS" in error.message
    assert box.relay.logins == []
    plain = EmailAdapter(
        host="127.0.0.1",
        port=box.port,
        from_address=USER,
        from_name="Appeal Dispatcher",
        username=USER,
        password=PASSWORD,
        start_tls=False,
        timeout=10,
    )
    try:
        await plain.send(claimed_delivery())
    finally:
        await plain.aclose()
    assert box.relay.logins == [("PLAIN", USER, True)] and len(box.messages) == 1


async def test_xoauth2_takes_a_token_from_the_command_and_a_new_one_once_it_expires(
    start_relay: Callable[..., Awaitable[RelayBox]], ca: trustme.CA, ca_file: Path, tmp_path: Path
) -> None:
    command, runs = token_command(tmp_path, FIRST_TOKEN, SECOND_TOKEN)
    box = await start_relay(
        tls="implicit", certificate=server_context(ca), tokens={USER: FIRST_TOKEN}
    )
    sender = adapter(
        box.port, tls="implicit", username=USER, oauth2_token_command=command, ca_file=ca_file
    )
    try:
        await sender.send(claimed_delivery(id=1))
        await sender.send(claimed_delivery(id=2))  # the kept connection: no new login
        assert runs.read_text() == "1"
        box.relay.tokens[USER] = SECOND_TOKEN  # the first token expires
        assert box.sink.drop_connections() == 1  # as a relay's idle timeout would
        await sender.send(claimed_delivery(id=3))
    finally:
        await sender.aclose()
    assert runs.read_text() == "2"  # run again once, for the refused token only
    assert box.relay.logins == [
        ("XOAUTH2", USER, True),
        ("XOAUTH2", USER, False),
        ("XOAUTH2", USER, True),
    ]
    assert len(box.messages) == 3


async def test_a_refused_token_fails_naming_the_token_command_after_one_more_run(
    start_relay: Callable[..., Awaitable[RelayBox]], ca: trustme.CA, ca_file: Path, tmp_path: Path
) -> None:
    command, runs = token_command(tmp_path, FIRST_TOKEN, SECOND_TOKEN)
    box = await start_relay(
        tls="starttls", certificate=server_context(ca), tokens={USER: "ya29.someone-elses"}
    )
    error = await refusal(
        adapter(
            box.port, tls="starttls", username=USER, oauth2_token_command=command, ca_file=ca_file
        )
    )
    assert isinstance(error, PermanentError) and error.code == "535"
    assert "DISPATCHER_EMAIL__OAUTH2_TOKEN_COMMAND" in error.message
    assert FIRST_TOKEN not in error.message and SECOND_TOKEN not in error.message
    assert runs.read_text() == "2"
    assert [accepted for _, _, accepted in box.relay.logins] == [False, False]
    assert not any("DISPATCHER" in w for w in supporter_reads(error).values())


async def test_a_receipt_goes_over_the_same_verified_and_signed_in_relay(
    start_relay: Callable[..., Awaitable[RelayBox]], ca: trustme.CA, ca_file: Path
) -> None:
    box = await start_relay(
        tls="starttls", certificate=server_context(ca), passwords={USER: PASSWORD}
    )
    sender = adapter(box.port, tls="starttls", username=USER, password=PASSWORD, ca_file=ca_file)
    receipt = EmailMessage()
    receipt["From"], receipt["To"], receipt["Subject"] = USER, "ana@example.org", "Your appeal"
    receipt.set_content("Delivered.")
    try:
        reply = await sender.send_message("ana@example.org", receipt)
    finally:
        await sender.aclose()
    assert reply.startswith("250")
    assert [str(m["Subject"]) for m in box.messages] == ["Your appeal"]


LOG_SCRIPT = """
import asyncio, logging, sys
from pathlib import Path
from dispatcher.channels.email import EmailAdapter
from dispatcher.logs import configure_logging
from dispatcher.sandbox import Faults
from dispatcher.sandbox.smtp import Relay, SmtpSink
from tests.conftest import claimed_delivery

configure_logging(sys.argv[1], "debug")
command, token, user = sys.argv[2], sys.argv[3], sys.argv[4]

async def main():
    relay = Relay(tokens={user: token})
    sink = SmtpSink(Path(sys.argv[5]), faults=Faults(), messages=[], relay=relay)
    await sink.start()
    sender = EmailAdapter(host="127.0.0.1", port=sink.port, from_address=user, from_name="A",
                          username=user, oauth2_token_command=command, start_tls=False)
    await sender.send(claimed_delivery())
    await sender.aclose()
    await sink.stop()
    logging.getLogger("somewhere").warning("careless: %s", token)
    try:
        raise RuntimeError(f"carrying {token}")
    except RuntimeError:
        logging.getLogger("somewhere").exception("failed")

asyncio.run(main())
"""


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_the_access_token_is_blanked_from_every_log_line(tmp_path: Path, fmt: str) -> None:
    command, runs = token_command(tmp_path, FIRST_TOKEN)
    done = subprocess.run(
        [sys.executable, "-c", LOG_SCRIPT, fmt, command, FIRST_TOKEN, USER, str(tmp_path / "b")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert runs.read_text() == "1"
    sasl = base64.b64encode(f"user={USER}\x01auth=Bearer {FIRST_TOKEN}\x01\x01".encode())
    assert "careless: [redacted]" in done.stderr and "carrying [redacted]" in done.stderr
    assert FIRST_TOKEN not in done.stderr and sasl.decode() not in done.stderr


NAMES = {
    "chinese": ("王小明", "请释放在新疆被任意拘押的人"),
    "arabic": ("أحمد منصور", "أطلقوا سراح المعتقلين"),
    "hebrew": ("דניאל כהן", "שחררו את העצורים"),
    "emoji": ("Ana 🌍✊🏽 Lima 👩‍👩‍👧", "Free them 🕊️ now"),
}


@pytest.mark.parametrize(("name", "subject"), list(NAMES.values()), ids=list(NAMES))
async def test_names_and_subjects_arrive_identical_over_tls(
    start_relay: Callable[..., Awaitable[RelayBox]],
    ca: trustme.CA,
    ca_file: Path,
    name: str,
    subject: str,
) -> None:
    box = await start_relay(tls="starttls", certificate=server_context(ca))
    sender = adapter(box.port, tls="starttls", ca_file=ca_file)
    claimed = claimed_delivery(supporter_name=name, target_name=name, subject=subject)
    try:
        await sender.send(claimed)
    finally:
        await sender.aclose()
    (message,) = box.messages
    assert message["From"].addresses[0].display_name == f"{name} via Appeal Dispatcher"
    assert message["To"].addresses[0].display_name == name
    assert message["Subject"] == subject


def test_a_ca_file_that_cannot_be_read_is_refused_at_start_naming_the_setting(
    tmp_path: Path,
) -> None:
    not_pem = tmp_path / "relay-ca.pem"
    not_pem.write_text("not a certificate")
    for path in (not_pem, tmp_path / "missing.pem"):
        with pytest.raises(ConfigurationError, match="DISPATCHER_EMAIL__CA_FILE"):
            adapter(1, tls="starttls", ca_file=path)


async def test_a_token_command_that_fails_is_retried_and_one_that_cannot_run_is_permanent(
    start_relay: Callable[..., Awaitable[RelayBox]], ca: trustme.CA, ca_file: Path, tmp_path: Path
) -> None:
    box = await start_relay(
        tls="implicit", certificate=server_context(ca), tokens={USER: FIRST_TOKEN}
    )
    failing = shlex.join([sys.executable, "-c", "import sys; sys.exit(3)"])
    missing = str(tmp_path / "no such command")
    errors = [
        await refusal(
            adapter(
                box.port, tls="implicit", username=USER, oauth2_token_command=cmd, ca_file=ca_file
            )
        )
        for cmd in (failing, shlex.quote(missing))
    ]
    assert isinstance(errors[0], TransientError) and not isinstance(errors[0], PermanentError)
    assert "DISPATCHER_EMAIL__OAUTH2_TOKEN_COMMAND exited with status 3" in errors[0].message
    assert isinstance(errors[1], PermanentError)
    assert "DISPATCHER_EMAIL__OAUTH2_TOKEN_COMMAND cannot be run" in errors[1].message
    assert box.relay.logins == []
