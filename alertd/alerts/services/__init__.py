"""Every change to an alert goes through one of these functions. Each runs in its own
transaction, checks the actor's role and the alert's state, writes the change with its audit
entry (and, for a publication, its version and outbox row), and refuses with a reason that is
audited too. Views, the API, the CLI and tasks all call these."""

from alertd.alerts.services.approval import (
    approve_alert,
    approve_update,
    propose_update,
    reject_alert,
    reject_update,
)
from alertd.alerts.services.drafting import (
    create_alert,
    discard_draft,
    edit_alert,
    held_photo,
    hold_photo,
    submit_alert,
)
from alertd.alerts.services.endings import (
    cancel_alert,
    due_for_expiry,
    expire_alert,
    extend_alert,
    resolve_alert,
)
from alertd.alerts.services.publication import live_references
from alertd.alerts.services.queries import (
    get_alert,
    get_alert_by_public_id,
    is_ended,
    list_alerts,
    parse_page_args,
)
from alertd.task_names import DISPATCH_TASK

__all__ = [
    "DISPATCH_TASK",
    "approve_alert",
    "approve_update",
    "cancel_alert",
    "create_alert",
    "discard_draft",
    "due_for_expiry",
    "edit_alert",
    "expire_alert",
    "extend_alert",
    "get_alert",
    "get_alert_by_public_id",
    "held_photo",
    "hold_photo",
    "is_ended",
    "list_alerts",
    "live_references",
    "parse_page_args",
    "propose_update",
    "reject_alert",
    "reject_update",
    "resolve_alert",
    "submit_alert",
]
