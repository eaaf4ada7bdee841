"""The officers' and supervisors' console: list, raise, review and run alerts.

Every POST parses its input, calls one service function and redirects (post/redirect/get); a
refusal re-renders the page it came from with the reason, the fields at fault and what was typed.
Pages only hide actions a role may not take; the service layer is what enforces them.

One blueprint, ``alerts`` (``console.bp``); importing this module registers every console route
on it: the list (``console_list``), the alert form (``console_form``), the alert page
(``console_page``) and its buttons (``console_actions``).
"""

from __future__ import annotations

# Imported for their side effect: each registers its routes on the blueprint.
from alertd.alerts import (  # noqa: F401
    console_actions,
    console_form,
    console_list,
    console_page,
)
from alertd.alerts.console import bp

__all__ = ["bp"]
