"""When a refused text is tried again: a Retry-After is honoured, never earlier; otherwise a
jittered backoff that doubles per attempt; nothing for an outcome that is not retried."""

from __future__ import annotations

from alertd.channels.sms import gateway as gw
from alertd.channels.sms.channel import (
    RETRY_BASE_SECONDS,
    RETRY_CAP_SECONDS,
    THROTTLE_DEFAULT_SECONDS,
    retry_delay,
)


def test_retry_after_is_honoured_and_spread_a_little() -> None:
    delays = [retry_delay(gw.Result(gw.THROTTLED, retry_after=3.0), 1) for _ in range(200)]
    assert all(d is not None and 3.0 <= d <= 3.3 for d in delays)
    assert len(set(delays)) > 100
    delays = [retry_delay(gw.Result(gw.RETRY, retry_after=20.0), 4) for _ in range(50)]
    assert all(d is not None and 20.0 <= d <= 22.0 for d in delays)


def test_without_retry_after_the_backoff_doubles_with_jitter_up_to_a_cap() -> None:
    throttled = [retry_delay(gw.Result(gw.THROTTLED), 1) for _ in range(200)]
    assert all(d is not None and THROTTLE_DEFAULT_SECONDS <= d <= 2 for d in throttled)
    for attempt in (1, 2, 3):
        ceiling = RETRY_BASE_SECONDS * 2 ** (attempt - 1)
        delays = [retry_delay(gw.Result(gw.RETRY), attempt) for _ in range(200)]
        assert all(d is not None and ceiling / 2 <= d <= ceiling for d in delays)
        assert max(d for d in delays if d) - min(d for d in delays if d) > ceiling / 10
    late = [retry_delay(gw.Result(gw.RETRY), 30) for _ in range(50)]
    assert all(d is not None and d <= RETRY_CAP_SECONDS for d in late)


def test_outcomes_that_are_not_retried_have_no_delay() -> None:
    for outcome in (gw.SENT, gw.FAILED, gw.UNKNOWN):
        assert retry_delay(gw.Result(outcome, retry_after=5.0), 1) is None
