"""The probe's tampers, each done as an attacker with write access to the database (but not to
the audit key file or the checkpoint folder) would, each found by `alertd audit verify
--checkpoints`. Before signed checkpoints, the head's MAC and the row digests, verify called
every one of these trails intact."""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, insert, select, text, update

from alertd.accounts.models import ApiToken, User
from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Version
from alertd.audit.checkpoints import (
    CheckpointRefused,
    parse,
    read_folder,
    verifier_for,
    write_checkpoint,
)
from alertd.audit.keys import Verifier, key_path, sign_note
from alertd.audit.models import AuditEntry, AuditHead
from alertd.audit.services import (
    compute_hash,
    entry_payload,
    record,
    verify_chain,
    verify_chain_in,
)
from alertd.cli import main
from alertd.context import Context
from alertd.sweeper import sweep
from tests.support.factories import alert_body


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    mac: str | None


def _head(ctx: Context) -> Head:
    with ctx.db.session() as session:
        head = session.get(AuditHead, 1)
        assert head is not None
        return Head(head.seq, head.hash, head.mac)


def _old_verify_passes(ctx: Context) -> bool:
    """What `alertd audit verify` checked before: the chain alone, no key, no checkpoints."""
    with ctx.db.session() as session:
        return verify_chain_in(session, None).ok


def _append(ctx: Context, count: int) -> None:
    actor = Actor(None, "system", "system", None, None)
    with ctx.db.transaction() as session:
        for i in range(count):
            record(session, actor=actor, action="test.filler", detail={"n": i})


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(ctx: Context, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`alertd audit ...` run by the real entry point against the test's instance."""
    settings = ctx.settings
    monkeypatch.setenv("ALERTD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ALERTD_INSTANCE_PATH", str(settings.instance_path))
    monkeypatch.setenv("ALERTD_PUBLIC_URL", settings.PUBLIC_URL)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["audit", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _verify(cli: Cli, ctx: Context) -> tuple[int, str]:
    code, out, err = cli("verify", "--checkpoints", str(ctx.settings.audit_checkpoint_dir))
    return code, out + err


@pytest.fixture
def published(ctx: Context, officer: Actor, supervisor: Actor) -> Context:
    """A trail with users, a token, an alert published (which writes a checkpoint) and then
    more entries, checkpointed again as the sweeper would."""
    with ctx.db.transaction() as session:
        create_token(session, officer.username, "laptop")
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    assert (
        len(read_folder(ctx.settings.audit_checkpoint_dir, verifier_for(ctx.settings)).checkpoints)
        == 1
    )
    _append(ctx, 3)
    assert write_checkpoint(ctx) is not None
    return ctx


def test_an_untouched_trail_verifies_with_its_checkpoints(published: Context, cli: Cli) -> None:
    code, output = _verify(cli, published)

    assert code == 0, output
    assert "2 signed checkpoint(s)" in output
    assert "4 versions, users and tokens match" in output  # 1 version, 2 users, 1 token


def test_truncating_the_tail_and_resetting_the_head_is_detected(
    ctx: Context, officer: Actor, supervisor: Actor, cli: Cli
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    # The attacker copied the head row at some point (its MAC included) ...
    saved = _head(ctx)
    services.cancel_alert(ctx, alert.id, "called off", by=supervisor)
    _append(ctx, 2)
    write_checkpoint(ctx)
    # ... and later cuts the trail back to it, hiding the cancel.
    with ctx.db.engine.begin() as conn:
        conn.execute(delete(AuditEntry).where(AuditEntry.seq > saved.seq))
        conn.execute(update(AuditHead).values(seq=saved.seq, hash=saved.hash, mac=saved.mac))
    with ctx.db.session() as session:
        assert verify_chain(session).ok  # the chain alone cannot see this

    code, output = _verify(cli, ctx)

    assert code == 1
    assert "it was truncated" in output


def test_recomputing_the_chain_after_an_edit_is_detected(published: Context, cli: Cli) -> None:
    # Rename the approver of entry 2 and recompute every hash after it, head included.
    with published.db.transaction() as session:
        entries = list(session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())
        entries[1].actor_name = "mallory"
        prev = entries[0].hash
        for entry in entries[1:]:
            entry.prev_hash = prev
            entry.hash = compute_hash(prev, entry_payload(entry))
            prev = entry.hash
        session.execute(update(AuditHead).values(seq=entries[-1].seq, hash=prev))

    assert _old_verify_passes(published)  # the tamper the chain alone cannot see

    code, output = _verify(cli, published)

    assert code == 1
    assert "the trail was rewritten up to there" in output
    assert "not authenticated by the audit key" in output
    with pytest.raises(CheckpointRefused):
        write_checkpoint(published)  # and it will not be signed either


def test_a_forged_append_is_detected_and_never_checkpointed(published: Context, cli: Cli) -> None:
    head = _head(published)
    with published.db.transaction() as session:
        last = session.execute(select(AuditEntry).where(AuditEntry.seq == head.seq)).scalar_one()
        forged = AuditEntry(
            seq=head.seq + 1,
            at=last.at,
            actor_id=None,
            actor_name="supervisor1",
            role="supervisor",
            action="alert.approve",
            outcome="ok",
            target_type="alert",
            target_id="1",
            detail={"note": "looks legitimate"},
            prev_hash=head.hash,
            hash="",
        )
        forged.hash = compute_hash(head.hash, entry_payload(forged))
        session.add(forged)
        session.execute(update(AuditHead).values(seq=forged.seq, hash=forged.hash))

    assert _old_verify_passes(published)  # the tamper the chain alone cannot see

    code, output = _verify(cli, published)

    assert code == 1
    assert f"the head (seq={head.seq + 1}) is not authenticated" in output
    with pytest.raises(CheckpointRefused):
        write_checkpoint(published)


def test_a_role_changed_in_the_users_table_is_detected(published: Context, cli: Cli) -> None:
    with published.db.engine.begin() as conn:
        conn.execute(text("UPDATE users SET role = 'admin' WHERE username = 'officer1'"))

    assert _old_verify_passes(published)  # the tamper the chain alone cannot see

    code, output = _verify(cli, published)

    assert code == 1
    assert "user 'officer1'" in output and "edited outside alertd" in output


def test_a_token_inserted_directly_is_detected(published: Context, cli: Cli) -> None:
    with published.db.session() as session:
        user_id = session.execute(select(User.id).where(User.username == "officer1")).scalar_one()
    with published.db.engine.begin() as conn:
        conn.execute(
            insert(ApiToken).values(
                user_id=user_id, name="backdoor", prefix="alertd_xxxxx", token_hash="0" * 64
            )
        )

    assert _old_verify_passes(published)  # the tamper the chain alone cannot see

    code, output = _verify(cli, published)

    assert code == 1
    assert "API token" in output and "written outside alertd" in output


def test_a_version_edited_in_place_is_detected(published: Context, cli: Cli) -> None:
    with published.db.session() as session:
        version = session.execute(select(Version)).scalar_one()
        content = dict(version.content, case_reference="NCIC-EDITED")
    with published.db.engine.begin() as conn:
        conn.execute(update(Version).where(Version.id == version.id).values(content=content))

    assert _old_verify_passes(published)  # the tamper the chain alone cannot see

    code, output = _verify(cli, published)

    assert code == 1
    assert f"version {version.identifier}" in output and "edited outside alertd" in output


def test_a_checkpoint_signed_by_another_key_is_reported(published: Context, cli: Cli) -> None:
    name = verifier_for(published.settings).name
    forged = sign_note(f"{name}\n1\n{'A' * 43}=\n", name, Ed25519PrivateKey.generate())
    (published.settings.audit_checkpoint_dir / "checkpoint-000000000001").write_text(
        forged, encoding="utf-8"
    )

    assert _old_verify_passes(published)  # the tamper the chain alone cannot see

    code, output = _verify(cli, published)

    assert code == 1
    assert "is not a valid signed checkpoint" in output


def test_alertd_audit_checkpoint_prints_a_c2sp_checkpoint(published: Context, cli: Cli) -> None:
    _append(published, 1)
    head = _head(published)

    code, out, err = cli("checkpoint")

    assert code == 0
    lines = out.splitlines()
    name = verifier_for(published.settings).name
    assert name.startswith("alertd.audit/") and lines[0] == name
    assert lines[1] == str(head.seq)
    assert lines[3] == "" and lines[4].startswith(f"\u2014 {name} ")
    vkey = err.split("verifier key: ")[1].strip()
    assert parse(out, Verifier.from_vkey(vkey)).head_hash == head.hash
    # The verifier key alone is enough to verify with.
    key_file = published.settings.audit_checkpoint_dir.parent / "auditor.vkey"
    key_file.write_text(vkey, encoding="utf-8")
    code, _, _ = cli("verify", "--verifier-key", str(key_file))
    assert code == 0


def test_the_sweeper_interval_holds_back_periodic_checkpoints(published: Context) -> None:
    _append(published, 1)

    assert write_checkpoint(published, min_age_seconds=3600) is None
    assert write_checkpoint(published, min_age_seconds=0) is not None


def test_a_head_already_signed_is_not_signed_again_unless_its_file_is_gone(
    published: Context,
) -> None:
    folder = published.settings.audit_checkpoint_dir
    verifier = verifier_for(published.settings)
    _append(published, 2)
    first = write_checkpoint(published)
    assert first is not None and first.path is not None
    files = len(read_folder(folder, verifier).checkpoints)

    # Several publications committed together: the first checkpoint after them covers them all.
    assert write_checkpoint(published) == first
    assert len(read_folder(folder, verifier).checkpoints) == files
    first.path.unlink()
    again = write_checkpoint(published)
    assert again is not None and again.path == first.path and first.path.exists()
    _append(published, 1)
    later = write_checkpoint(published)
    assert later is not None and later.length == first.length + 1


def test_the_signing_key_is_readable_by_its_owner_only(published: Context) -> None:
    mode = stat.S_IMODE(key_path(published.settings).stat().st_mode)

    assert mode == 0o600


def test_the_sweeper_checkpoints_a_grown_trail(published: Context) -> None:
    folder = published.settings.audit_checkpoint_dir
    before = {p.name for p in folder.iterdir()}
    _append(published, 2)
    settings = published.settings.with_overrides(AUDIT_CHECKPOINT_SECONDS=0.0)
    published.settings = settings

    assert sweep(published) is not None

    [new] = {p.name for p in folder.iterdir()} - before
    assert new == f"checkpoint-{_head(published).seq:012d}"


def test_alertd_init_authenticates_a_head_written_before_head_macs(
    published: Context, cli: Cli
) -> None:
    with published.db.engine.begin() as conn:
        conn.execute(update(AuditHead).values(mac=None))
    assert cli("verify")[0] == 1

    assert main(["init"]) == 0

    assert cli("verify")[0] == 0
