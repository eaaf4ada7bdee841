"""The configured local time (``ALERTD_TIMEZONE``): one zone for CAP offsets, the console and the
public page. The database keeps UTC; conversion happens only where a time is shown or written."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class _HasZone(Protocol):
    @property
    def zone(self) -> ZoneInfo: ...


class _IpawsSettings(_HasZone, Protocol):
    @property
    def CAP_IPAWS(self) -> bool: ...  # noqa: N802  # the setting's own name

    @property
    def TIMEZONE(self) -> str: ...  # noqa: N802


@cache
def load_zone(name: str) -> ZoneInfo:
    """The zone called `name`; ValueError naming ALERTD_TIMEZONE when there is no such zone."""
    try:
        if not name or name != name.strip():
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        # ZoneInfo raises ValueError for names like "../etc" and "/UTC" as well as unknown ones.
        raise ValueError(
            f"ALERTD_TIMEZONE {name!r} is not an IANA time zone name "
            "(like UTC, America/Chicago or Europe/Paris)"
        ) from None


def to_local(moment: datetime, settings: _HasZone) -> datetime:
    """`moment` in the configured zone (a naive one is taken as UTC, as SQLite returns it)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(settings.zone)


def ipaws_zone_warning(settings: _IpawsSettings) -> str | None:
    """A warning when IPAWS is on but CAP times would carry a zero offset.

    google/cap-library's Ipaws1Profile rejects a zero offset on US alerts: a US sender writes its
    local offset, so -00:00 reads as a misconfigured clock.
    """
    if not settings.CAP_IPAWS:
        return None
    if (
        to_local(datetime(2026, 1, 1, tzinfo=UTC), settings).utcoffset()
        or to_local(datetime(2026, 7, 1, tzinfo=UTC), settings).utcoffset()
    ):
        return None
    return (
        f"warning: ALERTD_CAP_IPAWS is on but ALERTD_TIMEZONE is {settings.TIMEZONE!r}, so CAP "
        "times carry a zero offset, which IPAWS profile checkers reject for US alerts; set "
        "ALERTD_TIMEZONE to the sender's zone, e.g. America/Chicago"
    )
