"""What the subcommands share: a context for one command, reading a secret, the time-zone warning
and the user an operator command acts as."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeAlias

from sqlalchemy import select

from alertd.actor import Actor
from alertd.context import Context, make_context
from alertd.errors import NotFound
from alertd.localtime import ipaws_zone_warning
from alertd.settings import load_settings

# The `sub` of `alertd`'s parser, to which each domain adds its commands.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@contextmanager
def cli_context() -> Iterator[Context]:
    ctx = make_context(load_settings())
    try:
        yield ctx
    finally:
        ctx.close()


def read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\r\n")


def warn_zone(ctx: Context) -> None:
    warning = ipaws_zone_warning(ctx.settings)
    if warning:
        print(warning, file=sys.stderr)


def cli_actor(ctx: Context, name: str) -> Actor:
    from alertd.accounts.models import User
    from alertd.accounts.services import actor_for

    with ctx.db.session() as session:
        user = session.execute(select(User).where(User.username == name)).scalar_one_or_none()
        if user is None:
            raise NotFound(f"no user {name!r}: name an operator with --as")
        return actor_for(user, None, "alertd cli")
