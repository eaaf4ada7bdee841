"""The examples in API v1's document (alertd.alerts.openapi)."""

from __future__ import annotations

from typing import Any

# Examples a dispatch system can send as they are. The alert is an exercise, so one copied
# verbatim reaches only the test feeds; it meets the us-doj criteria, so it can be approved.
VEHICLE_EXAMPLE = {
    "make": "Nissan",
    "model": "Versa",
    "colour": "blue",
    "year": 2014,
    "plate": "6WCU986",
    "plate_region": "CA",
}
CREATE_EXAMPLE: dict[str, Any] = {
    "status": "Exercise",
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
        {"name": "Jane Doe", "age": 7, "sex": "female", "hair": "brown", "clothing": "red coat"}
    ],
    "suspects": [{"name": "John Roe", "description": "man in his 40s, grey beard"}],
    "vehicles": [VEHICLE_EXAMPLE],
    "last_seen_place": "Main St & 3rd Ave, Springfield",
    "direction_of_travel": "northbound on I-5",
    "tip_line": "+1 800 555 0199",
    "description": "Jane was taken from a playground by a man she does not know.",
    "areas": [
        {
            "description": "Springfield County",
            "geocodes": {"SAME": "006037"},
            "polygon": [[34.0, -118.5], [34.2, -118.5], [34.2, -118.2], [34.0, -118.5]],
        }
    ],
    "languages": ["en-US"],
}
# Two fields: the vehicle with its new plate (a merge patch replaces a list whole) and where
# it is heading now. Everything else stays as it is.
PATCH_EXAMPLE: dict[str, Any] = {
    "vehicles": [{**VEHICLE_EXAMPLE, "plate": "7XYZ321"}],
    "direction_of_travel": "southbound on I-405",
}


JURISDICTIONS_EXAMPLE: dict[str, Any] = {
    "default": "us-doj",
    "jurisdictions": [
        {
            "name": "us-doj",
            "title": "United States — Department of Justice AMBER Alert criteria",
            "public_name": "AMBER Alert",
            "source": "U.S. DOJ, Guidance on Criteria for Issuing AMBER Alerts",
            "criteria": [
                {
                    "key": "minor",
                    "label": "The child is 17 years of age or younger",
                    "required": True,
                },
                {
                    "key": "ncic_entered",
                    "label": "The case is entered in NCIC and flagged as a Child Abduction",
                    "required": False,
                },
            ],
            "rules": {"max_age": 17, "requires_case_reference": True},
        }
    ],
}
