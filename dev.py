#!/usr/bin/env python3
"""One command to set up and run alertd, one to test it. Needs only Python 3.11+.

    python3 dev.py serve      # install into .venv, then run web + worker + scheduler
    python3 dev.py serve --port 8080 --host 0.0.0.0   # options go to `alertd serve`
    python3 dev.py test       # install into .venv, then run the whole test suite
    python3 dev.py translations   # re-extract interface text into alertd/translations/*.po

``test`` runs the suite on SQLite, then again on PostgreSQL when one answers at
ALERTD_TEST_POSTGRES_URL. With CI set (or --strict), a missing server or any skipped test that
needs Redis, PostgreSQL or Chromium fails the run instead of being skipped.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def install() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs before anything is checked
        sys.exit(f"alertd needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # Reinstall only when the dependency list changed.
    stamp = VENV / ".alertd-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("installing alertd and its dependencies into .venv ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"], check=True, cwd=ROOT
    )
    stamp.write_text(digest)


def postgres_answers(url: str) -> bool:
    probe = (
        "import sys, sqlalchemy as sa\n"
        "try:\n"
        f"    sa.create_engine({url!r}).connect().close()\n"
        "except Exception as e:\n"
        "    print(f'PostgreSQL not reachable: {e}'.splitlines()[0]); sys.exit(1)\n"
    )
    return subprocess.run([str(PYTHON), "-c", probe], check=False).returncode == 0


def run_tests(extra: list[str]) -> int:
    strict = "--strict" in extra or bool(os.environ.get("CI"))
    extra = [a for a in extra if a != "--strict"]
    env = dict(os.environ)
    if strict:
        env["ALERTD_REQUIRE_SERVERS"] = "1"
    env.pop("ALERTD_TEST_DATABASE_URL", None)
    pytest = [str(PYTHON), "-m", "pytest", "-W", "error", *extra]

    print("== ruff, mypy and import contracts", flush=True)
    lint = [
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
        [str(BIN / "mypy")],
        [str(BIN / "lint-imports")],
    ]
    code = 0
    for command in lint:
        code = subprocess.run(command, cwd=ROOT, check=False).returncode or code

    print("\n== test suite on SQLite", flush=True)
    code = subprocess.run(pytest, env=env, cwd=ROOT, check=False).returncode or code
    postgres = os.environ.get("ALERTD_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    if postgres_answers(postgres):
        print("\n== test suite on PostgreSQL", flush=True)
        # The browser drives the same pages whatever the database; once is enough. So do the
        # tests marked ``once`` (the embedded broker's stress run).
        pg = subprocess.run(
            [*pytest, "-m", "not browser and not once"],
            cwd=ROOT,
            check=False,
            env=env | {"ALERTD_TEST_DATABASE_URL": postgres},
        ).returncode
        code = code or pg
    elif strict:
        print("FAILED: PostgreSQL is required here (CI) but did not answer", flush=True)
        code = code or 1
    else:
        print("\n== PostgreSQL pass SKIPPED: no PostgreSQL at " + postgres, flush=True)
    return code


def update_translations() -> int:
    """Extract every marked string (babel.cfg) and merge it into each language's catalogue;
    new strings arrive untranslated, and tests/unit/test_translations.py fails until they are."""
    pybabel, pot, folder = (
        str(BIN / "pybabel"),
        "alertd/translations/messages.pot",
        "alertd/translations",
    )
    for args in (
        # No line numbers and a sorted order: a catalogue changes only when its text does, so
        # two people adding strings in parallel rarely collide in the same lines.
        ["extract", "-F", "babel.cfg", "--omit-header", "--no-location", "--sort-output", "."],
        ["update", "-d", folder, "--ignore-obsolete", "--no-fuzzy-matching"],
    ):
        command = [pybabel, args[0], "-o" if args[0] == "extract" else "-i", pot, *args[1:]]
        code = subprocess.run(command, cwd=ROOT, check=False).returncode
        if code:
            return code
    for po in (ROOT / folder).glob("*/LC_MESSAGES/messages.po"):
        # The extraction time would change every catalogue on every run.
        lines = po.read_text(encoding="utf-8").splitlines(keepends=True)
        po.write_text("".join(x for x in lines if "POT-Creation-Date" not in x), "utf-8")
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "test", "install", "translations"):
        print(__doc__)
        return 2
    install()
    command, extra = sys.argv[1], sys.argv[2:]
    if command == "install":
        return 0
    if command == "test":
        return run_tests(extra)
    if command == "translations":
        return update_translations()
    alertd = str(BIN / "alertd")
    return subprocess.run([alertd, "serve", *extra], cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
