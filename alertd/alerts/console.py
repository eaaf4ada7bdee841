"""What every page of the officers' and supervisors' console shares: its blueprint, the banner
of an alert that is not real, and the actor.

The console's routes are registered on this one blueprint by ``console_list`` (the list),
``console_form`` (raising, editing and updating), ``console_page`` (the alert page) and
``console_actions`` (the alert page's buttons); ``views`` imports them all, so every endpoint
keeps its ``alerts.<name>``.
"""

from __future__ import annotations

from flask import Blueprint, g

from alertd.actor import Actor

bp = Blueprint("alerts", __name__)

# Shown for an alert that is not real, on every page about it.
STATUS_BANNERS = {
    "Exercise": "EXERCISE — NOT A REAL ALERT",
    "Test": "TEST — NOT A REAL ALERT",
}


def current_actor() -> Actor:
    actor: Actor = g.actor
    return actor
