"""The channel plug-in interface.

A channel is a class with a ``name`` and a ``deliver`` method; everything else is optional and
has a default that does nothing. The dispatch machinery (``alertd.channels.dispatch``) does the
claiming, re-checking, recording and retrying; a channel only says who gets a version and how
one sub-batch is sent. A minimal channel::

    class PagerChannel(Channel):
        name = "pager"
        rate = 50.0  # messages per second, shared by every worker

        def plan(self, ctx, version):
            return ["duty-officer"]

        def deliver(self, ctx, version, deliveries):
            return [Outcome(d.id, OUT_SENT) for d in deliveries]

It is registered with ``ALERTD_CHANNELS=cap,log,mypackage.pager:PagerChannel``. Its own settings
are read from ``ALERTD_PAGER_*`` by declaring ``settings_class`` (a dataclass whose fields have
defaults). While it is enabled, and only then, the web app serves its ``routes()`` (console
pages, API, inbound callbacks), the console's navigation shows its ``console_links()``, the alert
page links its ``console_page()``, and the OpenAPI document lists its ``openapi()`` paths.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from flask import Blueprint
from sqlalchemy import Select
from sqlalchemy.orm import Session

from alertd.actor import Actor
from alertd.alerts.models import Version
from alertd.channels.models import Delivery

if TYPE_CHECKING:
    from alertd.context import Context

# Outcome states a channel may report for one delivery.
OUT_SENT = "sent"
# A transient failure: retried on the schedule, using up an attempt.
OUT_RETRY = "retry"
OUT_FAILED = "failed"
# The request may or may not have reached the provider: never resent blindly; reconciled.
OUT_UNKNOWN = "unknown"
OUT_SKIPPED = "skipped"
# The provider asked us to slow down (HTTP 429): rescheduled after ``retry_after`` without
# using up an attempt, so a storm of 429s can delay a delivery but never fail it.
OUT_THROTTLED = "throttled"
OUTCOME_STATES = (OUT_SENT, OUT_RETRY, OUT_FAILED, OUT_UNKNOWN, OUT_SKIPPED, OUT_THROTTLED)


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    state: str
    error: str = ""
    # Seconds to wait before the next attempt (a Retry-After); None uses the default schedule.
    retry_after: float | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class PreviewText:
    """One text a channel will carry in one language, for the reviewer: what it is called
    ("WEA short text"), and its size against the channel's limit in the channel's own unit
    (WEA characters, SMS segments)."""

    language: str
    label: str
    text: str
    count: int
    unit: str = "characters"
    limit: int | None = None

    @property
    def over(self) -> bool:
        return self.limit is not None and self.count > self.limit


@dataclass(frozen=True)
class Routes:
    """A blueprint a channel adds to the web app. ``csrf_exempt`` for routes that machines
    call (status callbacks, inbound messages), which prove themselves by signature instead."""

    blueprint: Blueprint
    csrf_exempt: bool = False


@dataclass(frozen=True)
class NavLink:
    """An entry a channel adds to the console's navigation."""

    label: str
    url: str


@dataclass(frozen=True)
class PublicLink:
    """A document a channel publishes about an alert, linked from the alert's public page (an
    alternate link in its head and one in its footer). ``label`` is an English msgid marked
    with ``N_`` in the channel's code; the page translates it into its own language."""

    label: str
    url: str
    media_type: str


@dataclass(frozen=True)
class VersionNote:
    """What a channel says about one version in the alert page's Versions table."""

    text: str
    url: str | None = None


@dataclass(frozen=True)
class ApiPaths:
    """A channel's part of the API's OpenAPI document: its paths and the component schemas they
    refer to (``#/components/schemas/<name>``). Listed only while the channel is enabled, like
    the routes they describe."""

    paths: Mapping[str, Any]
    schemas: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class Channel:
    """Base class of every channel. Subclasses set ``name`` and implement ``deliver``."""

    name: ClassVar[str] = ""
    # True when sending a delivery twice is harmless (a feed write, a webhook with a stable id):
    # an expired lease is then retried. Otherwise its outcome is unknown and never resent blindly.
    idempotent: ClassVar[bool] = False
    # True when superseded versions must still be delivered (a feed keeps every document at its
    # permanent URL); false when only the current version is worth sending (a text message).
    sends_superseded: ClassVar[bool] = False
    # Messages per second across every worker on every machine; None: no limit.
    rate: ClassVar[float | None] = None
    # Requests one sub-batch may have in flight at once.
    concurrency: ClassVar[int] = 1
    # Deliveries per delivery task at most, for a channel whose requests may hang (a task must
    # end well inside Celery's soft time limit); None: ALERTD_DELIVERY_BATCH_SIZE.
    task_size: ClassVar[int | None] = None
    # A dataclass whose fields (with defaults) are read from ALERTD_<NAME>_<FIELD>.
    settings_class: ClassVar[type[Any] | None] = None
    # The loaded ``settings_class`` instance, set by ``configure``.
    config: Any = None

    # Set-up ------------------------------------------------------------------------------------

    def configure(self, environ: Mapping[str, str] | None = None) -> None:
        """Read this channel's own settings; called once by the registry. ``ALERTD_<NAME>_RATE``
        (messages per second across every worker; 0: no limit) overrides the class's ``rate``."""
        if self.settings_class is not None:
            self.config = load_channel_settings(self.name, self.settings_class, environ)
        env = os.environ if environ is None else environ
        key = f"ALERTD_{self.name.upper()}_RATE"
        if env.get(key, "").strip():
            try:
                rate = float(env[key])
            except ValueError as exc:
                raise ValueError(f"{key} must be a number, got {env[key]!r}") from exc
            # Per deployment, not per class: the base declares it as a class-level default.
            self.rate = rate if rate > 0 else None  # type: ignore[misc]

    def routes(self) -> Sequence[Routes]:
        """Blueprints the web app registers while this channel is enabled: its console pages,
        its API and its inbound callbacks. A disabled channel's URLs answer 404."""
        return ()

    def openapi(self) -> ApiPaths | None:
        """The OpenAPI description of this channel's API routes, merged into the API's document
        while the channel is enabled; None: it has no API routes."""
        return None

    # Dispatch ----------------------------------------------------------------------------------

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        """The recipient keys for this version, in a stable order: planning is resumed after a
        crash and rows already written are not written twice."""
        return ()

    def plan_query(self, ctx: Context, version: Version) -> Select[tuple[str]] | None:
        """The recipients as a query of one column, when they live in the database: they are
        then copied by ``INSERT ... SELECT`` in chunks, never loaded into the worker. None (the
        default) uses ``plan``."""
        return None

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        """Send one sub-batch and return one outcome per delivery. Called with no database
        transaction open; up to ``concurrency`` requests may be in flight at once."""
        raise NotImplementedError

    def reconcile(self, ctx: Context, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Ask the provider what became of deliveries whose outcome is unknown. Return an
        outcome for each one settled (sent, or retry when it surely never left); leave out the
        ones still unknown. The sweeper calls it before anything reaches an operator."""
        return []

    def erase_recipients(self, session: Session, delivery_ids: Sequence[int]) -> int:
        """Erase what this channel keeps, beyond the delivery rows, about the recipients of
        these finished deliveries (a text kept with its number), in the transaction of
        `alertd deliveries purge`, which has erased the rows' recipients. Returns rows changed."""
        return 0

    # Console and clock -------------------------------------------------------------------------

    def preview(self, ctx: Context, version: Version) -> dict[str, str]:
        """What this channel will carry, per language, for the console's review."""
        return {}

    def preview_texts(self, ctx: Context, version: Version) -> list[PreviewText]:
        """The texts of ``preview`` with their sizes; a channel with limits overrides this to
        count in its own unit. ``version`` may not be stored yet (a pending alert's content)."""
        return [
            PreviewText(language, "message", text, len(text))
            for language, text in self.preview(ctx, version).items()
        ]

    def approval_problems(
        self, ctx: Context, kind: str, content: Mapping[str, Any], public_id: str
    ) -> dict[str, str]:
        """Why this channel could not carry a version of ``kind`` with ``content`` (a text
        past its length), by field; approval is refused while any channel names one."""
        return {}

    def console_status(self, ctx: Context, version: Version) -> str | None:
        """One line about this version on this channel for the alert page, or None. Shown in
        the page's live progress section, so it should be one cheap query."""
        return None

    def console_page(self, actor: Actor, alert_id: int) -> str | None:
        """The URL of this channel's own console page about an alert, when ``actor`` may open
        it (called while a request is handled); None: no link."""
        return None

    def version_notes(
        self, ctx: Context, session: Session, alert_id: int
    ) -> Mapping[int, VersionNote]:
        """One note per version id of the alert for the console's Versions table (a document
        published, or why not), read in ``session``; none by default."""
        return {}

    def public_links(self, ctx: Context, session: Session, alert_id: int) -> Sequence[PublicLink]:
        """Documents about the alert that its public page links to, read in ``session``; none
        by default."""
        return ()

    def console_links(self, actor: Actor) -> Sequence[NavLink]:
        """Entries for the console's navigation that ``actor`` may open (called while a request
        is handled, so ``url_for`` works); none by default."""
        return ()

    def periodic(self, ctx: Context) -> None:
        """Work only the clock triggers (a feed's retention window); run by the sweeper."""


def load_channel_settings(
    name: str, settings_class: type[Any], environ: Mapping[str, str] | None = None
) -> Any:
    """Build ``settings_class`` from ``ALERTD_<NAME>_<FIELD>`` variables, coercing each value
    to the type of its field's default."""
    env = os.environ if environ is None else environ
    prefix = f"ALERTD_{name.upper()}_"
    values: dict[str, Any] = {}
    for field in dataclasses.fields(settings_class):
        key = prefix + field.name.upper()
        if key not in env:
            continue
        raw, default = env[key], field.default
        try:
            if isinstance(default, bool):
                values[field.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                values[field.name] = int(raw)
            elif isinstance(default, float):
                values[field.name] = float(raw)
            else:
                values[field.name] = raw
        except ValueError as exc:
            raise ValueError(f"{key} must be a number, got {raw!r}") from exc
    return settings_class(**values)
