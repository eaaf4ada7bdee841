"""``alertd users`` and ``alertd tokens``: accounts and API tokens."""

from __future__ import annotations

import argparse
import sys

from alertd.commands.common import Subcommands, cli_context, read_password


def cmd_users_create(args: argparse.Namespace) -> int:
    from alertd.accounts.services import create_user

    with cli_context() as ctx:
        password = read_password(f"Password for {args.name}: ")
        with ctx.db.transaction() as session:
            create_user(session, args.name, args.role, password)
        print(f"created {args.role} {args.name}")
        return 0


def cmd_users_active(args: argparse.Namespace) -> int:
    from alertd.accounts.services import set_active

    with cli_context() as ctx:
        with ctx.db.transaction() as session:
            set_active(session, args.name, args.active, by=None)
        print(f"{args.name} {'activated' if args.active else 'deactivated'}")
        return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:
    from alertd.accounts.services import create_token

    with cli_context() as ctx:
        with ctx.db.transaction() as session:
            new = create_token(session, args.name, args.label)
        print(new.token)
        print(f"(API token for {args.name}; it is shown only this once)", file=sys.stderr)
        return 0


def cmd_tokens_list(args: argparse.Namespace) -> int:
    from alertd.accounts.services import list_tokens

    with cli_context() as ctx:
        with ctx.db.session() as session:
            print("id\tprefix\towner\tlabel\tcreated\tlast used\trevoked")
            for t in list_tokens(session, by=None):
                cells = (t.created_at, t.last_used_at, t.revoked_at)
                times = "\t".join(c.isoformat(timespec="seconds") if c else "-" for c in cells)
                print(f"{t.id}\t{t.prefix}\t{t.user.username}\t{t.name}\t{times}")
        return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    from alertd.accounts.services import revoke_token

    with cli_context() as ctx:
        with ctx.db.transaction() as session:
            row = revoke_token(session, args.id, by=None)
            print(f"revoked token {row.id} ({row.prefix}, {row.user.username})")
        return 0


def add_users(sub: Subcommands) -> None:
    """``alertd users create|deactivate|activate``."""
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


def add_tokens(sub: Subcommands) -> None:
    """``alertd tokens create|list|revoke``."""
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
