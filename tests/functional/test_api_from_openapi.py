"""A dispatch system that knows only the OpenAPI document: it reads the paths, schemas and
examples from /api/v1/openapi.json, raises an alert and updates its plate with a two-field
merge patch. Nothing here is taken from alertd's code or the test factories."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest
from flask.testing import FlaskClient

from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.context import Context

MERGE_PATCH = "application/merge-patch+json"


def bearer(ctx: Context, actor: Actor) -> dict[str, str]:
    # The one thing a dispatch system gets from outside the document: its API tokens.
    with ctx.db.transaction() as session:
        return {"Authorization": f"Bearer {create_token(session, actor.username, 'cad').token}"}


class Spec:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def find(self, method: str, words: str) -> tuple[str, dict[str, Any]]:
        """The path and operation whose summary starts with `words`."""
        found = [
            (path, item[method])
            for path, item in self.document["paths"].items()
            if method in item and item[method]["summary"].startswith(words)
        ]
        assert len(found) == 1, (method, words, found)
        return found[0]

    def check(self, schema: dict[str, Any], value: Any) -> None:
        # The document's own schema, its $refs resolved against the document.
        root = {**schema, "components": self.document["components"]}
        errors = [e.message for e in jsonschema_rs.validator_for(root).iter_errors(value)]
        assert errors == [], errors

    def example(self, operation: dict[str, Any], media_type: str) -> Any:
        content = operation["requestBody"]["content"][media_type]
        (example,) = content["examples"].values()
        self.check(content["schema"], example["value"])
        return example["value"]

    def ok_schema(self, operation: dict[str, Any], status: str) -> dict[str, Any]:
        schema: dict[str, Any] = operation["responses"][status]["content"]["application/json"][
            "schema"
        ]
        return schema


@pytest.fixture
def spec(client: FlaskClient) -> Spec:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return Spec(response.get_json())


def test_a_dispatch_system_raises_an_alert_and_patches_its_plate_from_the_openapi_alone(
    spec: Spec, client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    dispatcher, approver = bearer(ctx, officer), bearer(ctx, supervisor)

    # The rule set the example names exists, and the example answers its required criteria.
    path, operation = spec.find("get", "The criteria rule sets")
    listed = client.get(path, headers=dispatcher)
    assert listed.status_code == 200
    spec.check(spec.ok_schema(operation, "200"), listed.get_json())
    for example in operation["responses"]["200"]["content"]["application/json"][
        "examples"
    ].values():
        spec.check(spec.ok_schema(operation, "200"), example["value"])
    rule_sets = {r["name"]: r for r in listed.get_json()["jurisdictions"]}

    # Raise it with the documented example.
    path, operation = spec.find("post", "Create a draft")
    body = spec.example(operation, "application/json")
    rule_set = rule_sets[body["jurisdiction"]]
    assert all(body["criteria"].get(c["key"]) for c in rule_set["criteria"] if c["required"])
    created = client.post(path, json=body, headers=dispatcher)
    assert created.status_code == 201, created.get_json()
    alert = created.get_json()
    spec.check(spec.ok_schema(operation, "201"), alert)

    def act(words: str, headers: dict[str, str], **kwargs: Any) -> dict[str, Any]:
        path, operation = spec.find("post", words)
        response = client.post(
            path.replace("{alert_id}", str(alert["id"])), headers=headers, **kwargs
        )
        (ok,) = [s for s in operation["responses"] if s.startswith("2")]
        assert response.status_code == int(ok), (words, response.get_json())
        spec.check(spec.ok_schema(operation, ok), response.get_json())
        return dict(response.get_json())

    act("Submit for approval", dispatcher)
    assert act("Approve (supervisor", approver)["state"] == "active"

    # The plate changes: send only the two fields of the documented merge patch.
    path, operation = spec.find("post", "Propose an update")
    patch = spec.example(operation, MERGE_PATCH)
    assert len(patch) == 2
    proposed = act(
        "Propose an update", dispatcher, data=json.dumps(patch), content_type=MERGE_PATCH
    )
    pending = proposed["pending_update"]
    assert pending["content"]["vehicles"] == patch["vehicles"]

    # The approver names the update it reviewed, as the document says (pending_update.id).
    updated = act("Approve the pending update", approver, json={"proposal_id": pending["id"]})
    content = updated["content"]
    assert content["vehicles"][0]["plate"] == patch["vehicles"][0]["plate"]
    assert content["direction_of_travel"] == patch["direction_of_travel"]
    # Everything the patch did not name is as it was raised.
    for field in ("children", "description", "tip_line", "case_reference", "areas"):
        assert content[field] == alert["content"][field], field
    assert [v["kind"] for v in updated["versions"]] == ["alert", "update"]


BOWTIE = [[34.0, -118.0], [34.1, -117.9], [34.1, -118.0], [34.0, -117.9], [34.0, -118.0]]


def test_a_merge_patch_that_breaks_the_alert_is_refused_like_a_full_body_and_saves_nothing(
    spec: Spec, client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    dispatcher, approver = bearer(ctx, officer), bearer(ctx, supervisor)
    body = spec.example(spec.find("post", "Create a draft")[1], "application/json")
    alert = client.post("/api/v1/alerts", json=body, headers=dispatcher).get_json()
    url = f"/api/v1/alerts/{alert['id']}"
    client.post(f"{url}/submit", headers=dispatcher)
    client.post(f"{url}/approve", headers=approver)
    before = client.get(url, headers=dispatcher).get_json()

    patch = {
        "children": [{"name": "Jane Doe", "age": 40}],
        "areas": [{"description": "x", "polygon": BOWTIE}],
        "tip_line": None,
    }
    refused = client.post(
        f"{url}/update", data=json.dumps(patch), content_type=MERGE_PATCH, headers=dispatcher
    )
    # The same content sent whole, as the merge would have made it.
    whole = {**before["content"], **patch}
    del whole["tip_line"]
    full = client.post(f"{url}/update", json=whole, headers=dispatcher)

    assert refused.status_code == full.status_code == 400
    assert refused.get_json()["fields"] == full.get_json()["fields"]
    assert "crosses itself" in refused.get_json()["fields"]["areas[0].polygon"]
    after = client.get(url, headers=dispatcher).get_json()
    assert after["pending_update"] is None and after["content"] == before["content"]
    assert after["versions"] == before["versions"]


def test_a_merge_patch_is_taken_only_where_a_patch_is_meant(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    refused = client.post(
        "/api/v1/alerts", data="{}", content_type=MERGE_PATCH, headers=bearer(ctx, officer)
    )
    assert refused.status_code == 400
    assert "application/json" in refused.get_json()["message"]


def test_jurisdictions_list_every_rule_set_with_its_criteria_and_rules(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    listed = client.get("/api/v1/jurisdictions", headers=bearer(ctx, officer)).get_json()
    assert listed["default"] == ctx.settings.DEFAULT_JURISDICTION
    by_name = {r["name"]: r for r in listed["jurisdictions"]}
    assert set(by_name) == set(ctx.rule_sets)
    for name, rule_set in ctx.rule_sets.items():
        shown = by_name[name]
        assert [(c["key"], c["label"], c["required"]) for c in shown["criteria"]] == [
            (c.key, c.label, c.required) for c in rule_set.criteria
        ]
        assert shown["rules"] == {
            "max_age": rule_set.max_age,
            "requires_case_reference": rule_set.requires_case_reference,
        }
    assert by_name["us-doj"]["rules"]["requires_case_reference"] is True
    assert client.get("/api/v1/jurisdictions").status_code == 401
