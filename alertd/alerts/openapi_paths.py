"""The core's paths in API v1's document (alertd.alerts.openapi): alerts, their actions and the
jurisdictions, with their parameters and answers."""

from __future__ import annotations

from typing import Any

from alertd.alerts.models import STATES as ALERT_STATES
from alertd.alerts.openapi_examples import CREATE_EXAMPLE, JURISDICTIONS_EXAMPLE, PATCH_EXAMPLE
from alertd.alerts.openapi_schemas import ALERT_PAGE, PROPOSAL, REASON, obj

STATES = list(ALERT_STATES)
LIST_PARAMETERS = [
    {"name": "state", "in": "query", "schema": {"type": "string", "enum": STATES}},
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
    },
    {
        "name": "cursor",
        "in": "query",
        "description": "next_cursor from the previous page",
        "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
    },
]
_ERROR_TEXT = {
    400: "invalid input",
    401: "no or bad token",
    403: "role not allowed",
    404: "not found",
    405: "method not allowed (see Allow)",
    409: "not allowed in the alert's state",
    413: "body too large",
}


def error_responses(*codes: int) -> dict[str, Any]:
    return {
        str(code): {
            "description": _ERROR_TEXT.get(code, "error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def _responses(ok: str, *extra: int) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Alert"}
    responses: dict[str, Any] = {
        ok: {"description": "the alert", "content": {"application/json": {"schema": ref}}}
    }
    return responses | error_responses(400, 401, 403, 404, 409, 413, *extra)


IDEMPOTENCY_KEY_REF = {"$ref": "#/components/parameters/IdempotencyKey"}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any unique string per intended action: a request repeated with the same key "
    "(and the same body) acts once and gets the first answer again, with the header "
    "Idempotent-Replayed: true. The same key with another body is refused with 400.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 100},
}


def _action(summary: str, body: dict[str, Any] | None = None, ok: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [{"$ref": "#/components/parameters/AlertId"}, IDEMPOTENCY_KEY_REF],
        "responses": _responses(ok),
    }
    if body is not None:
        op["requestBody"] = {"content": {"application/json": {"schema": body}}}
    return {"post": op}


def _update_operation() -> dict[str, Any]:
    operation = _action(
        "Propose an update (officer or operator); approved by a supervisor like an alert. "
        "Send the whole body as "
        "application/json, or only what changed as application/merge-patch+json (RFC 7396), "
        "applied to the alert's current content",
        None,
        "202",
    )
    operation["post"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/AlertBody"},
                "examples": {
                    "full": {
                        "summary": "The whole content, with the vehicle's new plate",
                        "value": {**CREATE_EXAMPLE, **PATCH_EXAMPLE},
                    }
                },
            },
            "application/merge-patch+json": {
                "schema": {"$ref": "#/components/schemas/AlertPatch"},
                "examples": {
                    "new_plate": {
                        "summary": "Only the new plate and direction of travel",
                        "value": PATCH_EXAMPLE,
                    }
                },
            },
        },
    }
    return operation


def core_paths() -> dict[str, Any]:
    """The core's paths, built afresh for each document (the document is then added to)."""
    return {
        "/api/v1/alerts": {
            "get": {
                "summary": "List alerts, newest first, a page at a time: follow next "
                "(or pass next_cursor as cursor) until it is null",
                "parameters": LIST_PARAMETERS,
                "responses": {
                    "200": {
                        "description": "one page of alerts",
                        "content": {"application/json": {"schema": ALERT_PAGE}},
                    },
                    **error_responses(400, 401),
                },
            },
            "post": {
                "summary": "Create a draft (officer)",
                "parameters": [IDEMPOTENCY_KEY_REF],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/AlertBody"},
                            "examples": {
                                "exercise": {
                                    "summary": "An exercise alert meeting the us-doj criteria",
                                    "value": CREATE_EXAMPLE,
                                }
                            },
                        }
                    },
                },
                "responses": _responses("201"),
            },
        },
        "/api/v1/alerts/{alert_id}": {
            "parameters": [{"$ref": "#/components/parameters/AlertId"}],
            "get": {
                "summary": "One alert with versions and delivery counts",
                "responses": _responses("200"),
            },
            "put": {
                "summary": "Edit a draft (officer)",
                "parameters": [IDEMPOTENCY_KEY_REF],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/AlertBody"}}
                    },
                },
                "responses": _responses("200"),
            },
        },
        "/api/v1/alerts/{alert_id}/photo": {
            "parameters": [{"$ref": "#/components/parameters/AlertId"}],
            "get": {
                "summary": "The alert's current photo, published or not (the public "
                "/photos URL serves it only once published)",
                "responses": {
                    "200": {
                        "description": "the photo",
                        "content": {
                            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                            "image/png": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    **{
                        code: response
                        for code, response in _responses("200").items()
                        if code in ("401", "404")
                    },
                },
            },
        },
        "/api/v1/alerts/{alert_id}/submit": _action("Submit for approval (officer)"),
        "/api/v1/alerts/{alert_id}/discard": _action(
            "Discard a draft (only the officer who raised it). The alert is kept, as "
            "discarded, for the record and is never published; discarding it again changes "
            "nothing. 403 for anyone else, 409 once it has been submitted"
        ),
        "/api/v1/alerts/{alert_id}/approve": _action(
            "Approve (supervisor, not the submitter); publishes version 1. With a "
            "proposal_id, approves that pending update instead",
            PROPOSAL,
        ),
        "/api/v1/alerts/{alert_id}/reject": _action("Return to draft (supervisor)", REASON),
        "/api/v1/alerts/{alert_id}/update": _update_operation(),
        "/api/v1/jurisdictions": {
            "get": {
                "summary": "The criteria rule sets: keys, labels, which are required, and "
                "their rules (maximum age, case reference)",
                "responses": {
                    "200": {
                        "description": "every rule set",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Jurisdictions"},
                                "examples": {
                                    "us": {
                                        "summary": "One rule set, two of its criteria",
                                        "value": JURISDICTIONS_EXAMPLE,
                                    }
                                },
                            }
                        },
                    },
                    "401": {"description": "no or bad token"},
                },
            }
        },
        "/api/v1/alerts/{alert_id}/update/approve": _action(
            "Approve the pending update (supervisor, not the proposer); proposal_id names "
            "the update reviewed, and a replaced one is refused with 409",
            PROPOSAL,
        ),
        "/api/v1/alerts/{alert_id}/update/reject": _action("Reject the pending update", REASON),
        "/api/v1/alerts/{alert_id}/cancel": _action(
            "Cancel: withdraw the alert (supervisor or operator)", REASON
        ),
        "/api/v1/alerts/{alert_id}/resolve": _action(
            "Resolve: the child was found (supervisor or operator)", REASON
        ),
        "/api/v1/alerts/{alert_id}/extend": _action(
            "Extend the expiry (supervisor or operator)",
            obj(
                {
                    "minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                    "expires_at": {"type": "string", "format": "date-time"},
                }
            ),
        ),
    }
