"""``alertd audit``: verify, checkpoint and export the audit trail."""

from __future__ import annotations

import argparse
import sys

from alertd.commands.common import Subcommands, cli_context


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from alertd.audit.checkpoints import read_folder, verifier_for
    from alertd.audit.keys import SignatureError, Verifier
    from alertd.audit.recipients import recipient_key
    from alertd.audit.trail import verify_trail

    with cli_context() as ctx:
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

    with cli_context() as ctx:
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

    with cli_context() as ctx:
        with ctx.db.session() as session:
            if args.output == "-":
                count = export_jsonl(session, sys.stdout)
            else:
                with open(args.output, "w", encoding="utf-8") as out:  # noqa: PTH123
                    count = export_jsonl(session, out)
        print(f"exported {count} entries", file=sys.stderr)
        return 0


def add_audit(sub: Subcommands) -> None:
    """``alertd audit verify|checkpoint|export``."""
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
