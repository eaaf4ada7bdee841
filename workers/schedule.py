"""The beat schedule. Only the sweep is periodic; everything else is sent when it happens."""

from __future__ import annotations

from typing import Any

from alertd.settings import Settings
from alertd.task_names import SWEEP_TASK


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "sweep": {
            "task": SWEEP_TASK,
            "schedule": settings.SWEEP_SECONDS,
            # A sweep that waited longer than one interval is worthless: the next one is due.
            "options": {"expires": settings.SWEEP_SECONDS},
        },
    }
