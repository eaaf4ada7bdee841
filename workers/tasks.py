"""Tasks: ids in, one service call, nothing returned. Each is safe to run twice."""

from __future__ import annotations

from functools import cache

from alertd.channels import dispatch
from alertd.context import Context, make_context
from alertd.sweeper import sweep as run_sweep
from alertd.task_names import DELIVER_TASK, DISPATCH_TASK, PLAN_TASK, SWEEP_TASK
from workers.app import app, settings


@cache
def context() -> Context:
    # One per worker process: created lazily so a forked child opens its own connections.
    return make_context(settings)


@app.task(name=DISPATCH_TASK)
def dispatch_version(outbox_id: int) -> None:
    dispatch.dispatch_version(context(), outbox_id)


@app.task(name=PLAN_TASK)
def plan_dispatch(dispatch_id: int) -> None:
    dispatch.plan_dispatch(context(), dispatch_id)


@app.task(name=DELIVER_TASK)
def deliver_batch(dispatch_id: int, delivery_ids: list[int]) -> None:
    dispatch.deliver_batch(context(), dispatch_id, delivery_ids)


@app.task(name=SWEEP_TASK)
def sweep() -> None:
    run_sweep(context())
