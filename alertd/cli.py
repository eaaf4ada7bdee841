"""The ``alertd`` command."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from alertd.actor import Actor
from alertd.context import Context, make_context
from alertd.errors import NotFound, ServiceError
from alertd.localtime import ipaws_zone_warning
from alertd.settings import load_settings


@contextmanager
def _context() -> Iterator[Context]:
    ctx = make_context(load_settings())
    try:
        yield ctx
    finally:
        ctx.close()


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\r\n")


def _warn_zone(ctx: Context) -> None:
    warning = ipaws_zone_warning(ctx.settings)
    if warning:
        print(warning, file=sys.stderr)


def cmd_init(args: argparse.Namespace) -> int:
    from alertd.audit.services import seal_head
    from alertd.schema import upgrade

    with _context() as ctx:
        upgrade(ctx.db)
        print(f"schema is up to date at {ctx.db.engine.url.render_as_string(hide_password=True)}")
        _warn_zone(ctx)
        with ctx.db.transaction() as session:
            if seal_head(session):
                print("the audit trail's head is now authenticated by the audit key")
        return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from alertd.accounts.services import create_user

    with _context() as ctx:
        password = _read_password(f"Password for {args.name}: ")
        with ctx.db.transaction() as session:
            create_user(session, args.name, args.role, password)
        print(f"created {args.role} {args.name}")
        return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:
    from alertd.accounts.services import create_token

    with _context() as ctx:
        with ctx.db.transaction() as session:
            new = create_token(session, args.name, args.label)
        print(new.token)
        print(f"(API token for {args.name}; it is shown only this once)", file=sys.stderr)
        return 0


def cmd_tokens_list(args: argparse.Namespace) -> int:
    from alertd.accounts.services import list_tokens

    with _context() as ctx:
        with ctx.db.session() as session:
            print("id\tprefix\towner\tlabel\tcreated\tlast used\trevoked")
            for t in list_tokens(session, by=None):
                cells = (t.created_at, t.last_used_at, t.revoked_at)
                times = "\t".join(c.isoformat(timespec="seconds") if c else "-" for c in cells)
                print(f"{t.id}\t{t.prefix}\t{t.user.username}\t{t.name}\t{times}")
        return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    from alertd.accounts.services import revoke_token

    with _context() as ctx:
        with ctx.db.transaction() as session:
            row = revoke_token(session, args.id, by=None)
            print(f"revoked token {row.id} ({row.prefix}, {row.user.username})")
        return 0


def cmd_users_active(args: argparse.Namespace) -> int:
    from alertd.accounts.services import set_active

    with _context() as ctx:
        with ctx.db.transaction() as session:
            set_active(session, args.name, args.active, by=None)
        print(f"{args.name} {'activated' if args.active else 'deactivated'}")
        return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from alertd.audit.checkpoints import read_folder, verifier_for
    from alertd.audit.keys import SignatureError, Verifier
    from alertd.audit.recipients import recipient_key
    from alertd.audit.trail import verify_trail

    with _context() as ctx:
        folder = Path(args.checkpoints) if args.checkpoints else ctx.settings.audit_checkpoint_dir
        try:
            verifier = (
                Verifier.from_vkey(Path(args.verifier_key).read_text(encoding="utf-8"))
                if args.verifier_key
                else verifier_for(ctx.settings)
            )
        except (OSError, SignatureError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        # Read before the walk: a checkpoint written meanwhile must not look like a truncation.
        checkpoints = read_folder(folder, verifier)
        with ctx.db.session() as session:
            report = verify_trail(session, checkpoints, recipient_key(ctx.settings))
        if not report.ok:
            print(f"audit trail BROKEN: {len(report.problems)} problem(s)", file=sys.stderr)
            for problem in report.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 1
        print(
            f"audit trail intact: {report.entries} entries, {report.checkpoints} signed "
            f"checkpoint(s) in {folder} agree ({report.beyond_last_checkpoint} entries since "
            f"the last), {report.rows_checked} versions, users and tokens match their entries"
            + (
                f" ({report.rows_unchecked} written before entries carried digests)"
                if report.rows_unchecked
                else ""
            )
            + f", {report.deliveries_checked} deliveries match their latest audited outcome"
            + (
                f" ({report.deliveries_unchecked} recorded before entries carried outcomes)"
                if report.deliveries_unchecked
                else ""
            )
        )
        if not report.checkpoints:
            print(f"warning: no checkpoint in {folder}; truncation cannot be seen", file=sys.stderr)
        return 0


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from alertd.audit.checkpoints import CheckpointRefused, verifier_for, write_checkpoint

    with _context() as ctx:
        try:
            checkpoint = write_checkpoint(ctx)
        except CheckpointRefused as exc:
            print(f"audit trail BROKEN, not signed: {exc}", file=sys.stderr)
            return 1
        if checkpoint is None:
            print("the audit trail is empty: nothing to sign", file=sys.stderr)
            return 0
        print(checkpoint.note, end="")
        print(f"(written to {checkpoint.path})", file=sys.stderr)
        print(f"verifier key: {verifier_for(ctx.settings).vkey()}", file=sys.stderr)
        return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    from alertd.audit.services import export_jsonl

    with _context() as ctx:
        with ctx.db.session() as session:
            if args.output == "-":
                count = export_jsonl(session, sys.stdout)
            else:
                with open(args.output, "w", encoding="utf-8") as out:  # noqa: PTH123
                    count = export_jsonl(session, out)
        print(f"exported {count} entries", file=sys.stderr)
        return 0


def cmd_cap_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from alertd.channels.cap.verify import verify_document

    try:
        xml = Path(args.file).read_bytes()
        cert = Path(args.cert).read_bytes() if args.cert else None
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = verify_document(
        xml, cert_pem=cert, at_sent=args.at_sent, require_signature=args.require_signature
    )
    for finding in report.findings:
        print(finding.line)
    failed = report.failed_level
    if failed is None:
        print(f"OK: {args.file} is valid" + (" and signed" if report.signed else " (unsigned)"))
    else:
        print(f"INVALID: {args.file} fails at the {failed} level", file=sys.stderr)
    return report.exit_code


def cmd_cap_write_feeds(args: argparse.Namespace) -> int:
    from alertd.channels.cap.static import write_feed_dir

    with _context() as ctx:
        if not ctx.settings.FEED_DIR:
            print("error: ALERTD_FEED_DIR is not set", file=sys.stderr)
            return 1
        written = write_feed_dir(ctx, all_documents=True)
        print(f"wrote {len(written)} file(s) in {ctx.settings.FEED_DIR}")
        return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from alertd.serve import serve

    return serve(load_settings(), port=args.port, host=args.host)


def cmd_web(args: argparse.Namespace) -> int:
    from alertd.serve import serve_web

    return serve_web(load_settings(), port=args.port, host=args.host)


def _past_date(text: str) -> datetime:
    """``--before``: an ISO 8601 date or date and time, UTC unless it names an offset."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD, or YYYY-MM-DDTHH:MM with an optional offset)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def cmd_deliveries_purge(args: argparse.Namespace) -> int:
    from alertd.channels.dispatch.purge import purge_recipients

    with _context() as ctx:
        done = purge_recipients(ctx, args.before)
        channels = ", ".join(f"{name} {count}" for name, count in sorted(done.by_channel.items()))
        print(
            f"erased the recipients of {done.deliveries} finished deliveries of alerts last sent "
            f"before {args.before.isoformat()} ({channels or 'none'}) in {done.batches} "
            f"batch(es); {done.kept_elsewhere} rows kept by channels erased too"
        )
        return 0


def cmd_health(args: argparse.Namespace) -> int:
    from alertd.health import backlog

    with _context() as ctx:
        found = backlog(ctx)
        _warn_zone(ctx)
        max_age = ctx.settings.STALL_SECONDS if args.max_age is None else args.max_age
    print(
        f"oldest untaken outbox row: {found.oldest_untaken_outbox_seconds:.0f} s; "
        f"oldest due delivery: {found.oldest_due_delivery_seconds:.0f} s; "
        f"deliveries with unknown outcome: {found.unknown_deliveries}"
    )
    if found.healthy(max_age):
        return 0
    print(
        f"UNHEALTHY: work older than {max_age:.0f} s is not being taken; restart the workers",
        file=sys.stderr,
    )
    return 1


def _cli_actor(ctx: Context, name: str) -> Actor:
    from alertd.accounts.models import User
    from alertd.accounts.services import actor_for

    with ctx.db.session() as session:
        user = session.execute(select(User).where(User.username == name)).scalar_one_or_none()
        if user is None:
            raise NotFound(f"no user {name!r}: name an operator with --as")
        return actor_for(user, None, "alertd cli")


def cmd_endpoints_add(args: argparse.Namespace) -> int:
    from alertd.channels.webhooks.services import add_endpoint

    with _context() as ctx:
        data: dict[str, object] = {
            "url": args.url,
            "description": args.description,
            "format": args.format,
            "language": args.language,
            "accepts_tests": args.accepts_tests,
            "chat_id": args.chat_id,
        }
        if args.event:
            data["events"] = args.event
        if args.format in ("mastodon", "telegram"):
            data["token"] = _read_password("Access token: ")
        new = add_endpoint(ctx, data, by=_cli_actor(ctx, args.actor))
        print(f"endpoint {new.endpoint.id}: {new.endpoint.url}")
        print(new.secret)
        print("(signing secret; it is shown only this once)", file=sys.stderr)
        return 0


def cmd_endpoints_list(args: argparse.Namespace) -> int:
    from alertd.channels.webhooks.queries import endpoint_json, failed_counts, list_endpoints

    with _context() as ctx:
        with ctx.db.session() as session:
            failed = failed_counts(session)
            for endpoint in list_endpoints(session):
                e = endpoint_json(endpoint, failed.get(endpoint.id, 0))
                state = "enabled" if e["enabled"] else f"disabled ({e['disabled_reason']})"
                print(
                    f"{e['id']}\t{e['format']}\t{state}\tcircuit {e['circuit']}\t"
                    f"{e['failed_deliveries']} failed\t{e['url']}"
                )
        return 0


def cmd_endpoints_disable(args: argparse.Namespace) -> int:
    from alertd.channels.webhooks.services import set_enabled

    with _context() as ctx:
        set_enabled(ctx, args.id, False, by=_cli_actor(ctx, args.actor), reason=args.reason)
        print(f"endpoint {args.id} disabled")
        return 0


def cmd_subscribers_import(args: argparse.Namespace) -> int:
    from alertd.channels.sms.services import import_csv

    with _context() as ctx:
        with Path(args.file).open(newline="", encoding="utf-8-sig") as stream:
            report = import_csv(ctx, stream, by=_cli_actor(ctx, args.actor))
        for line, reason in report.rejected:
            print(f"{args.file}:{line}: {reason}", file=sys.stderr)
        print(f"{report.created} added, {report.updated} updated, {len(report.rejected)} rejected")
        return 1 if report.rejected else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alertd", description="Missing-child alert dispatcher")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create or upgrade the schema").set_defaults(func=cmd_init)

    users = sub.add_parser("users", help="manage users").add_subparsers(dest="sub", required=True)
    create = users.add_parser("create", help="create a user; the password is read from stdin")
    create.add_argument("name")
    create.add_argument(
        "--role", required=True, choices=["officer", "supervisor", "operator", "admin"]
    )
    create.set_defaults(func=cmd_users_create)
    for verb, active in (("deactivate", False), ("activate", True)):
        change = users.add_parser(verb, help=f"{verb} a user: their sessions and tokens stop")
        change.add_argument("name")
        change.set_defaults(func=cmd_users_active, active=active)

    tokens = sub.add_parser("tokens", help="API tokens").add_subparsers(dest="sub", required=True)
    token = tokens.add_parser(
        "create",
        help="create an API token for a user and print it once (the server operator's "
        "command; audited as made at the command line)",
    )
    token.add_argument("name", help="the user the token acts as")
    token.add_argument("--label", default="api", help="what the token is for")
    token.set_defaults(func=cmd_tokens_create)
    tokens.add_parser("list", help="list every token").set_defaults(func=cmd_tokens_list)
    revoke = tokens.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(func=cmd_tokens_revoke)

    for name, handler, help_text in (
        ("serve", cmd_serve, "run web, worker and scheduler together"),
        ("web", cmd_web, "run only the web console and API"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--port", type=int, default=None)
        command.add_argument("--host", default=None)
        command.set_defaults(func=handler)

    cap = sub.add_parser("cap", help="CAP messages and feeds").add_subparsers(
        dest="sub", required=True
    )
    verify = cap.add_parser(
        "verify",
        help="check a CAP file: XML, schema, CAP rules, IPAWS profile, then its signature "
        "(exit 3, 4, 5, 6 or 7 names the first level that failed)",
    )
    verify.add_argument("file")
    verify.add_argument(
        "--cert",
        help="PEM certificate the signature must come from "
        "(default: the one embedded in the message, which proves integrity only)",
    )
    verify.add_argument(
        "--at-sent",
        action="store_true",
        help="check the certificate was valid when the message was sent",
    )
    verify.add_argument(
        "--require-signature",
        action="store_true",
        help="an unsigned document fails (by default unsigned CAP is valid)",
    )
    verify.set_defaults(func=cmd_cap_verify)
    cap.add_parser(
        "write-feeds", help="write every CAP document and the feeds to ALERTD_FEED_DIR"
    ).set_defaults(func=cmd_cap_write_feeds)

    endpoints = sub.add_parser("endpoints", help="webhook endpoints").add_subparsers(
        dest="sub", required=True
    )
    add = endpoints.add_parser("add", help="add an endpoint and print its secret once")
    add.add_argument("url")
    add.add_argument("--as", dest="actor", required=True, help="the operator acting")
    add.add_argument("--description", default="")
    add.add_argument(
        "--format",
        default="standard",
        choices=["standard", "slack", "discord", "teams", "mastodon", "telegram"],
    )
    add.add_argument("--language", default="en")
    add.add_argument("--event", action="append", help="an event wanted (repeat); default all")
    add.add_argument("--accepts-tests", action="store_true", help="also Test/Exercise alerts")
    add.add_argument("--chat-id", default="", help="Telegram channel")
    add.set_defaults(func=cmd_endpoints_add)
    endpoints.add_parser("list", help="endpoints, state and circuit").set_defaults(
        func=cmd_endpoints_list
    )
    disable = endpoints.add_parser("disable", help="stop sending to an endpoint")
    disable.add_argument("id", type=int)
    disable.add_argument("--as", dest="actor", required=True, help="the operator acting")
    disable.add_argument("--reason", default="")
    disable.set_defaults(func=cmd_endpoints_disable)

    subscribers = sub.add_parser("subscribers", help="SMS subscribers").add_subparsers(
        dest="sub", required=True
    )
    load = subscribers.add_parser(
        "import",
        help="load subscribers from a CSV file (header phone,language,areas,lat,lon); a number "
        "already present is updated; every bad row is reported with its line (exit 1)",
    )
    load.add_argument("file")
    load.add_argument("--as", dest="actor", required=True, help="the operator or admin acting")
    load.set_defaults(func=cmd_subscribers_import)

    deliveries = sub.add_parser("deliveries", help="delivery records").add_subparsers(
        dest="sub", required=True
    )
    purge = deliveries.add_parser(
        "purge",
        help="erase the recipients of finished deliveries of alerts whose every version was "
        "sent before DATE (never one still in flight); the audit trail still verifies",
    )
    purge.add_argument("--before", required=True, type=_past_date, metavar="DATE")
    purge.set_defaults(func=cmd_deliveries_purge)

    health = sub.add_parser("health", help="exit 1 when workers are not taking work")
    health.add_argument(
        "--max-age",
        type=float,
        default=None,
        help="seconds work may wait before the workers count as stuck (ALERTD_STALL_SECONDS)",
    )
    health.set_defaults(func=cmd_health)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="sub", required=True
    )
    check = audit.add_parser(
        "verify", help="check the chain, its signed checkpoints and the rows it vouches for"
    )
    check.add_argument(
        "--checkpoints",
        metavar="DIR",
        help="folder of signed checkpoints (default: ALERTD_AUDIT_CHECKPOINT_DIR)",
    )
    check.add_argument(
        "--verifier-key",
        metavar="FILE",
        help="the signed-note verifier key to check them with "
        "(default: the public half of ALERTD_AUDIT_SIGNING_KEY)",
    )
    check.set_defaults(func=cmd_audit_verify)
    audit.add_parser(
        "checkpoint", help="sign the trail's length and head into the checkpoint folder; print it"
    ).set_defaults(func=cmd_audit_checkpoint)
    export = audit.add_parser("export", help="write the trail as JSON Lines")
    export.add_argument("--output", "-o", default="-")
    export.set_defaults(func=cmd_audit_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        load_settings()
    except ValueError as error:  # a bad ALERTD_* value: say which, without a traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except ServiceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        for field, message in error.fields.items():
            print(f"  {field}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
