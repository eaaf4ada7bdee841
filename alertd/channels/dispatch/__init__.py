"""Fan-out: from an outbox message to one dispatch per channel, from a dispatch to one delivery
row per recipient, and from delivery rows to sends. Every step claims its rows first, so a task
that runs twice finds nothing left to do (RELIABILITY.md section 2)."""

from alertd.channels.dispatch.delivery import deliver_batch
from alertd.channels.dispatch.fanout import dispatch_version, enqueue_open_deliveries
from alertd.channels.dispatch.planning import plan_dispatch
from alertd.channels.dispatch.queries import delivery_counts, dispatches_for
from alertd.channels.dispatch.record import RETRY_SCHEDULE
from alertd.channels.dispatch.recovery import (
    reclaim_expired_leases,
    reconcile_unknown,
    resume_stalled,
)
from alertd.task_names import DELIVER_TASK, PLAN_TASK

__all__ = [
    "DELIVER_TASK",
    "PLAN_TASK",
    "RETRY_SCHEDULE",
    "deliver_batch",
    "delivery_counts",
    "dispatch_version",
    "dispatches_for",
    "enqueue_open_deliveries",
    "plan_dispatch",
    "reclaim_expired_leases",
    "reconcile_unknown",
    "resume_stalled",
]
