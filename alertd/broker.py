"""The one seam between the domain and Celery: building the Celery app from settings, and
sending a task by name. ``alertd`` never imports ``workers``."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import warnings
from queue import Empty
from typing import Any

from celery import Celery
from kombu.transport import sqlalchemy as kombu_sqla
from kombu.transport.sqlalchemy.models import metadata as kombu_metadata
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SADeprecationWarning
from sqlalchemy.orm import configure_mappers, sessionmaker

import config.celery as celery_config
from alertd.settings import Settings

log = logging.getLogger(__name__)

# The embedded broker polls its table; 10 ms keeps dispatch well under the one-second budget at
# the cost of a few cheap idle queries a second.
EMBEDDED_POLL_SECONDS = 0.01
EMBEDDED_TRANSPORT = "alertd.broker:EmbeddedTransport"
# How long a connection waits for another's lock on the broker file before giving up.
CONNECT_TIMEOUT_SECONDS = 30
# Guards the engine cache (kombu's, shared by every channel of this process) between threads.
_ENGINES_LOCK = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: a producer's insert never waits on the worker's poll, nor the poll on a reader.
    _set_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _set_wal(cursor: Any) -> None:
    # Turning a fresh file to WAL needs it to itself, and SQLite answers "database is locked"
    # at once, without its busy timeout, while another process holds it (two workers starting
    # together on a fresh broker file: 1 start in 80 failed so). Once WAL, it stays WAL.
    deadline = time.monotonic() + CONNECT_TIMEOUT_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class EmbeddedChannel(kombu_sqla.Channel):
    """kombu's SQLAlchemy channel on a SQLite file. Chosen over the filesystem transport, whose
    non-atomic message files were read half-written and killed the worker (issue 10): here a
    message is a row, written and taken in SQLite transactions (the take under ``BEGIN
    IMMEDIATE``), so readers never see half a message. No server is needed."""

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)  # type: ignore[no-untyped-call]
        # kombu maps its queue-to-message relation with lazy="noload", deprecated in SQLAlchemy
        # 2.1; the warning comes when mappers are configured, so configure them here, once.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The ``noload``", SADeprecationWarning)
            configure_mappers()

    def _engine_from_config(self) -> Engine:
        engine = create_engine(
            self.connection.client.hostname, connect_args={"timeout": CONNECT_TIMEOUT_SECONDS}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def _open(self) -> tuple[Engine, Any]:
        # kombu's own creates its tables with a look-then-create guarded by a lock of this
        # process only: two workers starting together on a fresh file both created, and the
        # second died with "table kombu_queue already exists" (in 31 to 39 of 80 starts). Here
        # the look and the create run under SQLite's write lock: the second waits for it, then
        # finds the tables made.
        hostname = self.connection.client.hostname
        with _ENGINES_LOCK:
            if hostname not in self._engines:
                engine = self._engine_from_config()
                with engine.connect() as connection:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                    kombu_metadata.create_all(connection)
                    connection.exec_driver_sql("COMMIT")
                self._engines[hostname] = engine, sessionmaker(bind=engine)
        return self._engines[hostname]  # type: ignore[no-any-return]

    def _get_or_create(self, queue: str) -> Any:
        # kombu's own looks, then inserts: a second process declaring the same queue at once
        # failed on the name's UNIQUE constraint. An insert that yields to an existing row cannot.
        found = self.session.query(self.queue_cls).filter(self.queue_cls.name == queue).first()
        if found is None:
            self.session.execute(
                sqlite_insert(self.queue_cls.__table__).values(name=queue).on_conflict_do_nothing()
            )
            self.session.commit()
            found = self.session.query(self.queue_cls).filter(self.queue_cls.name == queue).one()
        return found

    def _get(self, queue: str, timeout: Any = None) -> Any:
        # kombu's own keeps every taken message as an invisible row, and the file would grow
        # without end; a taken message is deleted instead. An unacknowledged one is put back by
        # kombu (a rejected task, a channel closed), as with every virtual transport.
        found = self._get_or_create(queue)
        self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            message = (
                self.session.query(self.message_cls)
                .filter(self.message_cls.queue_id == found.id)
                .filter(self.message_cls.visible != False)  # noqa: E712 - SQL, not Python
                .order_by(self.message_cls.sent_at, self.message_cls.id)
                .first()
            )
            if message is None:
                raise Empty()
            self.session.delete(message)
            return loads(bytes_to_str(message.payload))  # type: ignore[no-untyped-call]
        finally:
            self.session.commit()


class EmbeddedTransport(kombu_sqla.Transport):
    Channel = EmbeddedChannel
    # kombu would pass a ``polling_interval`` transport option on to ``create_engine``.
    polling_interval = EMBEDDED_POLL_SECONDS


def transport_options(settings: Settings) -> dict[str, Any]:
    if settings.embedded_broker:
        return {}
    timeout = settings.PUBLISH_TIMEOUT_SECONDS
    return {
        # Unacknowledged tasks come back after this; every delay is kept well under it.
        "visibility_timeout": settings.VISIBILITY_TIMEOUT_SECONDS,
        "socket_timeout": max(timeout, 5.0),
        "socket_connect_timeout": timeout,
        "max_retries": 0,
    }


def make_celery(settings: Settings, main: str = "alertd") -> Celery:
    app = Celery(main, set_as_current=False)
    app.config_from_object(celery_config)
    app.conf.broker_url = settings.broker_url
    if settings.embedded_broker:
        settings.instance_path.mkdir(parents=True, exist_ok=True)
        # The same ``sqla+sqlite`` URL, through the subclass above (a ``+`` in the URL would
        # select kombu's own class).
        app.conf.broker_url = settings.broker_url.removeprefix("sqla+")
        app.conf.broker_transport = EMBEDDED_TRANSPORT
    app.conf.broker_transport_options = transport_options(settings)
    app.conf.broker_connection_timeout = settings.PUBLISH_TIMEOUT_SECONDS
    app.conf.alertd_settings = settings
    return app


class Publisher:
    """Sends tasks by name. Failing to publish is logged and left to the outbox relay."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        if self._app is None:
            self._app = make_celery(self.settings, main="alertd-producer")
        return self._app

    def send(self, task_name: str, args: list[Any]) -> bool:
        try:
            self.app.send_task(task_name, args=args, retry=False)
        except Exception:  # The broker is a fast path; the database relay is the safe path.
            log.warning(
                "could not publish %s%r; the relay will retry", task_name, args, exc_info=True
            )
            return False
        return True


class RecordingPublisher(Publisher):
    """Keeps what would have been sent; for unit tests that run no broker."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sent: list[tuple[str, list[Any]]] = []

    def send(self, task_name: str, args: list[Any]) -> bool:
        self.sent.append((task_name, list(args)))
        return True
