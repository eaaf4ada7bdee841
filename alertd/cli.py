"""The ``alertd`` command: one parser, its subcommands added per domain (``alertd.commands``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from alertd.commands import accounts, audit, channels, system
from alertd.errors import ServiceError
from alertd.settings import load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alertd", description="Missing-child alert dispatcher")
    sub = parser.add_subparsers(dest="command", required=True)
    # In this order in `alertd --help`.
    system.add_init(sub)
    accounts.add_users(sub)
    accounts.add_tokens(sub)
    system.add_servers(sub)
    channels.add_cap(sub)
    channels.add_endpoints(sub)
    channels.add_subscribers(sub)
    channels.add_deliveries(sub)
    system.add_health(sub)
    audit.add_audit(sub)
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
