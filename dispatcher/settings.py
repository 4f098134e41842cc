"""Settings from ``DISPATCHER_*`` environment variables and an optional ``.env`` file.

Every channel that has no provider settings goes to the built-in sandbox on loopback:
nothing leaves this machine unless a provider's settings are given.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/dispatcher.db"
# A named operator (DISPATCHER_OPERATORS); the shared DISPATCHER_OPERATOR_TOKEN signs in as
# SHARED_OPERATOR, which no configured name can equal.
OPERATOR_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
SHARED_OPERATOR = "(shared token)"
# Who the audit log names for a wrong or refused token (no operator's name is known).
UNKNOWN_OPERATOR = "unknown"
# Names the audit log uses itself, or that read as no person: an operator called one of
# them could pass for a failed sign-in or the system. (`cli:` and the shared token's name
# cannot be chosen anyway: OPERATOR_NAME refuses ':' and parentheses.)
RESERVED_OPERATOR_NAMES = frozenset(
    {UNKNOWN_OPERATOR, "admin", "anonymous", "cli", "nobody", "root", "shared", "system"}
)
# Tokens shorter than this are refused: they could be guessed despite the throttle.
MIN_TOKEN_CHARS = 16


class ConfigurationError(ValueError):
    """What this installation was given cannot work (a setting, a campaign file, a URL).

    The message is one sentence naming the variable, file or value and what is accepted.
    """


class EmailSettings(BaseModel):
    """SMTP submission server. With no ``host``, the sandbox SMTP server is used."""

    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: SecretStr | None = None
    # A command (run without a shell) that prints a fresh OAuth 2 access token: XOAUTH2
    # (Google Workspace, Microsoft 365) instead of PASSWORD. Run again when one expires.
    oauth2_token_command: str | None = None
    start_tls: bool | None = None
    use_tls: bool = False
    # CA certificates (PEM) trusted for the relay besides the system's (SSL_CERT_FILE).
    ca_file: Path | None = None
    from_address: str = "appeals@dispatcher.invalid"
    from_name: str = "Appeal Dispatcher"
    timeout_seconds: float = 30.0
    # SMTP connections kept open to the relay (per worker process).
    pool_size: int = Field(default=8, ge=1)
    # Emails per minute to one recipient address, and through the relay, over all workers
    # (0: no limit). Campaigns may set their own ([pacing] in the campaign file).
    per_recipient_per_minute: int = Field(default=30, ge=0)
    per_minute: int = Field(default=0, ge=0)
    # The relay is a mail catcher (Mailpit in docker-compose): what it takes is a
    # rehearsal, recorded as "sandbox" and never counted as an action.
    rehearsal: bool = False

    @property
    def configured(self) -> bool:
        return self.host is not None


FaxProviderName = Literal["phaxio", "sinch", "telnyx"]


class FaxSettings(BaseModel):
    """The fax gateway: ``provider`` chooses its API (each provider's module in
    ``dispatcher/channels/`` names the settings it needs). With none of a provider's
    settings given, the sandbox gateway speaks that provider's API instead."""

    provider: FaxProviderName = "phaxio"
    # Phaxio: the gateway's URL (required). Sinch and Telnyx: their own unless given.
    base_url: str | None = None
    # Phaxio: key and secret (HTTP Basic). Telnyx: the API key (Bearer).
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    # Phaxio's signed callbacks: the URL registered with it and its callback token.
    callback_url: str | None = None
    callback_token: SecretStr | None = None
    # Sinch Fax API v3: the project, and an access key (HTTP Basic).
    project_id: str | None = None
    key_id: str | None = None
    key_secret: SecretStr | None = None
    # Sinch and Telnyx: the number faxes are sent from (E.164).
    from_number: str | None = None
    # Telnyx: the Programmable Fax application, and the public key its webhooks are
    # signed with (base64 Ed25519, from the portal).
    connection_id: str | None = None
    webhook_public_key: str | None = None
    poll_seconds: float = 60.0
    header_text: str = "Urgent appeal"
    timeout_seconds: float = 60.0
    # Faxes per minute through the gateway account, over all workers (0: no limit).
    per_minute: int = Field(default=0, ge=0)
    # From the gateway's acceptance to the last look-up of a fax's status: a fax still
    # unconfirmed then ends failed, with the reason (see outcomes.confirmation_update).
    confirm_timeout_seconds: float = Field(default=7200.0, gt=0)
    # The TrueType font faxes are drawn in (a .ttf file, or a .ttc's first face). Unset:
    # WenQuanYi Micro Hei (apt-get install fonts-wqy-microhei), else a face fontconfig
    # lists for Chinese; with no font at all, faxes are refused at intake.
    font: Path | None = None

    @field_validator("font")
    @classmethod
    def _font_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(
                f"the fax font {value} is not a file; give the path of a TrueType font file "
                "(.ttf or .ttc), or leave it unset to use fonts-wqy-microhei"
            )
        return value

    @property
    def configured(self) -> bool:
        """Some provider account is given (a missing part is named when the adapter is
        built); otherwise the sandbox gateway speaks ``provider``'s API."""
        account = (self.base_url, self.api_key, self.api_secret, self.project_id)
        return any(value is not None for value in (*account, self.key_id, self.connection_id))

    def sandboxed(self) -> FaxSettings:
        """These settings without any provider account: the same API, on the sandbox."""
        account = ("base_url", "api_key", "api_secret", "callback_url", "callback_token")
        more = ("project_id", "key_id", "key_secret", "connection_id", "webhook_public_key")
        return self.model_copy(update=dict.fromkeys((*account, *more)))


class TwitterSettings(BaseModel):
    """X API v2. Supporters' own accounts: an OAuth 2.0 app (``client_id``, and
    ``client_secret`` for a confidential client). The organisation's account: OAuth 1.0a
    keys. With neither, X rehearses on the sandbox (or, in live mode, every X post is
    handed to the supporter to send themselves)."""

    api_base_url: str | None = None
    # Where supporters are sent to authorise the app (X's consent page).
    authorize_url: str = "https://x.com/i/oauth2/authorize"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None
    timeout_seconds: float = 30.0
    # Posts per minute from the organisation's account, over all workers (0: no limit).
    # X's automation rules: see the README; campaigns posting from it should stay low.
    per_minute: int = Field(default=0, ge=0)
    # How long an appeal's post waits for its supporter to connect their X account before
    # it is handed to them to send themselves.
    connect_wait_minutes: float = Field(default=60.0, gt=0)

    @property
    def configured(self) -> bool:
        return any(
            value is not None for value in (self.consumer_key, self.api_base_url, self.client_id)
        )


class RetrySettings(BaseModel):
    """Two retry layers: fast tries inside one attempt, durable backoff between attempts."""

    base_seconds: float = Field(default=120.0, ge=0)
    max_seconds: float = Field(default=6 * 3600.0, ge=0)
    max_attempts: int = Field(default=8, ge=1)
    # Inside one attempt (tenacity): bounded in tries and in total time.
    fast_tries: int = Field(default=3, ge=1)
    fast_wait_seconds: float = Field(default=1.0, ge=0)
    fast_max_seconds: float = Field(default=30.0, gt=0)


class WorkerSettings(BaseModel):
    batch_size: int = Field(default=50, ge=1)
    lease_seconds: float = Field(default=30.0, gt=0)
    idle_seconds: float = Field(default=1.0, gt=0)
    # Deliveries a worker holds per channel. Email holds more than its SMTP connections so
    # that a connection never waits for the next claim (at a crash, these are in flight).
    email_concurrency: int = Field(default=24, ge=1)
    fax_concurrency: int = Field(default=4, ge=1)
    twitter_concurrency: int = Field(default=2, ge=1)
    # How long the recorder lets outcomes gather before writing them in one transaction
    # (a crash loses at most the sends in flight; these few milliseconds are in flight).
    record_gather_seconds: float = Field(default=0.005, ge=0, le=1)
    # `serve`'s worker: failed starts in a row before its supervisor gives up (0: never).
    restart_limit: int = Field(default=10, ge=0)
    # `dispatcher worker` serves /metrics (Prometheus) and /healthz on this port; unset,
    # it serves nothing (the default). Several workers on one host need a port each.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # The address /metrics and /healthz listen on: this host only by default; 0.0.0.0 in a
    # container, for its health check and Prometheus. Never a public address.
    metrics_host: str = "127.0.0.1"


class IntakeSettings(BaseModel):
    """Limits on the public intake endpoint. A rate of 0 disables that limit."""

    # A letter at the longest limit campaigns allow (10,000 characters), form-encoded in
    # a script of 4-byte characters, is 120 KB: room for it and the rest of the form.
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    per_ip_per_minute: int = Field(default=30, ge=0)
    per_email_per_hour: int = Field(default=10, ge=0)


# The channels' names as settings spell them (models.Channel's values; settings sit below
# models in the layers).
SANDBOX_CHANNEL_NAMES = ("email", "fax", "twitter")


class SandboxSettings(BaseModel):
    """Where the built-in sandbox listens and records what it receives."""

    host: str = "127.0.0.1"
    smtp_port: int = 8025
    fax_port: int = 8026
    x_port: int = 8027
    directory: Path = Path("var/sandbox")
    fax_transmit_seconds: float = 0.5
    # False: never start the sandbox in-process; send to the one at ``host`` (a separate
    # `dispatcher sandbox`, e.g. its own container in docker-compose).
    embedded: bool = True
    # Channels sent to the sandbox while others are live ("fax" or "email,fax"): labelled
    # rehearsal everywhere and never counted. With no provider configured at all, every
    # channel goes to the sandbox anyway.
    channels: str = ""

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in SANDBOX_CHANNEL_NAMES]
        if unknown:
            raise ValueError(
                f"{unknown[0]!r} is not a channel; DISPATCHER_SANDBOX__CHANNELS takes "
                f"{', '.join(SANDBOX_CHANNEL_NAMES)}, separated by commas"
            )
        return ",".join(names)

    @property
    def channel_names(self) -> frozenset[str]:
        return frozenset(name for name in self.channels.split(",") if name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DISPATCHER_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = DEFAULT_DATABASE_URL
    campaigns_dir: Path = Path("config/campaigns")
    email: EmailSettings = EmailSettings()
    fax: FaxSettings = FaxSettings()
    twitter: TwitterSettings = TwitterSettings()
    retry: RetrySettings = RetrySettings()
    worker: WorkerSettings = WorkerSettings()
    sandbox: SandboxSettings = SandboxSettings()
    intake: IntakeSettings = IntakeSettings()
    # Bearer token for the operator API and dashboard; unset = operator endpoints disabled.
    operator_token: SecretStr | None = None
    # Named operators, a token each: DISPATCHER_OPERATORS='{"ana": "…", "li": "…"}'. The
    # audit log says which of them did what; the shared token above is one unnamed one.
    operators: dict[str, SecretStr] = {}
    # How long a dashboard sign-in lasts (a session, ended early by signing out).
    operator_session_hours: float = Field(default=12.0, gt=0)
    # A wrong token waits this long before its answer, twice as long each time (8 s at most).
    operator_sign_in_delay_seconds: float = Field(default=0.25, ge=0)
    # Proxies in front of `serve` whose X-Forwarded-For / -Proto are believed (addresses,
    # as uvicorn's forwarded_allow_ips takes them). Empty: none, the peer is the client.
    trusted_proxies: list[str] = []
    # Signs form (CSRF) tokens: the same value in every `serve` process, so a form rendered
    # by one is accepted by another and after a restart. Unset: a random key per process.
    secret_key: SecretStr | None = None
    # Where supporters reach the pages (the links in their receipts start with it).
    public_url: str = "http://127.0.0.1:8000"
    # console: readable lines (the default); json: one JSON object per line (production).
    log_format: Literal["console", "json"] = "console"
    # debug, info, warning, error; unset: info for `serve` and `worker`, warning otherwise.
    log_level: Literal["debug", "info", "warning", "error"] | None = None

    @field_validator("operators")
    @classmethod
    def _operator_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        tokens = [token.get_secret_value() for token in value.values()]
        for name, token in value.items():
            if not OPERATOR_NAME.fullmatch(name):
                raise ValueError(
                    f"operator name {name!r} is not accepted: use 1-40 lower-case letters, "
                    "digits, '.', '_' or '-', starting with a letter or digit"
                )
            if name in RESERVED_OPERATOR_NAMES:
                raise ValueError(
                    f"operator name {name!r} is reserved (the audit log could not tell that "
                    f"operator from the system); choose a name other than "
                    f"{', '.join(sorted(RESERVED_OPERATOR_NAMES))}"
                )
            if len(token.get_secret_value()) < MIN_TOKEN_CHARS:
                raise ValueError(
                    f"operator {name!r} has a token shorter than {MIN_TOKEN_CHARS} characters"
                )
            if tokens.count(token.get_secret_value()) > 1:
                raise ValueError(f"operator {name!r} shares its token with another operator")
        return value

    @field_validator("operator_token")
    @classmethod
    def _shared_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and 0 < len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"the shared operator token (DISPATCHER_OPERATOR_TOKEN) is shorter than "
                f"{MIN_TOKEN_CHARS} characters; use a long random string"
            )
        return value

    def secret_values(self) -> list[str]:
        """Every secret these settings hold (tokens, keys, passwords, the database
        password): what logs must never show."""
        found: list[str] = []

        def walk(model: BaseModel) -> None:
            for name in type(model).model_fields:
                value = getattr(model, name)
                values = value.values() if isinstance(value, dict) else [value]
                found.extend(
                    v.get_secret_value()
                    for v in values
                    if isinstance(v, SecretStr) and v.get_secret_value()
                )
                if isinstance(value, BaseModel):
                    walk(value)

        walk(self)
        password = urlsplit(self.database_url).password
        if password:
            found.extend({password, unquote(password)})
        return found
