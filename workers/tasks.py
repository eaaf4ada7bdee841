"""Tasks: ids in, one service call, nothing returned. Each is safe to run twice."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from celery.signals import worker_process_init
from sqlalchemy import text

from alertd.channels import dispatch
from alertd.context import Context, make_context
from alertd.sweeper import sweep as run_sweep
from alertd.task_names import DELIVER_TASK, DISPATCH_TASK, PLAN_TASK, SWEEP_TASK
from workers.app import app, settings


@cache
def context() -> Context:
    # One per worker process: created lazily so a forked child opens its own connections.
    return make_context(settings)


log = logging.getLogger(__name__)


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Build the context and open a database connection as the child starts, not in its first
    task: that task is often the first send of an alert (0.5-1 s of keys, imports and connect
    on a loaded machine, measured by benchmarks/engine.py)."""
    try:
        with context().db.session() as session:
            session.execute(text("SELECT 1"))
    except Exception:  # The first task will try again and say what is wrong.
        log.warning("worker warm-up failed", exc_info=True)


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
