"""The database: engine set-up for SQLite (embedded default) and PostgreSQL, and the unit of
work every write goes through."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, cast

from sqlalchemy import CursorResult, DateTime, Engine, Result, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import JSON, TypeDecorator

from alertd.errors import ServiceError

log = logging.getLogger(__name__)


# Primary keys are INTEGER columns: 32 bits on PostgreSQL. A larger id names no row, and must
# be answered as such before it reaches the database, which would refuse it with an error.
MAX_ROW_ID = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which stores naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


def make_engine(url: str, *, for_writing: bool = True) -> Engine:
    if url.startswith("sqlite"):
        _private_sqlite_files(make_url(url).database)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine, for_writing=for_writing)
        _ping_when_idle(engine)
        return engine
    engine = create_engine(url, pool_size=5, max_overflow=10)
    _ping_when_idle(engine)
    return engine


# A connection back in the pool for less than this is used without a ping. Pinging at every
# checkout (pool_pre_ping) cost a round trip per transaction, a tenth of a delivery worker's
# time at one transaction per sub-batch; a connection that worked a moment ago has seldom gone
# since, and if it has, that one transaction fails and its work is retried like any other.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's documented custom pessimistic check: a connection idle for longer than
    PING_AFTER_IDLE_SECONDS is pinged at checkout, and a dead one is replaced (the pool retries
    on DisconnectionError)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("the connection did not answer a ping") from exc
        if not alive:
            raise DisconnectionError("the connection did not answer a ping")


def _private_sqlite_files(database: str | None) -> None:
    """Create the database file readable by its owner only, before SQLite does (with the umask,
    often world-readable): it holds password hashes and children's details. SQLite gives its
    -wal and -shm files the database file's mode. Files made by an older version are narrowed."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if each.exists() and each.stat().st_mode & 0o077:
                each.chmod(0o600)
        except OSError:
            log.warning("could not make %s private to its owner", each)


def _configure_sqlite(engine: Engine, *, for_writing: bool) -> None:
    # pysqlite's own transaction handling begins late and deferred, so two writers can deadlock
    # on the upgrade to a write lock. Writers take the write lock at BEGIN instead (SQLAlchemy's
    # documented recipe). Readers begin deferred: in WAL mode a read transaction takes no lock
    # a writer holds, so console, API and feed reads never queue behind a write.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if for_writing else "BEGIN")


# Session.info key of the audit head's MAC key (alertd.audit.keys), which every session of a
# Database made by make_context carries, so each audit append authenticates the head it moves.
AUDIT_MAC_KEY = "audit_mac_key"

# How long a writer waits for its turn among this process's writers before going on to SQLite's
# own busy wait: as long as that wait, so a lock never held this long changes nothing.
WRITER_WAIT_SECONDS = 30.0


class Database:
    def __init__(
        self,
        url: str,
        *,
        audit_mac_key: bytes | None = None,
        on_refusal: Callable[[Database, ServiceError], None] | None = None,
    ) -> None:
        self.url = url
        # Records a refused action's audit entry (alertd.audit.services.record_refusal, wired by
        # make_context): auditing is the service layer's, not the unit of work's.
        self.on_refusal = on_refusal
        self.engine = make_engine(url)
        # Reads get an engine of their own on SQLite, beginning without the write lock.
        self.read_engine = (
            make_engine(url, for_writing=False)
            if self.engine.dialect.name == "sqlite"
            else self.engine
        )
        info = {AUDIT_MAC_KEY: audit_mac_key} if audit_mac_key else {}
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)
        self.read_sessions = sessionmaker(self.read_engine, expire_on_commit=False, info=info)
        # SQLite has one write lock, and a writer that finds it taken sleeps in growing steps
        # (up to 100 ms each) before asking again, so under load writers queue by luck and a
        # few wait seconds. This process's writers take turns on a lock of their own instead,
        # each woken the moment the one before commits. Reentrant, so a transaction opened
        # inside another in the same thread behaves as it always did (SQLite decides).
        self._writers = threading.RLock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reading; it is closed (and anything it wrote discarded) at the end.
        Objects loaded through it stay readable afterwards. On SQLite it never waits for a
        write transaction (see ``_configure_sqlite``)."""
        with self.read_sessions() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits at the end, then runs the after-commit hooks.

        A :class:`alertd.errors.ServiceError` raised inside rolls everything back, then records
        its audit entry (if any) through ``on_refusal``, so a refused action leaves no trace but
        the record that it was refused.
        """
        hooks: list[Callable[[], object]] = []
        committed = False
        with self._writer_turn():
            session = self.sessions()
            try:
                yield session
                session.commit()
            except ServiceError as error:
                session.rollback()
                # In this transaction's turn: the refusal's entry is the write it made instead.
                if error.audit is not None and self.on_refusal is not None:
                    self.on_refusal(self, error)
                raise
            except BaseException:
                session.rollback()
                raise
            finally:
                hooks = session.info.pop("after_commit", [])
                committed = session.info.pop("committed", False)
                session.close()
        if committed:
            for hook in hooks:
                # The decision is committed: a failing hook (a broker down, a bug) must not turn
                # it into an error for the caller. What it failed to do the sweeper redoes.
                try:
                    hook()
                except Exception:
                    log.exception("after-commit hook %r failed; the commit stands", hook)

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        if self._writers is None:
            yield
            return
        # After the wait, on without the turn: SQLite's busy timeout still keeps writes apart.
        got = self._writers.acquire(timeout=WRITER_WAIT_SECONDS)
        try:
            yield
        finally:
            if got:
                self._writers.release()

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()


@event.listens_for(Session, "after_commit")
def _mark_committed(session: Session) -> None:
    session.info["committed"] = True


def dialect_insert(session: Session) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing`` on both SQLite and PostgreSQL:
    rows written under a unique key twice are written once."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched."""
    return int(cast(CursorResult[Any], result).rowcount)


def after_commit(session: Session, hook: Callable[[], object]) -> None:
    """Run ``hook`` once the current transaction has committed; never if it rolls back."""
    session.info.setdefault("after_commit", []).append(hook)
