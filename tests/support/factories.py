"""Builders for test data: users, actors and complete alert bodies."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from alertd.accounts.services import actor_for, create_user
from alertd.actor import Actor
from alertd.context import Context

PASSWORD = "correct horse battery staple"


def make_actor(ctx: Context, username: str, role: str) -> Actor:
    with ctx.db.transaction() as session:
        user = create_user(session, username, role, PASSWORD)
        return actor_for(user, "203.0.113.7", "pytest")


def alert_body(**overrides: Any) -> dict[str, Any]:
    """A complete alert that meets the US DOJ criteria."""
    body: dict[str, Any] = {
        "status": "Actual",
        "jurisdiction": "us-doj",
        "criteria": {
            "minor": True,
            "abduction_confirmed": True,
            "imminent_danger": True,
            "sufficient_description": True,
            "ncic_entered": True,
        },
        "case_reference": "NCIC-2026-000123",
        "children": [
            {
                "name": "Jane Doe",
                "age": 7,
                "sex": "female",
                "height_cm": 120,
                "weight_kg": 23,
                "hair": "brown",
                "eyes": "green",
                "clothing": "red raincoat, blue jeans",
                "marks": "scar on left cheek",
            }
        ],
        "suspects": [{"name": "John Roe", "description": "white male, 40s, grey beard"}],
        "vehicles": [
            {
                "make": "Nissan",
                "model": "Versa",
                "colour": "blue",
                "year": 2014,
                "plate": "6WCU986",
                "plate_region": "CA",
            }
        ],
        "last_seen_at": (datetime.now(UTC) - timedelta(minutes=40)).isoformat(),
        "last_seen_place": "Main St & 3rd Ave, Springfield",
        "direction_of_travel": "northbound on I-5",
        "tip_line": "+1 800 555 0199",
        "description": "Jane was taken from a playground by a man she does not know.",
        "instruction": "If you see the child or the vehicle, call the tip line. Do not approach.",
        "areas": [
            {
                "description": "Springfield County",
                "geocodes": {"SAME": "006037"},
                "polygon": [[34.0, -118.5], [34.2, -118.5], [34.2, -118.2], [34.0, -118.5]],
            }
        ],
        "languages": ["en-US", "es-US"],
        "translations": {
            "es-US": {
                "description": "Jane fue secuestrada en un parque.",
                "instruction": "Llame a la línea de información.",
            }
        },
        "expires_at": (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0).isoformat(),
    }
    body.update(overrides)
    return body


def png_bytes(width: int = 8, height: int = 8) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes(width: int = 8, height: int = 8) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 30, 200)).save(out, format="JPEG")
    return out.getvalue()
