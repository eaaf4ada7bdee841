"""Settings: defaults from ``config/defaults.py``, overridden by ``ALERTD_*`` environment
variables, overridden by an explicit mapping (tests)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alertd.localtime import load_zone
from config import defaults

PREFIX = "ALERTD_"
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    INSTANCE_PATH: str
    DATABASE_URL: str
    BROKER_URL: str
    SECRET_KEY: str
    PUBLIC_URL: str
    PROXY_HOPS: int
    HOST: str
    PORT: int
    DEFAULT_ALERT_MINUTES: int
    EXTEND_MINUTES: int
    EXPIRY_WARNING_MINUTES: int
    MAX_ALERT_HOURS: int
    MAX_PHOTO_BYTES: int
    CHANNELS: str
    CRITERIA_DIR: str
    DEFAULT_JURISDICTION: str
    CAP_SENDER: str
    CAP_SENDER_NAME: str
    CAP_IDENTIFIER_PREFIX: str
    TIMEZONE: str  # IANA name; CAP offsets, console and public page times are in this zone
    CAP_IPAWS: bool  # US IPAWS profile on CAP messages
    CAP_SOURCE: str  # <source> of CAP messages; empty writes none
    CAP_DEREF_MAX_BYTES: int  # photos up to this size are also inlined as <derefUri>
    CAP_SIGNING_KEY: str  # PEM key path; with CAP_SIGNING_CERT, CAP messages are signed
    CAP_SIGNING_CERT: str  # PEM certificate path, carried in each signature's KeyInfo
    FEED_DIR: str  # where feeds and CAP documents are also written as static files
    FEED_RETENTION_HOURS: float  # how long an ended alert's last message stays in the feeds
    AUDIT_SIGNING_KEY: str  # Ed25519 PEM key path that signs audit checkpoints
    AUDIT_CHECKPOINT_DIR: str  # where signed audit checkpoints are written
    AUDIT_CHECKPOINT_SECONDS: float  # the sweeper's interval between checkpoints
    LOGIN_MAX_FAILURES: int
    LOGIN_WINDOW_SECONDS: int
    SWEEP_SECONDS: float
    STALL_SECONDS: float  # untaken work older than this: dispatch is stalled
    PROGRESS_CACHE_SECONDS: float  # delivery counts shown are at most this old
    OUTBOX_REPUBLISH_SECONDS: float
    DELIVERY_LEASE_SECONDS: int
    DELIVERY_BATCH_SIZE: int
    SEND_BATCH: int  # non-idempotent requests marked, sent and recorded together
    DELIVERY_MAX_ATTEMPTS: int
    VISIBILITY_TIMEOUT_SECONDS: int
    PUBLISH_TIMEOUT_SECONDS: float
    METRICS_TOKEN: str  # bearer token for /metrics; empty means loopback clients only
    LOG_FORMAT: str  # json (default) or text
    WEBHOOK_ALLOW: str  # networks webhooks may reach although not public, e.g. 127.0.0.1/32
    WEBHOOK_HTTPS_ONLY: bool
    WEBHOOK_CONNECT_SECONDS: float
    WEBHOOK_READ_SECONDS: float
    WEBHOOK_MAX_RESPONSE_BYTES: int
    WEBHOOK_CONCURRENCY: int
    WEBHOOK_BREAKER_FAILURES: int
    SMS_BACKEND: str  # console (keeps texts in a table, sends nothing) or twilio
    SMS_RATE: float  # texts per second across every worker; 0 means no limit
    SMS_CONCURRENCY: int  # gateway requests in flight at once in one delivery task
    SMS_DEFAULT_REGION: str  # ISO 3166 region numbers without +country are read in (SMS, tip lines)
    SMS_JOIN_AREAS: str  # what JOIN <word> subscribes to: "LA=SAME=006037 SF=SAME=006075"
    TWILIO_API_BASE: str  # another base URL for Twilio's API (a simulator); empty: Twilio's

    def __post_init__(self) -> None:
        load_zone(self.TIMEZONE)  # A misspelt zone fails at start, not in the first alert.

    @property
    def zone(self) -> ZoneInfo:
        return load_zone(self.TIMEZONE)

    @property
    def instance_path(self) -> Path:
        path = Path(self.INSTANCE_PATH)
        return path if path.is_absolute() else REPO_ROOT / path

    @property
    def database_url(self) -> str:
        return self.DATABASE_URL or f"sqlite:///{self.instance_path / 'alertd.sqlite3'}"

    @property
    def broker_url(self) -> str:
        return self.BROKER_URL or f"sqla+sqlite:///{self.instance_path / 'broker.sqlite3'}"

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("sqla+sqlite://")

    @property
    def audit_checkpoint_dir(self) -> Path:
        if self.AUDIT_CHECKPOINT_DIR:
            return Path(self.AUDIT_CHECKPOINT_DIR)
        return self.instance_path / "audit-checkpoints"

    @property
    def photo_path(self) -> Path:
        return self.instance_path / "photos"

    @property
    def criteria_dir(self) -> Path:
        return Path(self.CRITERIA_DIR) if self.CRITERIA_DIR else REPO_ROOT / "config" / "criteria"

    @property
    def secure_cookies(self) -> bool:
        # Browsers drop Secure cookies on plain http (other than localhost); follow the public URL.
        return self.PUBLIC_URL.startswith("https://")

    def with_overrides(self, **values: Any) -> Settings:
        return replace(self, **values)


def _coerce(name: str, raw: str, kind: Any) -> Any:
    if kind in ("bool", bool):
        # "false" is a non-empty string, so bool(raw) would switch a flag on.
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{PREFIX}{name} must be true or false, got {raw!r}")
    try:
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{PREFIX}{name} must be a number, got {raw!r}") from exc
    return raw


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in fields(Settings):
        value: Any = getattr(defaults, field.name)
        if PREFIX + field.name in env:
            value = _coerce(field.name, env[PREFIX + field.name], field.type)
        values[field.name] = value
    values.update(overrides or {})
    if PREFIX + "PUBLIC_URL" not in env and "PUBLIC_URL" not in (overrides or {}):
        # Unset, the public URL is where this machine listens, so links work on a changed port.
        values["PUBLIC_URL"] = local_url(values["HOST"], values["PORT"])
    return Settings(**values)


def local_url(host: str, port: int) -> str:
    # A wildcard bind is not an address anyone can open; this machine's loopback is.
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - compared, not bound
    return f"http://{shown}:{port}"


def ensure_secret_key(settings: Settings) -> str:
    """Return the configured secret key, or one generated once and kept in the instance folder."""
    if settings.SECRET_KEY:
        return settings.SECRET_KEY
    key_file = settings.instance_path / "secret_key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Created 0600 at once (never readable in between), and by one process only.
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
    return key_file.read_text().strip()
