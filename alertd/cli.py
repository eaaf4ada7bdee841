"""The ``alertd`` command."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from collections.abc import Sequence

from sqlalchemy import func, select

from alertd.context import Context, make_context
from alertd.errors import ServiceError
from alertd.settings import load_settings


def _context() -> Context:
    return make_context(load_settings())


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\r\n")


def cmd_init(args: argparse.Namespace) -> int:
    from alertd.schema import upgrade  # noqa: PLC0415 - Alembic loads slowly

    ctx = _context()
    upgrade(ctx.db)
    print(f"schema is up to date at {ctx.db.engine.url.render_as_string(hide_password=True)}")
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from alertd.accounts.services import create_user  # noqa: PLC0415

    ctx = _context()
    password = _read_password(f"Password for {args.name}: ")
    with ctx.db.transaction() as session:
        create_user(session, args.name, args.role, password)
    print(f"created {args.role} {args.name}")
    return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:
    from alertd.accounts.services import create_token  # noqa: PLC0415

    ctx = _context()
    with ctx.db.transaction() as session:
        new = create_token(session, args.name, args.label)
    print(new.token)
    print(f"(API token for {args.name}; it is shown only this once)", file=sys.stderr)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from alertd.audit.services import verify_chain  # noqa: PLC0415

    ctx = _context()
    with ctx.db.session() as session:
        result = verify_chain(session)
    if result.ok:
        print(f"audit trail intact: {result.entries} entries")
        return 0
    print(f"audit trail BROKEN: {result.problem}", file=sys.stderr)
    return 1


def cmd_audit_export(args: argparse.Namespace) -> int:
    from alertd.audit.services import export_jsonl  # noqa: PLC0415

    ctx = _context()
    with ctx.db.session() as session:
        if args.output == "-":
            count = export_jsonl(session, sys.stdout)
        else:
            with open(args.output, "w", encoding="utf-8") as out:  # noqa: PTH123
                count = export_jsonl(session, out)
    print(f"exported {count} entries", file=sys.stderr)
    return 0


def ensure_first_admin(ctx: Context) -> str | None:
    """On a database with no users, create ``admin`` with a random password and return it."""
    from alertd.accounts.models import User  # noqa: PLC0415
    from alertd.accounts.services import create_user  # noqa: PLC0415

    with ctx.db.transaction() as session:
        if session.execute(select(func.count()).select_from(User)).scalar_one():
            return None
        password = secrets.token_urlsafe(12)
        create_user(session, "admin", "admin", password)
        return password


def cmd_serve(args: argparse.Namespace) -> int:
    from alertd.serve import serve  # noqa: PLC0415

    return serve(load_settings(), port=args.port, host=args.host)


def cmd_web(args: argparse.Namespace) -> int:
    from alertd.serve import serve_web  # noqa: PLC0415

    return serve_web(load_settings(), port=args.port, host=args.host)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alertd", description="Missing-child alert dispatcher")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create or upgrade the schema").set_defaults(func=cmd_init)

    users = sub.add_parser("users", help="manage users").add_subparsers(dest="sub", required=True)
    create = users.add_parser("create", help="create a user; the password is read from stdin")
    create.add_argument("name")
    create.add_argument("--role", required=True,
                        choices=["officer", "supervisor", "operator", "admin"])
    create.set_defaults(func=cmd_users_create)

    tokens = sub.add_parser("tokens", help="API tokens").add_subparsers(dest="sub", required=True)
    token = tokens.add_parser("create", help="create an API token for a user and print it once")
    token.add_argument("name", help="the user the token acts as")
    token.add_argument("--label", default="api", help="what the token is for")
    token.set_defaults(func=cmd_tokens_create)

    for name, func, help_text in (
        ("serve", cmd_serve, "run web, worker and scheduler together"),
        ("web", cmd_web, "run only the web console and API"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--port", type=int, default=None)
        command.add_argument("--host", default=None)
        command.set_defaults(func=func)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(dest="sub",
                                                                           required=True)
    audit.add_parser("verify", help="check the hash chain").set_defaults(func=cmd_audit_verify)
    export = audit.add_parser("export", help="write the trail as JSON Lines")
    export.add_argument("--output", "-o", default="-")
    export.set_defaults(func=cmd_audit_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ServiceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        for field, message in error.fields.items():
            print(f"  {field}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
