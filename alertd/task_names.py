"""The Celery task names, defined once: services send by these names (alertd.broker) and
workers/tasks.py registers its tasks under them."""

from __future__ import annotations

DISPATCH_TASK = "alertd.dispatch_version"
PLAN_TASK = "alertd.plan_dispatch"
DELIVER_TASK = "alertd.deliver_batch"
SWEEP_TASK = "alertd.sweep"
