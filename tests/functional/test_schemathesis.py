"""The API keeps its OpenAPI promise: schemathesis generates requests for every operation, as
every role and with no token, and checks every answer (no server error, documented status
codes, content types, headers and schemas).

Bounded and deterministic: a fixed number of derandomized examples per operation and role
(``ALERTD_SCHEMATHESIS_EXAMPLES``, default 12), so CI spends a minute or two and never flakes on
a new random seed. Raise it locally to look harder.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from alertd.accounts.services import create_token
from alertd.actor import ROLES, Actor
from alertd.alerts import services
from alertd.context import Context
from config import defaults
from tests.support.factories import alert_body

# The default channel set, whose API routes (webhook endpoints, SMS subscribers) the document
# lists only while they are enabled.
pytestmark = pytest.mark.channels(*defaults.CHANNELS.split(","))

EXAMPLES = int(os.environ.get("ALERTD_SCHEMATHESIS_EXAMPLES", "12"))


@pytest.fixture
def tokens(
    ctx: Context, officer: Actor, supervisor: Actor, operator: Actor, admin: Actor
) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in ROLES:
        with ctx.db.transaction() as session:
            token = create_token(session, f"{role}1", "schemathesis").token
        found[role] = {"Authorization": f"Bearer {token}"}
    # Alerts 1-3 exist, in three states, so small generated ids reach real alerts.
    draft = services.create_alert(ctx, alert_body(), by=officer)
    pending = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, pending.id, by=officer)
    active = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, active.id, by=officer)
    services.approve_alert(ctx, active.id, by=supervisor)
    assert (draft.id, pending.id, active.id) == (1, 2, 3)
    return found


def _run_operation(operation: Any, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        # The document gives the body's shape; whether an alert meets its jurisdiction's
        # criteria (and its times fit) is decided by the service and answered 400 as documented,
        # so shape-valid data may rightly be refused.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    check()


@pytest.mark.parametrize("who", ["anonymous", *ROLES])
def test_every_operation_conforms_to_the_openapi_document(
    app: Flask, tokens: dict[str, dict[str, str]], who: str
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures = []
    for operation in operations:
        try:
            _run_operation(operation, tokens[who])
        except Exception as error:  # collected, so one run reports every operation
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert not failures, "\n\n".join(failures)
