"""The audit trail is a hash chain: any altered, deleted, inserted or reordered row is found
and named, by the service and by `alertd audit verify`."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import text

from alertd.actor import Actor
from alertd.audit.services import export_jsonl, record, verify_chain
from alertd.cli import main
from alertd.context import Context


@pytest.fixture
def trail(ctx: Context) -> Context:
    actor = Actor(1, "tester", "officer", "198.51.100.1", "pytest")
    with ctx.db.transaction() as session:
        for i in range(5):
            record(
                session,
                actor=actor,
                action=f"test.action{i}",
                target_type="alert",
                target_id=i,
                detail={"n": i, "text": "é <&>"},
            )
    return ctx


def _verify(ctx: Context) -> tuple[bool, str]:
    with ctx.db.session() as session:
        result = verify_chain(session)
    return result.ok, result.problem or ""


def _sql(ctx: Context, statement: str) -> None:
    with ctx.db.engine.begin() as conn:
        conn.execute(text(statement))


def test_an_untouched_trail_verifies(trail: Context) -> None:
    assert _verify(trail) == (True, "")


def test_an_altered_entry_is_named(trail: Context) -> None:
    _sql(trail, "UPDATE audit_entries SET actor_name = 'mallory' WHERE seq = 3")

    ok, problem = _verify(trail)

    assert not ok and "seq=3" in problem and "altered" in problem


def test_a_deleted_entry_is_found(trail: Context) -> None:
    _sql(trail, "DELETE FROM audit_entries WHERE seq = 2")

    ok, problem = _verify(trail)

    assert not ok and "seq=3" in problem and "expected seq=2" in problem


def test_a_deleted_last_entry_is_found_through_the_head(trail: Context) -> None:
    _sql(trail, "DELETE FROM audit_entries WHERE seq = 5")

    ok, problem = _verify(trail)

    assert not ok and "seq=4" in problem


def test_reordered_entries_are_found(trail: Context) -> None:
    # Swap the sequence numbers of two rows, as someone hiding the order of events would.
    _sql(trail, "UPDATE audit_entries SET seq = 100 WHERE seq = 2")
    _sql(trail, "UPDATE audit_entries SET seq = 2 WHERE seq = 3")
    _sql(trail, "UPDATE audit_entries SET seq = 3 WHERE seq = 100")

    ok, problem = _verify(trail)

    assert not ok and "seq=" in problem


def test_an_inserted_entry_is_found(trail: Context) -> None:
    _sql(
        trail,
        "INSERT INTO audit_entries (seq, at, actor_id, actor_name, role, action, "
        "outcome, detail, prev_hash, hash) SELECT 6, at, actor_id, actor_name, role, "
        "action, outcome, detail, hash, hash FROM audit_entries WHERE seq = 5",
    )

    ok, problem = _verify(trail)

    assert not ok and "seq=6" in problem


def test_the_cli_exits_non_zero_and_names_the_entry(
    trail: Context, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERTD_DATABASE_URL", trail.settings.database_url)
    monkeypatch.setenv("ALERTD_INSTANCE_PATH", str(trail.settings.instance_path))
    assert main(["audit", "verify"]) == 0

    _sql(trail, "UPDATE audit_entries SET detail = '{\"n\": 99}' WHERE seq = 4")

    assert main(["audit", "verify"]) == 1
    assert "seq=4" in capsys.readouterr().err


def test_export_writes_one_json_line_per_entry(trail: Context) -> None:
    out = io.StringIO()
    with trail.db.session() as session:
        assert export_jsonl(session, out) == 5
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[1]["prev_hash"] == rows[0]["hash"]
