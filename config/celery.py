"""Celery settings (RELIABILITY.md section 2). The broker URL and the visibility timeout come
from the alertd settings at start-up; everything else is fixed here."""

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
# State lives in SQL; results would only fill the backend.
task_ignore_result = True
result_backend = None
# Acknowledge after the task returned, and redeliver when a child process dies: every task
# claims its rows first, so a second run finds nothing to do.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
# Above the HTTP timeouts of the channels (10 s), below the visibility timeout.
task_soft_time_limit = 90
task_time_limit = 120
worker_hijack_root_logger = False
broker_connection_retry_on_startup = True
task_default_queue = "alertd"
timezone = "UTC"
enable_utc = True
