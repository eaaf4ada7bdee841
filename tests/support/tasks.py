"""Running queued tasks in the test process: what a Celery worker would do, synchronously."""

from __future__ import annotations

from alertd.alerts.services import DISPATCH_TASK
from alertd.broker import RecordingPublisher
from alertd.channels import dispatch
from alertd.context import Context


def run_pending_tasks(ctx: Context, publisher: RecordingPublisher, *, limit: int = 1000) -> int:
    """Drain ``publisher.sent`` by calling the services the Celery tasks call, including the
    tasks those calls send in turn. Returns how many tasks ran."""
    ran = 0
    while publisher.sent:
        if ran >= limit:
            raise RuntimeError(f"more than {limit} tasks: a task keeps sending itself")
        name, args = publisher.sent.pop(0)
        if name == DISPATCH_TASK:
            dispatch.dispatch_version(ctx, args[0])
        elif name == dispatch.PLAN_TASK:
            dispatch.plan_dispatch(ctx, args[0])
        elif name == dispatch.DELIVER_TASK:
            dispatch.deliver_batch(ctx, args[0], args[1])
        else:
            raise ValueError(f"no runner for task {name!r}")
        ran += 1
    return ran
