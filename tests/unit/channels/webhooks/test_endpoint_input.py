"""Any JSON object given as an endpoint is either accepted or refused with Invalid naming the
fields: never a crash, and never saved when refused."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alertd.channels.webhooks.services import parse_endpoint
from alertd.errors import Invalid
from alertd.settings import load_settings

SETTINGS = load_settings(
    {"WEBHOOK_ALLOW": "127.0.0.1/32", "WEBHOOK_HTTPS_ONLY": False, "SECRET_KEY": "x"},
    environ={},
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    [
        "url",
        "description",
        "events",
        "language",
        "format",
        "enabled",
        "accepts_tests",
        "token",
        "chat_id",
        "other",
    ]
)


def _no_dns(host: str, port: int) -> list[str]:
    raise OSError("no DNS in this test")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(FIELDS, JSON | st.just("http://127.0.0.1:9/x"), max_size=6))
def test_any_body_is_accepted_or_refused_cleanly(body: dict[str, Any]) -> None:
    try:
        values = parse_endpoint(SETTINGS, body, resolver=_no_dns)
    except Invalid as error:
        assert error.fields
    else:
        assert values["url"] == "http://127.0.0.1:9/x"
