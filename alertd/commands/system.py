"""``alertd init``, ``serve``, ``web`` and ``health``: the schema and the processes."""

from __future__ import annotations

import argparse
import sys

from alertd.commands.common import Subcommands, cli_context, warn_zone
from alertd.settings import load_settings


def cmd_init(args: argparse.Namespace) -> int:
    from alertd.audit.services import seal_head
    from alertd.schema import upgrade

    with cli_context() as ctx:
        upgrade(ctx.db)
        print(f"schema is up to date at {ctx.db.engine.url.render_as_string(hide_password=True)}")
        warn_zone(ctx)
        with ctx.db.transaction() as session:
            if seal_head(session):
                print("the audit trail's head is now authenticated by the audit key")
        return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from alertd.serve import serve

    return serve(load_settings(), port=args.port, host=args.host)


def cmd_web(args: argparse.Namespace) -> int:
    from alertd.serve import serve_web

    return serve_web(load_settings(), port=args.port, host=args.host)


def cmd_health(args: argparse.Namespace) -> int:
    from alertd.health import backlog

    with cli_context() as ctx:
        found = backlog(ctx)
        warn_zone(ctx)
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


def add_init(sub: Subcommands) -> None:
    """``alertd init``."""
    sub.add_parser("init", help="create or upgrade the schema").set_defaults(func=cmd_init)


def add_servers(sub: Subcommands) -> None:
    """``alertd serve`` and ``alertd web``."""
    for name, handler, help_text in (
        ("serve", cmd_serve, "run web, worker and scheduler together"),
        ("web", cmd_web, "run only the web console and API"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--port", type=int, default=None)
        command.add_argument("--host", default=None)
        command.set_defaults(func=handler)


def add_health(sub: Subcommands) -> None:
    """``alertd health``."""
    health = sub.add_parser("health", help="exit 1 when workers are not taking work")
    health.add_argument(
        "--max-age",
        type=float,
        default=None,
        help="seconds work may wait before the workers count as stuck (ALERTD_STALL_SECONDS)",
    )
    health.set_defaults(func=cmd_health)
