"""The channels' commands: ``alertd cap`` (CAP documents and feeds), ``endpoints`` (webhooks),
``subscribers`` (SMS) and ``deliveries`` (their records)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from alertd.commands.common import Subcommands, cli_actor, cli_context, read_password


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

    with cli_context() as ctx:
        if not ctx.settings.FEED_DIR:
            print("error: ALERTD_FEED_DIR is not set", file=sys.stderr)
            return 1
        written = write_feed_dir(ctx, all_documents=True)
        print(f"wrote {len(written)} file(s) in {ctx.settings.FEED_DIR}")
        return 0


def cmd_endpoints_add(args: argparse.Namespace) -> int:
    from alertd.channels.webhooks.services import add_endpoint

    with cli_context() as ctx:
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
            data["token"] = read_password("Access token: ")
        new = add_endpoint(ctx, data, by=cli_actor(ctx, args.actor))
        print(f"endpoint {new.endpoint.id}: {new.endpoint.url}")
        print(new.secret)
        print("(signing secret; it is shown only this once)", file=sys.stderr)
        return 0


def cmd_endpoints_list(args: argparse.Namespace) -> int:
    from alertd.channels.webhooks.queries import endpoint_json, failed_counts, list_endpoints

    with cli_context() as ctx:
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

    with cli_context() as ctx:
        set_enabled(ctx, args.id, False, by=cli_actor(ctx, args.actor), reason=args.reason)
        print(f"endpoint {args.id} disabled")
        return 0


def cmd_subscribers_import(args: argparse.Namespace) -> int:
    from alertd.channels.sms.services import import_csv

    with cli_context() as ctx:
        with Path(args.file).open(newline="", encoding="utf-8-sig") as stream:
            report = import_csv(ctx, stream, by=cli_actor(ctx, args.actor))
        for line, reason in report.rejected:
            print(f"{args.file}:{line}: {reason}", file=sys.stderr)
        print(f"{report.created} added, {report.updated} updated, {len(report.rejected)} rejected")
        return 1 if report.rejected else 0


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

    with cli_context() as ctx:
        done = purge_recipients(ctx, args.before)
        channels = ", ".join(f"{name} {count}" for name, count in sorted(done.by_channel.items()))
        print(
            f"erased the recipients of {done.deliveries} finished deliveries of alerts last sent "
            f"before {args.before.isoformat()} ({channels or 'none'}) in {done.batches} "
            f"batch(es); {done.kept_elsewhere} rows kept by channels erased too"
        )
        return 0


def add_cap(sub: Subcommands) -> None:
    """``alertd cap verify|write-feeds``."""
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


def add_endpoints(sub: Subcommands) -> None:
    """``alertd endpoints add|list|disable``."""
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


def add_subscribers(sub: Subcommands) -> None:
    """``alertd subscribers import``."""
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


def add_deliveries(sub: Subcommands) -> None:
    """``alertd deliveries purge``."""
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
